package pubsub

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/domain"
)

// RoomTokens mints room tokens: short-lived JWTs (domain.Signer, the same
// secret as every other token) that open one PubSub room.
type RoomTokens struct {
	Signer *domain.Signer
	// TTL is a room token's lifetime when the request names none.
	TTL time.Duration
}

// DefaultRoomTokenTTL is a room token's lifetime unless asked otherwise:
// a working day, so a page opened for a session needs no refresh.
const DefaultRoomTokenTTL = 8 * time.Hour

// Routes registers the PubSub endpoints. The publish and room-token
// endpoints authenticate with an organization's API token (on e, outside
// api's JWT check); token administration is for admins, on api.
func Routes(e *echo.Echo, api *echo.Group, s *Store, db *domain.DB, rt RoomTokens) {
	publish := func(c echo.Context) error {
		var body PublishBody
		if err := domain.Bind(c, &body); err != nil {
			return err
		}
		p, err := body.Parse(s.MaxPayload)
		if err != nil {
			return err
		}
		res, err := s.Publish(c.Request().Context(), orgOf(c), p)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, res)
	}
	// The seed names both paths.
	for _, path := range []string{"/api/v1/pub_subs", "/api/v1/publish"} {
		e.POST(path, publish, domain.Op("v1.pub_subs.store"), s.apiToken, domain.Idempotent(db))
	}
	e.POST("/api/v1/pubsub/room_tokens", rt.mint, domain.Op("v1.pubsub.room_tokens.store"), s.apiToken)

	api.POST("/pubsub/api_tokens", func(c echo.Context) error {
		if err := admin(c); err != nil {
			return err
		}
		var in struct {
			OrganizationID string `json:"organization_id"`
			Name           string `json:"name"`
		}
		if err := domain.Bind(c, &in); err != nil {
			return err
		}
		t, err := s.CreateToken(c.Request().Context(), in.OrganizationID, in.Name)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, t)
	}, domain.Op("v1.pubsub.api_tokens.store"))
	api.GET("/pubsub/api_tokens", func(c echo.Context) error {
		if err := admin(c); err != nil {
			return err
		}
		l, err := s.Tokens(c.Request().Context(), c.QueryParam("organization_id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"data": l})
	}, domain.Op("v1.pubsub.api_tokens.index"))
	api.DELETE("/pubsub/api_tokens/:id", func(c echo.Context) error {
		if err := admin(c); err != nil {
			return err
		}
		if err := s.RevokeToken(c.Request().Context(), c.Param("id")); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}, domain.Op("v1.pubsub.api_tokens.destroy"))
}

func admin(c echo.Context) error {
	if cl := domain.ClaimsFrom(c.Request().Context()); cl == nil || !cl.Admin {
		return domain.Forbidden("API tokens are managed by admins")
	}
	return nil
}

// apiToken authenticates `Authorization: <API token>` (the seed's form) or
// `Bearer <API token>`, and keeps its organization for the handler. The
// token id becomes the request's subject, so Idempotency-Keys are kept per
// token.
func (s *Store) apiToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := strings.TrimSpace(c.Request().Header.Get("Authorization"))
		if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
			tok = strings.TrimSpace(tok[7:])
		}
		org, id, err := s.Authenticate(c.Request().Context(), tok)
		if err != nil {
			return err
		}
		c.Set(orgKey, org)
		cl := &domain.Claims{}
		cl.Subject = "pubsub-api-token:" + id
		c.SetRequest(c.Request().WithContext(domain.WithClaims(c.Request().Context(), cl)))
		return next(c)
	}
}

const orgKey = "pubsub.organization"

func orgOf(c echo.Context) string { s, _ := c.Get(orgKey).(string); return s }

// RoomTokenRequest asks for a room token of the API token's organization.
type RoomTokenRequest struct {
	EventID     string `json:"event_id"`
	SessionID   string `json:"session_id"`
	Participant struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"participant"`
	// TTL is the lifetime in seconds; 0 means RoomTokens.TTL.
	TTL int64 `json:"ttl"`
}

// RoomToken answers a room token request.
type RoomToken struct {
	Token          string           `json:"token"`
	ExpiresAt      domain.Timestamp `json:"expires_at"`
	OrganizationID string           `json:"organization_id"`
	EventID        string           `json:"event_id"`
	SessionID      string           `json:"session_id"`
	Channels       []string         `json:"channels"`
}

func (rt RoomTokens) mint(c echo.Context) error {
	var in RoomTokenRequest
	if err := domain.Bind(c, &in); err != nil {
		return err
	}
	ttl := rt.TTL
	if in.TTL != 0 {
		ttl = time.Duration(in.TTL) * time.Second
	}
	room := domain.PubSubRoom{Organization: orgOf(c), Event: in.EventID, Session: in.SessionID}
	tok, exp, err := MintRoomToken(rt.Signer, room, in.Participant.ID, in.Participant.Name, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, RoomToken{Token: tok, ExpiresAt: domain.Timestamp(exp), OrganizationID: room.Organization,
		EventID: room.Event, SessionID: room.Session, Channels: room.Channels()})
}

// MintRoomToken signs a room token for participant (sub) in room. Every
// mistake is a validation error naming the request field.
func MintRoomToken(s *domain.Signer, room domain.PubSubRoom, participant, name string, ttl time.Duration) (string, time.Time, error) {
	switch {
	case !domain.ValidPubSubID(room.Organization):
		return "", time.Time{}, domain.Invalid("organization_id", "must be 1 to 128 of [A-Za-z0-9_-]")
	case !domain.ValidPubSubID(room.Event):
		return "", time.Time{}, domain.Invalid("event_id", "must be 1 to 128 of [A-Za-z0-9_-]")
	case !domain.ValidPubSubID(room.Session):
		return "", time.Time{}, domain.Invalid("session_id", "must be 1 to 128 of [A-Za-z0-9_-]")
	case strings.TrimSpace(participant) == "" || len(participant) > 128:
		return "", time.Time{}, domain.Invalid("participant.id", "must be 1 to 128 characters")
	case len(name) > 200:
		return "", time.Time{}, domain.Invalid("participant.name", "must be at most 200 characters")
	case ttl <= 0 || ttl > s.MaxTTL():
		return "", time.Time{}, domain.Invalid("ttl", "must be between 1 and %d seconds", int64(s.MaxTTL()/time.Second))
	}
	c := domain.Claims{Name: name, PubSub: &room}
	c.Subject = participant
	tok, err := s.Mint(c, ttl)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, time.Now().Add(ttl).UTC().Truncate(time.Second), nil
}
