package domain

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is the identity a caller presents as `Authorization: Bearer <JWT>`
// (HS256). Sub is the user / community member id.
type Claims struct {
	Name     string   `json:"name,omitempty"`
	Projects []string `json:"projects,omitempty"`
	Admin    bool     `json:"admin,omitempty"`
	jwt.RegisteredClaims
}

// CanAccessProject reports whether the bearer may read and write slug.
func (c *Claims) CanAccessProject(slug string) bool {
	if c == nil {
		return false
	}
	return c.Admin || slices.Contains(c.Projects, "*") || slices.Contains(c.Projects, slug)
}

// ErrInvalidToken is returned for any token that does not verify.
var ErrInvalidToken = errors.New("invalid token")

// ErrTokenExpired is returned for a well-signed token past its exp.
var ErrTokenExpired = errors.New("token expired")

// Signer mints and verifies HS256 tokens with one shared secret.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer; the secret must not be empty.
func NewSigner(secret string) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("jwt secret is empty")
	}
	return &Signer{secret: []byte(secret)}, nil
}

// Mint signs c, setting iat and, when ttl > 0, exp.
func (s *Signer) Mint(c Claims, ttl time.Duration) (string, error) {
	now := time.Now()
	c.IssuedAt = jwt.NewNumericDate(now)
	if ttl > 0 {
		c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// SignMap signs arbitrary claims (connection tokens of other protocols).
func (s *Signer) SignMap(claims jwt.MapClaims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
}

// Verify parses and checks a token. Expired tokens give ErrTokenExpired,
// everything else that fails gives ErrInvalidToken.
func (s *Signer) Verify(token string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, s.key, jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, ErrTokenExpired
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: no sub", ErrInvalidToken)
	}
	return &c, nil
}

// VerifyMap parses a token into map claims with the same rules as Verify.
func (s *Signer) VerifyMap(token string) (jwt.MapClaims, error) {
	c := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, c, s.key, jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, ErrTokenExpired
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return c, nil
}

func (s *Signer) key(*jwt.Token) (any, error) { return s.secret, nil }
