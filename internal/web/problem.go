package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/usherhq/usher/internal/usher"
)

// Codes the HTTP edge adds to usher's: they describe the request itself, not
// the domain, so the domain never returns them.
const (
	codeMalformed        = "malformed_request"  // the body is not the JSON the endpoint reads
	codeMethodNotAllowed = "method_not_allowed" // the path exists, the method does not
)

// problemTypeBase prefixes a problem's code to make its stable type URI,
// documented in docs/api.md.
const problemTypeBase = "https://usher.dev/problems/"

// problem is an RFC 9457 problem details body, extended with Usher's error
// code and the fields at fault.
type problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Code   string             `json:"code"`
	Errors []usher.FieldError `json:"errors,omitempty"`
}

// errorStatus maps an error code to its HTTP status and a short title. It is
// the one place that does; an unknown code is an internal error.
func errorStatus(code string) (int, string) {
	switch code {
	case usher.EINVALID:
		return http.StatusUnprocessableEntity, "Invalid input"
	case usher.ENOSEATS:
		return http.StatusConflict, "No seats left"
	case usher.ECONFLICT:
		return http.StatusConflict, "Conflict"
	case usher.EFORBIDDEN:
		return http.StatusForbidden, "Forbidden"
	case usher.ENOTFOUND:
		return http.StatusNotFound, "Not found"
	case usher.EUNAUTHORIZED:
		return http.StatusUnauthorized, "Unauthorized"
	case usher.ETOOLARGE:
		return http.StatusRequestEntityTooLarge, "Request too large"
	case usher.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType, "Unsupported media type"
	case usher.ERATELIMITED:
		return http.StatusTooManyRequests, "Too many requests"
	case usher.EPRECONDITION:
		return http.StatusPreconditionFailed, "Precondition failed"
	case usher.EUNAVAILABLE:
		return http.StatusBadGateway, "Bad gateway"
	case codeMalformed:
		return http.StatusBadRequest, "Malformed request"
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed, "Method not allowed"
	default:
		return http.StatusInternalServerError, "Internal error"
	}
}

// writeError answers with the problem for err. Internal errors are logged
// with their cause and shown only as "internal error".
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := usher.ErrorCode(err)
	status, title := errorStatus(code)
	p := problem{Type: problemTypeBase + code, Title: title, Status: status, Code: code}
	var e *usher.Error
	if errors.As(err, &e) {
		// The message with every field's reason, so a person reading only
		// the detail (curl, a log) still learns what to fix.
		p.Detail, p.Errors = e.Error(), e.Fields
	}
	if status == http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		p.Code, p.Type, p.Detail, p.Errors = usher.EINTERNAL, problemTypeBase+usher.EINTERNAL, "internal error", nil
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="usher"`)
	}
	body, merr := json.Marshal(p)
	if merr != nil { // cannot happen: problem holds only strings and ints
		body = []byte(`{"type":"about:blank","title":"Internal error","status":500,"code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeJSON answers with v as JSON. A value that cannot be encoded is a bug,
// answered as an internal error before anything is written. The body is
// encoded into a reused buffer and sent with its length: no chunked framing,
// so no final chunk written apart, and no copy to append the newline.
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer putJSONBuffer(buf)
	// Encode writes what json.Marshal does, then a newline.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// jsonBuffers keeps writeJSON's buffers between requests; one grown past
// maxPooledJSON (a long list) is left to the collector rather than kept.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledJSON = 256 << 10

func putJSONBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledJSON {
		jsonBuffers.Put(b)
	}
}
