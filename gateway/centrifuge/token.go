package centrifuge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// identity is what a verified connection token says about a connection.
type identity struct {
	user     string
	expires  time.Time // when the connection's token expires (every token has exp, see domain.Signer)
	info     json.RawMessage
	channels []string // the `channels` claim: channels granted on top of the config
	// The claims gateway.Authorizer reads on canonical channels, kept as
	// fields: a whole domain.Claims (jwt's registered claims included) is
	// ≈ 110 bytes more of every connection (BENCHMARKS.md, "Session 10").
	name     string
	projects []string
	admin    bool
	pubsub   *domain.PubSubRoom
}

// claims are the token's claims as gateway.Authorizer takes them.
func (id *identity) claims() *domain.Claims {
	c := &domain.Claims{Name: id.name, Projects: id.projects, Admin: id.admin, PubSub: id.pubsub}
	c.Subject = id.user
	return c
}

// ttl is the whole seconds until expiry, at least 1 (0 for no expiry).
func (id *identity) ttl(now time.Time) uint32 {
	if id.expires.IsZero() {
		return 0
	}
	s := id.expires.Sub(now).Seconds()
	if s < 1 {
		return 1
	}
	return uint32(s)
}

// errSubscriptionToken refuses a subscription token used to connect.
var errSubscriptionToken = errors.New("centrifuge: a subscription token (with a channel claim) cannot connect")

// verifyConnToken checks a connection JWT: Centrifugo's claims (sub, exp,
// info, channels) plus Switchboard's (name, projects, admin), HS256 with the
// shared secret. An expired token gives domain.ErrTokenExpired (→ error 109,
// the SDK fetches a new one); anything else that fails is invalid (→ 3500).
func verifyConnToken(s *domain.Signer, token string) (*identity, error) {
	m, err := s.VerifyMap(token)
	if err != nil {
		return nil, err
	}
	if _, ok := m["channel"]; ok {
		return nil, errSubscriptionToken
	}
	sub, _ := m["sub"].(string)
	if sub == "" {
		return nil, fmt.Errorf("%w: no sub", domain.ErrInvalidToken)
	}
	id := &identity{user: sub}
	if exp, err := m.GetExpirationTime(); err == nil && exp != nil {
		id.expires = exp.Time
	}
	name, _ := m["name"].(string)
	id.name = name
	id.projects = stringList(m["projects"])
	id.admin, _ = m["admin"].(bool)
	id.channels = stringList(m["channels"])
	if room, ok := m["pubsub"]; ok {
		// A PubSub room token (domain/pubsub.go): the room's channels
		// only, whatever else it claims.
		if id.pubsub, err = pubsubRoom(room); err != nil {
			return nil, err
		}
		id.projects, id.admin, id.channels = nil, false, nil
	}
	switch info := m["info"]; {
	case info != nil:
		if id.info, err = json.Marshal(info); err != nil {
			return nil, fmt.Errorf("%w: info: %v", domain.ErrInvalidToken, err)
		}
	case name != "":
		id.info, _ = json.Marshal(map[string]string{"name": name})
	}
	return id, nil
}

// subGrant is what a verified subscription token grants.
type subGrant struct {
	expires time.Time
	info    json.RawMessage
}

// errTokenMismatch is a subscription token for another user or channel:
// Centrifugo treats it as forged and disconnects with 3500.
var errTokenMismatch = errors.New("centrifuge: subscription token does not match")

// verifySubToken checks a subscription JWT (claims sub, channel, exp,
// info) for user on channel.
func verifySubToken(s *domain.Signer, token, user, channel string) (*subGrant, error) {
	m, err := s.VerifyMap(token)
	if err != nil {
		return nil, err
	}
	sub, _ := m["sub"].(string)
	ch, _ := m["channel"].(string)
	if sub != user || ch != channel {
		return nil, errTokenMismatch
	}
	g := &subGrant{}
	if exp, err := m.GetExpirationTime(); err == nil && exp != nil {
		g.expires = exp.Time
	}
	if info := m["info"]; info != nil {
		g.info, _ = json.Marshal(info)
	}
	return g, nil
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// tokenResponse is the seed's token endpoint answer.
type tokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// issueToken answers POST /api/v1/realtime/token: it exchanges the caller's
// bearer JWT for a connection token with Centrifugo's claims (sub, exp,
// info{name}) plus the bearer's projects/admin, so canonical channels are
// authorized over Centrifugo exactly as over Pusher.
func (a *Adapter) issueToken(c echo.Context) error {
	cl := domain.ClaimsFrom(c.Request().Context())
	if cl == nil {
		return domain.ErrUnauthorized
	}
	now := time.Now()
	exp := now.Add(a.cfg.TokenTTL)
	m := jwt.MapClaims{"sub": cl.Subject, "iat": now.Unix(), "exp": exp.Unix()}
	if cl.Name != "" {
		m["info"] = map[string]string{"name": cl.Name}
	}
	if len(cl.Projects) > 0 {
		m["projects"] = cl.Projects
	}
	if cl.Admin {
		m["admin"] = true
	}
	tok, err := a.cfg.Signer.SignMap(m)
	if err != nil {
		return fmt.Errorf("centrifuge: sign connection token: %w", err)
	}
	return c.JSON(http.StatusOK, tokenResponse{Token: tok, ExpiresAt: exp.UTC().Format(time.RFC3339)})
}

// pubsubRoom reads a token's "pubsub" claim.
func pubsubRoom(v any) (*domain.PubSubRoom, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: pubsub: %v", domain.ErrInvalidToken, err)
	}
	var r domain.PubSubRoom
	if err := json.Unmarshal(b, &r); err != nil || !r.Valid() {
		return nil, fmt.Errorf("%w: pubsub: organization_id, event_id and session_id must be 1 to 128 of [A-Za-z0-9_-]", domain.ErrInvalidToken)
	}
	return &r, nil
}
