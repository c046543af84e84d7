// Package usher holds Usher's domain types and its one error type. It imports
// nothing else of the project, so every other package can depend on it.
package usher

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes. Edges map them to HTTP statuses and exit codes in one place each.
const (
	ECONFLICT     = "conflict"     // the request clashes with current state
	ENOSEATS      = "no_seats"     // a subscription has no seat left
	EFORBIDDEN    = "forbidden"    // the actor may not do this
	EINTERNAL     = "internal"     // a bug or an unavailable dependency
	EINVALID      = "invalid"      // the input is wrong; Fields says where
	ENOTFOUND     = "not_found"    // no such object in the actor's account
	EUNAUTHORIZED = "unauthorized" // no or bad credentials
	ETOOLARGE     = "too_large"    // a body or a batch exceeds a limit
	EUNSUPPORTED  = "unsupported"  // e.g. a content type the endpoint does not take
	ERATELIMITED  = "rate_limited" // too many attempts
	// EPRECONDITION: the object changed since the version the caller names
	// (an HTTP If-Match that no longer matches).
	EPRECONDITION = "precondition_failed"
	EUNAVAILABLE  = "unavailable" // a service Usher depends on (an identity provider) did not answer
)

// FieldError names one input field and what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Error is an error a user can act on. Anything else is internal and is
// shown to users only as "internal error".
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorFields returns the field errors of err, if any.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// Problems collects field errors so validation can report all of them at once.
type Problems []FieldError

// Add records that field is wrong for reason.
func (p *Problems) Add(field, reason string) {
	*p = append(*p, FieldError{Field: field, Reason: reason})
}

// Addf records a formatted reason.
func (p *Problems) Addf(field, format string, args ...any) {
	p.Add(field, fmt.Sprintf(format, args...))
}

// Err returns nil when there are no problems, else an EINVALID *Error.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: "invalid input", Fields: p}
}
