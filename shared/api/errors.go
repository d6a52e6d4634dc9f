package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error at the API edge. Each kind maps to one HTTP status and one
// gRPC code (KFP's REST errors carry gRPC codes) in one place, StatusOf.
type Kind int

// Error kinds.
const (
	KindInternal Kind = iota
	KindInvalid
	KindNotFound
	KindConflict
	KindUnauthenticated
	KindPermissionDenied
	KindFailedPrecondition
	KindUnavailable
	KindTooLarge
)

// Error is an error with a kind. Message is safe to show to the caller.
type Error struct {
	Kind    Kind
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k.
func Errorf(k Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Sentinel kinds for errors.Is.
var (
	ErrNotFound = &Error{Kind: KindNotFound, Message: "not found"}
	ErrConflict = &Error{Kind: KindConflict, Message: "already exists"}
	ErrInvalid  = &Error{Kind: KindInvalid, Message: "invalid"}
)

var sentinels = map[*Error]bool{ErrNotFound: true, ErrConflict: true, ErrInvalid: true}

// Is matches a sentinel of the same kind, so errors.Is(err, api.ErrNotFound) holds for
// any not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && sentinels[t] && t.Kind == e.Kind
}

// KindOf returns the kind of err, KindInternal when it has none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// StatusOf maps an error to its HTTP status and gRPC code, and the message to show.
// Internal errors show a generic message: their text may carry details (addresses,
// secrets) that must not leak.
func StatusOf(err error) (httpStatus int, grpcCode int, message string) {
	var e *Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError, 13, "internal error"
	}
	switch e.Kind {
	case KindInvalid:
		return http.StatusBadRequest, 3, e.Error()
	case KindNotFound:
		return http.StatusNotFound, 5, e.Error()
	case KindConflict:
		return http.StatusConflict, 6, e.Error()
	case KindUnauthenticated:
		return http.StatusUnauthorized, 16, e.Error()
	case KindPermissionDenied:
		return http.StatusForbidden, 7, e.Error()
	case KindFailedPrecondition:
		return http.StatusPreconditionFailed, 9, e.Error()
	case KindUnavailable:
		return http.StatusServiceUnavailable, 14, e.Error()
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge, 8, e.Error()
	}
	return http.StatusInternalServerError, 13, "internal error"
}
