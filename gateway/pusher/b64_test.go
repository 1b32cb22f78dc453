package pusher_test

import "encoding/base64"

func base64Std(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
func base64Enc(b []byte) string          { return base64.StdEncoding.EncodeToString(b) }
