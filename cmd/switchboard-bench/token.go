package main

import (
	"time"

	"switchboard/domain"
)

// mintToken signs a connection token for the peer with the same signer
// Switchboard uses, so both servers see the same kind of bearer.
func mintToken(secret, sub string) (string, error) {
	s, err := domain.NewSigner(secret)
	if err != nil {
		return "", err
	}
	c := domain.Claims{Name: "Bench", Projects: []string{benchSlug}}
	c.Subject = sub
	return s.Mint(c, 6*time.Hour)
}
