package domain

import "testing"

func TestOrigins(t *testing.T) {
	dev, err := ParseOrigins([]string{"http://localhost:*", "http://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := ParseOrigins([]string{"https://app.example.com", " http://admin.example.com:8443 "})
	if err != nil {
		t.Fatal(err)
	}
	star, _ := ParseOrigins([]string{"*"})
	none, _ := ParseOrigins(nil)
	for _, tc := range []struct {
		name         string
		o            Origins
		origin, host string
		want         bool
	}{
		{"no Origin: a server or a script", none, "", "sb:8080", true},
		{"same host", none, "https://sb.example.com", "sb.example.com", true},
		{"same host, other port", none, "http://sb:5173", "sb:8080", false},
		{"not listed", none, "http://localhost:5173", "127.0.0.1:8080", false},
		{"dev: any localhost port", dev, "http://localhost:5173", "127.0.0.1:8080", true},
		{"dev: 127.0.0.1 without a port", dev, "http://127.0.0.1", "127.0.0.1:8080", true},
		{"dev: https is another scheme", dev, "https://localhost:5173", "127.0.0.1:8080", false},
		{"dev: another host", dev, "http://evil.example", "127.0.0.1:8080", false},
		{"dev: a lookalike host", dev, "http://localhost.evil.example:80", "127.0.0.1:8080", false},
		{"exact", prod, "https://app.example.com", "sb:443", true},
		{"exact, case", prod, "https://APP.example.com", "sb:443", true},
		{"exact with port", prod, "http://admin.example.com:8443", "sb:443", true},
		{"exact: other port", prod, "http://admin.example.com:9000", "sb:443", false},
		{"exact: other scheme", prod, "http://app.example.com", "sb:443", false},
		{"star", star, "http://anything.example", "sb", true},
		{"garbage", dev, "null", "sb", false},
	} {
		if got := tc.o.Allowed(tc.origin, tc.host); got != tc.want {
			t.Errorf("%s: Allowed(%q, %q) = %v", tc.name, tc.origin, tc.host, got)
		}
	}
	for _, bad := range []string{"localhost:5173", "ftp://x", "http://x/path", "http://x:*/y", "http://x:1:*", "https://"} {
		if _, err := ParseOrigins([]string{bad}); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
}
