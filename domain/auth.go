package domain

import (
	"encoding/json"
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
	// PubSub makes the token a PubSub room token (domain/pubsub.go): it
	// opens that room's channels and nothing else.
	PubSub *PubSubRoom `json:"pubsub,omitempty"`
	jwt.RegisteredClaims
}

// CanAccessProject reports whether the bearer may read and write slug.
func (c *Claims) CanAccessProject(slug string) bool {
	if c == nil || c.PubSub != nil {
		return false
	}
	return c.Admin || slices.Contains(c.Projects, "*") || slices.Contains(c.Projects, slug)
}

// ErrInvalidToken is returned for any token that does not verify.
var ErrInvalidToken = errors.New("invalid token")

// ErrTokenExpired is returned for a well-signed token past its exp.
var ErrTokenExpired = errors.New("token expired")

// ErrTokenLifetime is returned by Mint and SignMap for claims that every door
// would refuse: no exp, or an exp more than the Signer's MaxTTL away.
var ErrTokenLifetime = errors.New("token lifetime out of bounds")

// DefaultMaxTTL is the longest lifetime a token may have unless NewSigner is
// told otherwise (SWITCHBOARD_JWT_MAX_TTL): 30 days. A leaked token is then
// useful for at most a month, while a `switchboard token` for a long-running
// backend job still fits.
const DefaultMaxTTL = 30 * 24 * time.Hour

// MaxTTLLeeway is how far past now+MaxTTL a token's exp may lie and still be
// accepted. Tokens are signed by other processes too (an app backend sharing
// the secret, as with Centrifugo) whose clocks may run ahead of ours: one
// minted with exactly MaxTTL on a clock a few seconds fast must not be
// refused. A minute covers ordinary NTP drift and exp's whole-second
// rounding without letting a meaningfully longer lifetime through. It only
// widens the cap: an exp in the past is expired at once, no leeway, as before.
const MaxTTLLeeway = time.Minute

// Signer mints and verifies HS256 tokens with one shared secret. Every door
// (REST bearer, /broadcasting/auth, /pusher/user-auth, the Centrifugo and
// ActionCable connections, Centrifugo subscription tokens) verifies through
// it, so the lifetime rule lives here once: a token must carry exp, and exp
// may be at most MaxTTL (+ MaxTTLLeeway) from now. Without that cap a token
// minted without exp, or for the year 2200, would open every door forever.
type Signer struct {
	secret   []byte
	maxTTL   time.Duration
	verified *verifiedTokens // see authcache.go
}

// SignerOption configures NewSigner.
type SignerOption func(*Signer)

// WithMaxTTL sets the longest accepted token lifetime (exp − now). It must be
// positive; zero or negative makes NewSigner fail rather than silently accept
// tokens of any lifetime.
func WithMaxTTL(d time.Duration) SignerOption {
	return func(s *Signer) { s.maxTTL = d }
}

// NewSigner returns a Signer; the secret must not be empty. The maximum
// token lifetime is DefaultMaxTTL unless WithMaxTTL says otherwise.
func NewSigner(secret string, opts ...SignerOption) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("jwt secret is empty")
	}
	s := &Signer{secret: []byte(secret), maxTTL: DefaultMaxTTL, verified: &verifiedTokens{}}
	for _, o := range opts {
		o(s)
	}
	if s.maxTTL <= 0 {
		return nil, fmt.Errorf("jwt max ttl must be positive, got %s", s.maxTTL)
	}
	return s, nil
}

// MaxTTL is the longest lifetime (exp − now) a token may have.
func (s *Signer) MaxTTL() time.Duration { return s.maxTTL }

// Mint signs c, setting iat and exp = now + ttl. ttl must be positive and at
// most MaxTTL: the Signer never mints a token its own Verify would refuse.
func (s *Signer) Mint(c Claims, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > s.maxTTL {
		return "", fmt.Errorf("%w: ttl %s is not within (0, %s]", ErrTokenLifetime, ttl, s.maxTTL)
	}
	now := time.Now()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// SignMap signs arbitrary claims (connection tokens of other protocols). The
// claims must carry an exp no more than MaxTTL away, for the same reason as
// Mint; an exp in the past is allowed (it only ever yields ErrTokenExpired,
// which is what tests of expiry need).
func (s *Signer) SignMap(claims jwt.MapClaims) (string, error) {
	// Read exp as Verify will, from the JSON: callers put int64 seconds or
	// a *jwt.NumericDate in the map, which MapClaims only reads as float64.
	b, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	var wire jwt.MapClaims
	if err := json.Unmarshal(b, &wire); err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	exp, err := wire.GetExpirationTime()
	if err != nil || exp == nil {
		return "", fmt.Errorf("%w: claims have no valid exp", ErrTokenLifetime)
	}
	if ttl := time.Until(exp.Time); ttl > s.maxTTL {
		return "", fmt.Errorf("%w: exp is %s away, more than %s", ErrTokenLifetime, ttl.Round(time.Second), s.maxTTL)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
}

// Verify parses and checks a token. Expired tokens give ErrTokenExpired,
// everything else that fails gives ErrInvalidToken: a bad signature, an alg
// other than HS256 (alg "none" included), no exp, an exp beyond MaxTTL, or
// no sub.
func (s *Signer) Verify(token string) (*Claims, error) {
	if c, ok := s.verified.get(token, time.Now()); ok {
		return c, nil
	}
	var c Claims
	if err := s.parse(token, &c); err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: no sub", ErrInvalidToken)
	}
	if c.PubSub != nil && !c.PubSub.Valid() {
		return nil, fmt.Errorf("%w: pubsub room ids must be 1 to 128 of [A-Za-z0-9_-]", ErrInvalidToken)
	}
	s.verified.put(token, &c)
	return &c, nil
}

// VerifyMap parses a token into map claims with the same rules as Verify
// (except that sub is the caller's business).
func (s *Signer) VerifyMap(token string) (jwt.MapClaims, error) {
	c := jwt.MapClaims{}
	if err := s.parse(token, c); err != nil {
		return nil, err
	}
	return c, nil
}

// parse verifies the signature (HS256 only), then the claims: exp required
// and not passed (jwt checks the signature first, so a forged token is
// invalid, never "expired"), then the lifetime cap.
func (s *Signer) parse(token string, claims jwt.Claims) error {
	now := time.Now()
	_, err := jwt.ParseWithClaims(token, claims, s.key,
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return ErrTokenExpired
		}
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	// ParseWithClaims succeeded with exp required, so exp is there.
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return fmt.Errorf("%w: no exp", ErrInvalidToken)
	}
	if left := exp.Sub(now); left > s.maxTTL+MaxTTLLeeway {
		return fmt.Errorf("%w: exp is %s away, more than the maximum lifetime %s", ErrInvalidToken, left.Round(time.Second), s.maxTTL)
	}
	return nil
}

func (s *Signer) key(*jwt.Token) (any, error) { return s.secret, nil }
