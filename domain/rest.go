package domain

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// HeaderRequestID is taken from the request or generated, and returned.
const HeaderRequestID = "X-Request-ID"

// NewEcho returns an echo instance with Switchboard's REST conventions: one
// error renderer, an access log line per request (accesslog.go), request
// ids, panic recovery, a body size cap, and path and query parameters
// refused when PostgreSQL could not store them.
// A nil log means slog.Default().
func NewEcho(log *slog.Logger) *echo.Echo {
	if log == nil {
		log = slog.Default()
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(log)
	e.Use(accessLog(log), recoverer(log), requestID, bodyLimit(1<<20), textParams)
	return e
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	var unavailable rateLog
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := toError(err)
		if e.Code == ErrDatabaseUnavailable.Code {
			// Clients (and proxies) retry after the health check's period.
			c.Response().Header().Set("Retry-After", "2")
			// Not an error of ours, but an operator must see why writes
			// fail (a deadline under load, the database down): at most one
			// line per rateLogEvery, with how many it stands for.
			if n, ok := unavailable.due(time.Now()); ok {
				log.Warn("request answered 503 database_unavailable", "method", c.Request().Method, "path", c.Path(),
					"request_id", c.Response().Header().Get(HeaderRequestID), "err", err, "since_last_line", n)
			}
		}
		if e.Status >= 500 && e.Code != ErrDatabaseUnavailable.Code {
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(),
				"request_id", c.Response().Header().Get(HeaderRequestID), "err", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(e.Status)
			return
		}
		_ = c.JSON(e.Status, ErrorBody{Error: e})
	}
}

func toError(err error) *Error {
	if e, ok := AsError(err); ok {
		return e
	}
	if IsUnavailable(err) {
		return ErrDatabaseUnavailable
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		code := strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_"))
		if code == "" {
			code = "error"
		}
		return &Error{Status: he.Code, Code: code, Message: msg}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

func recoverer(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("panic in handler", "path", c.Path(), "panic", p)
					err = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
				}
			}()
			return next(c)
		}
	}
}

func bodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().ContentLength > n {
				return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "request body too large"}
			}
			c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, n)
			return next(c)
		}
	}
}

// requestID takes X-Request-ID from the request (when sane) or makes one,
// and returns it on the response.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(HeaderRequestID)
		if id == "" || len(id) > 200 {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Response().Header().Set(HeaderRequestID, id)
		c.Set("request_id", id)
		return next(c)
	}
}

// Op names a route's operation ("v1.project.attendees.store"). Events caused
// by the request carry it, with the request id, as "x-triggered-by".
func Op(operationID string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rid, _ := c.Get("request_id").(string)
			c.Set("operation_id", operationID)
			ctx := WithTrigger(c.Request().Context(), TriggeredBy{OperationID: operationID, RequestID: rid})
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// Authn verifies the bearer token when present and puts the claims on the
// request context. Required makes a missing or bad token a 401. A PubSub
// room token is refused (403): its sub is a participant id a plugin chose,
// never a member identity (see AuthnChannels).
func Authn(s *Signer, required bool) echo.MiddlewareFunc { return authn(s, required, false) }

// AuthnChannels is Authn for channel authorization doors, where the
// gateway's Authorizer decides per channel: there a room token may ask for
// its room's channels (pusher-js in a PubSub room).
func AuthnChannels(s *Signer) echo.MiddlewareFunc { return authn(s, true, true) }

func authn(s *Signer, required, rooms bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			tok, ok := BearerToken(c.Request())
			if !ok {
				if required {
					return ErrUnauthorized
				}
				return next(c)
			}
			claims, err := s.Verify(tok)
			if err != nil {
				if errors.Is(err, ErrTokenExpired) {
					return &Error{Status: http.StatusUnauthorized, Code: "token_expired", Message: "bearer token expired"}
				}
				return ErrUnauthorized
			}
			if claims.PubSub != nil && !rooms {
				return Forbidden("a PubSub room token opens its room's channels only")
			}
			c.SetRequest(c.Request().WithContext(WithClaims(c.Request().Context(), claims)))
			return next(c)
		}
	}
}

// BearerToken extracts the token of "Authorization: Bearer <token>".
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// Bind decodes a JSON body. Unknown fields are ignored (clients evolve).
// In order, so the answer is the same whatever else is wrong:
//   - a body that is not JSON is a 400 with the decoder's reason, and so is
//     anything but whitespace after the JSON value (`{...}}` would pass a
//     streaming decoder, which stops at the end of the first value);
//   - a NUL character in any string of the body, keys included, is a 422
//     naming the field (see input.go: PostgreSQL cannot store it), also
//     when the string was meant for a time or an id;
//   - JSON that does not fit v (a string for a number, 1e400) is a 400.
func Bind(c echo.Context, v any) error {
	// The whole body is read (bodyLimit caps it at 1 MiB) so the checks
	// below see the bytes the decoder saw.
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "request body too large"}
		}
		return BadRequest("could not read the request body")
	}
	// Syntax first, into a RawMessage (which takes any JSON value), so a
	// syntax error is told apart from a value that does not fit v.
	var value json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&value); err != nil {
		if errors.Is(err, io.EOF) {
			return BadRequest("request body is empty")
		}
		return BadRequest("malformed JSON body: %v", err)
	}
	if len(bytes.TrimLeft(raw[dec.InputOffset():], " \t\r\n")) > 0 {
		return BadRequest("malformed JSON body: trailing data after the JSON value")
	}
	// The cheap scan decides for almost every body; only one that holds
	// the escape is walked again to name the field.
	if hasNULEscape(value) {
		if field, ok := nulField(value); ok {
			return Invalid(field, "must not contain NUL characters")
		}
	}
	if err := json.Unmarshal(value, v); err != nil {
		return BadRequest("malformed JSON body: %v", err)
	}
	return nil
}

// rateLogEvery is the least time between two lines of a rateLog.
const rateLogEvery = 5 * time.Second

// rateLog lets a repeated warning through at most once per rateLogEvery.
type rateLog struct {
	mu    sync.Mutex
	last  time.Time
	count int
}

// due counts one occurrence and reports whether to log it, with how many
// occurred since the last line (itself included).
func (r *rateLog) due(now time.Time) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	if !r.last.IsZero() && now.Sub(r.last) < rateLogEvery {
		return 0, false
	}
	n := r.count
	r.last, r.count = now, 0
	return n, true
}
