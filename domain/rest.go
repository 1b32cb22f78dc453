package domain

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// HeaderRequestID is taken from the request or generated, and returned.
const HeaderRequestID = "X-Request-ID"

// NewEcho returns an echo instance with Switchboard's REST conventions: one
// error renderer, request ids, panic recovery and a body size cap.
func NewEcho(log *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(log)
	e.Use(recoverer(log), requestID, bodyLimit(1<<20))
	return e
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := toError(err)
		if e.Status >= 500 {
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
// request context. Required makes a missing or bad token a 401.
func Authn(s *Signer, required bool) echo.MiddlewareFunc {
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

// Bind decodes a JSON body. Unknown fields are ignored (clients evolve);
// a body that is not JSON is a 400 with the decoder's reason.
func Bind(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return BadRequest("request body is empty")
		}
		return BadRequest("malformed JSON body: %v", err)
	}
	if dec.More() {
		return BadRequest("malformed JSON body: trailing data")
	}
	return nil
}
