package domain

import (
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifiedTokens remembers the tokens Verify accepted, until their exp. A
// REST client sends the same bearer token with every request, and
// verifying it again (base64, JSON, HMAC) was 9.6 % of the server's CPU on
// the write path (BENCHMARKS.md, Session 11). The verdict on an accepted
// token cannot change before its exp: the secret is fixed for the life of
// the Signer, and every other check only gets easier as time passes (nbf
// was already reached, exp − now shrinks below the lifetime cap). Only
// exact token strings hit, so a token with another signature is verified
// in full; refused tokens are never kept.
type verifiedTokens struct {
	mu sync.Mutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	claims Claims
	exp    time.Time
}

// maxVerifiedTokens bounds the memory of the cache (a token is a few
// hundred bytes): past it, an arbitrary entry makes room.
const maxVerifiedTokens = 4096

// get returns a copy of token's claims if it was accepted and has not
// expired at now.
func (v *verifiedTokens) get(token string, now time.Time) (*Claims, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[token]
	if !ok {
		return nil, false
	}
	if !now.Before(e.exp) {
		delete(v.m, token)
		return nil, false
	}
	return e.claims.clone(), true
}

// put keeps accepted claims c of token.
func (v *verifiedTokens) put(token string, c *Claims) {
	if c.ExpiresAt == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[string]verifiedToken{}
	}
	if _, ok := v.m[token]; !ok && len(v.m) >= maxVerifiedTokens {
		for k := range v.m {
			delete(v.m, k)
			break
		}
	}
	v.m[token] = verifiedToken{claims: *c.clone(), exp: c.ExpiresAt.Time}
}

// clone copies c deeply enough that neither the cache nor a caller sees the
// other's changes.
func (c *Claims) clone() *Claims {
	d := *c
	d.Projects = slices.Clone(c.Projects)
	if c.PubSub != nil {
		r := *c.PubSub
		d.PubSub = &r
	}
	d.Audience = slices.Clone(c.Audience)
	d.ExpiresAt, d.NotBefore, d.IssuedAt = cloneDate(c.ExpiresAt), cloneDate(c.NotBefore), cloneDate(c.IssuedAt)
	return &d
}

func cloneDate(t *jwt.NumericDate) *jwt.NumericDate {
	if t == nil {
		return nil
	}
	d := *t
	return &d
}
