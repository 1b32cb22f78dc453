package domain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verify remembers accepted tokens until their exp (authcache.go): a second
// Verify gives the same claims without sharing them with the first caller,
// a token with any other signature is still refused, an expired one gives
// ErrTokenExpired, refused tokens are not kept, and the cache stays bounded.
func TestVerifyRemembersAcceptedTokens(t *testing.T) {
	s, err := NewSigner("cache-test-secret")
	if err != nil {
		t.Fatal(err)
	}
	c := Claims{Name: "Jane", Projects: []string{"demo"}, PubSub: &PubSubRoom{Organization: "o", Event: "e", Session: "s"}}
	c.Subject = "42"
	tok, err := s.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.verified.get(tok, time.Now()); !ok {
		t.Fatal("an accepted token was not kept")
	}
	first.Projects[0], first.PubSub.Event, first.Name = "other", "x", "changed"
	for range 2 {
		again, err := s.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if again.Subject != "42" || again.Name != "Jane" || again.Projects[0] != "demo" || again.PubSub.Event != "e" || again.ExpiresAt == nil {
			t.Fatalf("second Verify gave %+v (pubsub %+v)", again, again.PubSub)
		}
		again.Projects[0] = "mutated by a caller"
	}

	parts := strings.Split(tok, ".")
	other, err := NewSigner("another-secret")
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Mint(c, time.Hour)
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"same claims, signature of another secret", parts[0] + "." + parts[1] + "." + strings.Split(forged, ".")[2], ErrInvalidToken},
		{"signature cut short", tok[:len(tok)-2], ErrInvalidToken},
		{"no sub", func() string { t, _ := s.Mint(Claims{Name: "x"}, time.Hour); return t }(), ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 {
				if _, err := s.Verify(tt.token); !errors.Is(err, tt.want) {
					t.Fatalf("Verify = %v, want %v", err, tt.want)
				}
			}
			if _, ok := s.verified.get(tt.token, time.Now()); ok {
				t.Fatal("a refused token was kept")
			}
		})
	}

	t.Run("expiry", func(t *testing.T) {
		short, err := s.SignMap(jwt.MapClaims{"sub": "7", "exp": time.Now().Add(2100 * time.Millisecond).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(short); err != nil {
			t.Fatal(err)
		}
		exp := s.verified.m[short].exp
		if _, ok := s.verified.get(short, exp.Add(-time.Millisecond)); !ok {
			t.Fatal("kept token not found before its exp")
		}
		if _, ok := s.verified.get(short, exp); ok {
			t.Fatal("kept token given out at its exp")
		}
		time.Sleep(time.Until(exp) + 10*time.Millisecond)
		if _, err := s.Verify(short); !errors.Is(err, ErrTokenExpired) {
			t.Fatalf("Verify after exp = %v, want ErrTokenExpired", err)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		for i := range maxVerifiedTokens + 100 {
			c := Claims{}
			c.Subject = fmt.Sprint(i)
			tok, err := s.Mint(c, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Verify(tok); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(s.verified.m); n > maxVerifiedTokens {
			t.Fatalf("cache holds %d tokens, bound %d", n, maxVerifiedTokens)
		}
	})
}
