package actioncable

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"switchboard/domain"
)

// errNoToken: the request carried no token in any accepted place.
var errNoToken = errors.New("actioncable: no token")

// errCrossSiteCookie: a cookie identity arrived from an origin that is not
// allowed; any site could otherwise open /cable with the visitor's cookie.
var errCrossSiteCookie = errors.New("actioncable: cookie identity from a foreign origin")

// identify finds the connection's identity, the way ApplicationCable's
// identified_by does in a Rails app, with a JWT instead of encrypted cookies:
//  1. the token query parameter (createConsumer(() => `/cable?token=${jwt}`));
//  2. an Authorization header ("Bearer <jwt>"), set by non-browser clients;
//  3. a cookie (default name "Authorization", value "<jwt>" or
//     "Bearer <jwt>"), set by the app for browsers, which cannot send
//     headers on a WebSocket. Cookies ride along on cross-site requests, so
//     they only count when the Origin is this host or an allowed origin.
func (a *Adapter) identify(r *http.Request) (*domain.Claims, error) {
	tok := r.URL.Query().Get(a.cfg.TokenParam)
	if tok == "" {
		if h := r.Header.Get("Authorization"); h != "" {
			tok = bearer(h)
		}
	}
	if tok == "" {
		if ck, err := r.Cookie(a.cfg.CookieName); err == nil && ck.Value != "" {
			if !a.sameSiteOrigin(r) {
				return nil, errCrossSiteCookie
			}
			v := ck.Value
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			}
			tok = bearer(v)
		}
	}
	if tok == "" {
		return nil, errNoToken
	}
	claims, err := a.cfg.Signer.Verify(tok)
	if err == nil && claims.PubSub != nil {
		// A PubSub room token's sub is a participant id a plugin chose:
		// it must not open a member's {me} streams here.
		return nil, fmt.Errorf("%w: a PubSub room token is not an ActionCable identity", domain.ErrInvalidToken)
	}
	return claims, err
}

// bearer strips an optional "Bearer " scheme.
func bearer(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return v
}

// checkOrigin is the upgrader's origin rule: no allow-list means any origin
// (tokens, not origins, guard the channels); with a list, only listed
// origins and this host.
func (a *Adapter) checkOrigin(r *http.Request) bool {
	if a.cfg.Origins != nil {
		return a.cfg.Origins.CheckOrigin(r)
	}
	if len(a.cfg.AllowedOrigins) == 0 {
		return true
	}
	return a.sameSiteOrigin(r)
}

// sameSiteOrigin reports whether the request has no Origin (not a browser),
// comes from this host, or from an allowed origin.
func (a *Adapter) sameSiteOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if slices.Contains(a.cfg.AllowedOrigins, o) || slices.Contains(a.cfg.AllowedOrigins, "*") {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}
