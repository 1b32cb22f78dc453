package console

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// Logging in. The page is given one credential, once:
//
//   - an admin JWT (the "admin" claim, signed with SWITCHBOARD_JWT_SECRET):
//     in the body as {"token": ...} or as Authorization: Bearer;
//   - a Pusher app secret, {"secret": ...}: whoever holds it can already
//     publish to every channel of the app.
//
// Either is exchanged for a console session: a JWT signed with the
// console's own secret (Config.SessionSecret), so it opens the console and
// nothing else (the REST API and the WebSocket doors verify with the JWT
// secret and refuse it). The page keeps the session in sessionStorage and
// sends it as a bearer token, or as ?token= on the event stream (an
// EventSource cannot set headers; the access log never writes query
// strings). An admin JWT is accepted wherever a session is, for scripts.

// sessionAudience marks console session tokens.
const sessionAudience = "switchboard-console"

// ctxWho is the echo context key of the logged-in operator's name.
const ctxWho = "console_who"

var (
	errNoCredential = &domain.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "log in with an admin token or a Pusher app secret"}
	errWrongSecret = &domain.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
		Message: "that is not the secret of any Pusher app of this server"}
	errExpired = &domain.Error{Status: http.StatusUnauthorized, Code: "token_expired",
		Message: "the token has expired: log in again"}
)

// session is who is logged in, and until when.
type session struct {
	who string
	sub string
	exp time.Time
}

// authenticate accepts a console session or an admin JWT.
func (c *Console) authenticate(tok string) (session, error) {
	if tok == "" {
		return session{}, errNoCredential
	}
	claims, err := c.sessions.Verify(tok)
	if err == nil && isSession(claims) {
		return session{who: claims.Name, sub: claims.Subject, exp: expiry(claims)}, nil
	}
	if errors.Is(err, domain.ErrTokenExpired) {
		return session{}, errExpired
	}
	claims, err = c.cfg.Signer.Verify(tok)
	switch {
	case errors.Is(err, domain.ErrTokenExpired):
		return session{}, errExpired
	case err != nil:
		return session{}, domain.ErrUnauthorized
	case claims.PubSub != nil:
		return session{}, domain.Forbidden("a PubSub room token does not open the console")
	case !claims.Admin:
		return session{}, domain.Forbidden("the console needs an admin token")
	}
	who := claims.Name
	if who == "" {
		who = "admin " + claims.Subject
	}
	return session{who: who, sub: claims.Subject, exp: expiry(claims)}, nil
}

func isSession(c *domain.Claims) bool {
	for _, a := range c.Audience {
		if a == sessionAudience {
			return c.Admin
		}
	}
	return false
}

func expiry(c *domain.Claims) time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

// checkSecret finds the app whose secret is s, comparing every app in
// constant time.
func (c *Console) checkSecret(s string) (App, bool) {
	var found App
	ok := false
	for _, a := range c.cfg.Apps {
		if subtle.ConstantTimeCompare([]byte(s), []byte(a.Secret)) == 1 && !ok {
			found, ok = a, true
		}
	}
	return found, ok
}

// requireSession is the middleware of every /console/api route but the
// login: a session or an admin JWT as a bearer token, or (query) as
// ?token=.
func (c *Console) requireSession(query bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			tok, ok := domain.BearerToken(ec.Request())
			if !ok && query {
				tok = ec.QueryParam("token")
			}
			s, err := c.authenticate(tok)
			if err != nil {
				return err
			}
			ec.Set(ctxWho, s)
			return next(ec)
		}
	}
}

// LoginRequest is the body of POST /console/api/session: one of the two.
type LoginRequest struct {
	// Token is an admin JWT (or a console session, to renew it).
	Token string `json:"token,omitempty"`
	// Secret is a Pusher app's secret.
	Secret string `json:"secret,omitempty"`
}

// Session is a console session, as POST /console/api/session answers.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// Who is the operator as the page shows it ("Staff", "app app-id").
	Who string `json:"who"`
	// Node is this node's id in cluster mode, "" on a single node.
	Node string `json:"node"`
}

// login exchanges a credential for a session.
func (c *Console) login(ec echo.Context) error {
	var in LoginRequest
	if ec.Request().ContentLength != 0 {
		if err := domain.Bind(ec, &in); err != nil {
			return err
		}
	}
	var s session
	switch {
	case in.Secret != "":
		app, ok := c.checkSecret(in.Secret)
		if !ok {
			c.cfg.Logger.Info("console: login refused", "by", "app secret", "remote", ec.RealIP())
			return errWrongSecret
		}
		s = session{who: "app " + app.ID, sub: "app:" + app.ID}
	default:
		tok := in.Token
		if tok == "" {
			tok, _ = domain.BearerToken(ec.Request())
		}
		var err error
		if s, err = c.authenticate(tok); err != nil {
			c.cfg.Logger.Info("console: login refused", "by", "token", "remote", ec.RealIP(), "err", err)
			return err
		}
	}
	ttl := c.cfg.SessionTTL
	now := c.cfg.Now()
	if !s.exp.IsZero() && s.exp.Sub(now) < ttl {
		ttl = s.exp.Sub(now)
	}
	if ttl <= 0 {
		return errExpired
	}
	claims := domain.Claims{Name: s.who, Admin: true, RegisteredClaims: jwt.RegisteredClaims{
		Subject: "console:" + s.sub, Audience: jwt.ClaimStrings{sessionAudience}}}
	tok, err := c.sessions.Mint(claims, ttl)
	if err != nil {
		return fmt.Errorf("console: mint session: %w", err)
	}
	c.cfg.Logger.Info("console: login", "who", s.who, "remote", ec.RealIP())
	return ec.JSON(http.StatusCreated, Session{Token: tok, ExpiresAt: now.Add(ttl).UTC().Truncate(time.Second),
		Who: s.who, Node: c.cfg.NodeID})
}
