package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors a client can test with errors.Is on an *Error.
var (
	ErrNotFound      = errors.New("not found")
	ErrConflict      = errors.New("conflict")
	ErrForbidden     = errors.New("forbidden")
	ErrPrecondition  = errors.New("precondition failed")
	ErrUnavailable   = errors.New("service unavailable")
	ErrBadRequest    = errors.New("bad request")
	ErrNotAuthorized = errors.New("not authorized")
)

// Response is the envelope of every answer, as LXD's.
type Response struct {
	Type       string          `json:"type"`
	Status     string          `json:"status,omitempty"`
	StatusCode int             `json:"status_code,omitempty"`
	Error      string          `json:"error,omitempty"`
	ErrorCode  int             `json:"error_code,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	// Operation is the URL of the operation of an async answer.
	Operation string `json:"operation,omitempty"`
}

// Error is a failed API call: the HTTP status code and the server's message.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is maps status codes onto the package's sentinel errors.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusForbidden:
		return target == ErrForbidden
	case http.StatusPreconditionFailed:
		return target == ErrPrecondition
	case http.StatusServiceUnavailable:
		return target == ErrUnavailable
	case http.StatusBadRequest:
		return target == ErrBadRequest
	case http.StatusUnauthorized:
		return target == ErrNotAuthorized
	}
	return false
}

// Errorf builds an *Error with the given status code.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
