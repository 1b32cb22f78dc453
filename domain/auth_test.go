package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"switchboard/domain"
)

const authSecret = "auth-test-secret"

// rawToken signs claims as any issuer could (no Signer rules), so the tests
// can present what the Signer itself refuses to mint.
func rawToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestVerifyLifetime: every token must carry exp, and exp may lie at most
// MaxTTL (+ MaxTTLLeeway) ahead; expired stays ErrTokenExpired, everything
// else is ErrInvalidToken. Verify and VerifyMap apply the same rules, since
// the REST/Pusher/ActionCable doors use one and the Centrifugo door the other.
func TestVerifyLifetime(t *testing.T) {
	const maxTTL = 2 * time.Hour
	s, err := domain.NewSigner(authSecret, domain.WithMaxTTL(maxTTL))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	hs := func(c jwt.MapClaims) string { return rawToken(t, jwt.SigningMethodHS256, []byte(authSecret), c) }
	exp := func(d time.Duration) jwt.MapClaims { return jwt.MapClaims{"sub": "42", "exp": now.Add(d).Unix()} }
	tests := []struct {
		name  string
		token string
		want  error // nil, ErrTokenExpired or ErrInvalidToken
	}{
		{"valid", hs(exp(time.Hour)), nil},
		{"exactly the max", hs(exp(maxTTL)), nil},
		// An issuer whose clock runs a little ahead mints "max" as a bit more.
		{"max plus 30s of clock skew", hs(exp(maxTTL + 30*time.Second)), nil},
		{"max plus more than the leeway", hs(exp(maxTTL + domain.MaxTTLLeeway + 5*time.Second)), domain.ErrInvalidToken},
		{"year 2200", hs(jwt.MapClaims{"sub": "42", "exp": time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()}), domain.ErrInvalidToken},
		{"no exp", hs(jwt.MapClaims{"sub": "42"}), domain.ErrInvalidToken},
		{"exp not a number", hs(jwt.MapClaims{"sub": "42", "exp": "tomorrow"}), domain.ErrInvalidToken},
		{"expired", hs(exp(-time.Minute)), domain.ErrTokenExpired},
		// The signature is checked before the claims: a forged token is
		// invalid even when it is also expired (never "refresh and retry").
		{"expired and forged", rawToken(t, jwt.SigningMethodHS256, []byte("other"), exp(-time.Minute)), domain.ErrInvalidToken},
		{"wrong key", rawToken(t, jwt.SigningMethodHS256, []byte("other"), exp(time.Hour)), domain.ErrInvalidToken},
		{"alg none", rawToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, exp(time.Hour)), domain.ErrInvalidToken},
		{"HS512 with the right secret", rawToken(t, jwt.SigningMethodHS512, []byte(authSecret), exp(time.Hour)), domain.ErrInvalidToken},
		{"garbage", "not-a-jwt", domain.ErrInvalidToken},
		{"empty", "", domain.ErrInvalidToken},
	}
	check := func(t *testing.T, got, want error) {
		t.Helper()
		switch {
		case want == nil && got != nil:
			t.Fatalf("err = %v, want nil", got)
		case want != nil && !errors.Is(got, want):
			t.Fatalf("err = %v, want %v", got, want)
		case errors.Is(want, domain.ErrInvalidToken) && errors.Is(got, domain.ErrTokenExpired):
			t.Fatalf("err = %v: an invalid token must not look expired", got)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Verify(tt.token)
			check(t, err, tt.want)
			_, err = s.VerifyMap(tt.token)
			check(t, err, tt.want)
		})
	}
	t.Run("Verify needs sub, VerifyMap leaves it to the caller", func(t *testing.T) {
		tok := hs(jwt.MapClaims{"exp": now.Add(time.Hour).Unix()})
		if _, err := s.Verify(tok); !errors.Is(err, domain.ErrInvalidToken) {
			t.Fatalf("Verify = %v, want ErrInvalidToken", err)
		}
		if _, err := s.VerifyMap(tok); err != nil {
			t.Fatalf("VerifyMap = %v", err)
		}
	})
}

func TestNewSignerOptions(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		opts    []domain.SignerOption
		wantErr bool
		wantMax time.Duration
	}{
		{name: "default max", secret: "s", wantMax: domain.DefaultMaxTTL},
		{name: "explicit max", secret: "s", opts: []domain.SignerOption{domain.WithMaxTTL(time.Hour)}, wantMax: time.Hour},
		{name: "empty secret", secret: "", wantErr: true},
		// Zero must not mean "unlimited": that is the bug being fixed.
		{name: "zero max", secret: "s", opts: []domain.SignerOption{domain.WithMaxTTL(0)}, wantErr: true},
		{name: "negative max", secret: "s", opts: []domain.SignerOption{domain.WithMaxTTL(-time.Second)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := domain.NewSigner(tt.secret, tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && s.MaxTTL() != tt.wantMax {
				t.Fatalf("MaxTTL = %s, want %s", s.MaxTTL(), tt.wantMax)
			}
		})
	}
}

// TestMintWithinMaxTTL: the Signer never mints what its Verify refuses.
func TestMintWithinMaxTTL(t *testing.T) {
	s, err := domain.NewSigner(authSecret, domain.WithMaxTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := domain.Claims{}
	c.Subject = "42"
	tests := []struct {
		name string
		ttl  time.Duration
		ok   bool
	}{
		{"a minute", time.Minute, true},
		{"exactly the max", time.Hour, true},
		{"above the max", time.Hour + time.Second, false},
		{"zero (no exp)", 0, false},
		{"negative", -time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.Mint(c, tt.ttl)
			if !tt.ok {
				if !errors.Is(err, domain.ErrTokenLifetime) {
					t.Fatalf("err = %v, want ErrTokenLifetime", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(minted) = %v", err)
			}
			if left := time.Until(got.ExpiresAt.Time); left > tt.ttl || left < tt.ttl-2*time.Second {
				t.Fatalf("exp in %s, want about %s", left, tt.ttl)
			}
		})
	}
}

func TestSignMapLifetime(t *testing.T) {
	s, err := domain.NewSigner(authSecret, domain.WithMaxTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"within the max", jwt.MapClaims{"sub": "42", "exp": now.Add(time.Minute).Unix()}, true},
		// Tests of expiry mint expired tokens; they can only ever be refused.
		{"already expired", jwt.MapClaims{"sub": "42", "exp": now.Add(-time.Minute).Unix()}, true},
		{"no exp", jwt.MapClaims{"sub": "42"}, false},
		{"beyond the max", jwt.MapClaims{"sub": "42", "exp": now.Add(2 * time.Hour).Unix()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.SignMap(tt.claims)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok && !errors.Is(err, domain.ErrTokenLifetime) {
				t.Fatalf("err = %v, want ErrTokenLifetime", err)
			}
		})
	}
}
