package domain

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a client-facing error: an HTTP status, a stable code and a message.
// Modules return these (or wrap them); one echo error handler renders them as
// {"error":{"code","message"}} so no handler picks a status by hand.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is matches errors of the same code, so errors.Is(err, ErrNotFound) works for
// any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinel errors, one per code.
var (
	ErrNotFound     = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or invalid bearer token"}
	ErrForbidden    = &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "not allowed"}
	ErrConflict     = &Error{Status: http.StatusConflict, Code: "conflict", Message: "conflict"}
	ErrBadRequest   = &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "bad request"}
	ErrValidation   = &Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Message: "validation failed"}
)

// NotFound is a not_found error naming what is missing.
func NotFound(format string, args ...any) error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

// Forbidden is a forbidden error with a reason.
func Forbidden(format string, args ...any) error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}

// Conflict is a conflict error with a reason.
func Conflict(format string, args ...any) error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a bad_request error with a reason.
func BadRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf(format, args...)}
}

// Invalid is a 422 validation error naming the field at fault.
func Invalid(field, format string, args ...any) error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Field: field,
		Message: field + ": " + fmt.Sprintf(format, args...)}
}

// AsError finds the client-facing error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
