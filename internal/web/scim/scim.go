// Package scim is Usher's SCIM 2.0 service provider (RFC 7643, RFC 7644),
// served at /scim/v2 for the account of the SCIM token that calls it. It
// translates SCIM resources, filters and PATCH operations into calls of the
// access service, which decides and audits; it decides nothing itself.
//
// It accepts what the common clients send besides the RFCs' own forms:
// Microsoft Entra ID (PATCH op names in any case, "active" as the string
// "False", value filters in paths, PATCH without a path) and Okta (PATCH
// with a value object, PUT of the whole user).
package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// Prefix is where the service provider is served.
const Prefix = "/scim/v2"

// ContentType is the media type of every answer (RFC 7644 §3.1).
const ContentType = "application/scim+json"

// Schema and message URNs.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaSPConfig   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaResType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	msgList          = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	msgError         = "urn:ietf:params:scim:api:messages:2.0:Error"
	msgPatch         = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// Config holds what the handler depends on.
type Config struct {
	Access *access.Service // decides and does everything
	Logger *slog.Logger    // internal errors; nil = discard
	// MaxBody bounds request bodies in bytes; 0 = 1 MiB.
	MaxBody int64
	// BaseURL is the server's public URL (e.g. https://usher.example.com),
	// for the locations in answers; "" = as the request reached the server.
	BaseURL string
}

type server struct {
	access  *access.Service
	log     *slog.Logger
	maxBody int64
	base    string
}

// NewHandler returns the handler of every path under Prefix.
func NewHandler(cfg Config) http.Handler {
	s := &server{access: cfg.Access, log: cfg.Logger, maxBody: cfg.MaxBody, base: strings.TrimRight(cfg.BaseURL, "/")}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	mux := http.NewServeMux()
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, s.bearer(fn)) }
	h("GET "+Prefix+"/ServiceProviderConfig", s.serviceProviderConfig)
	h("GET "+Prefix+"/ResourceTypes", s.resourceTypes)
	h("GET "+Prefix+"/ResourceTypes/{name}", s.resourceType)
	h("GET "+Prefix+"/Schemas", s.schemas)
	h("GET "+Prefix+"/Schemas/{id}", s.schema)

	h("GET "+Prefix+"/Users", s.listUsers)
	h("POST "+Prefix+"/Users", s.createUser)
	h("GET "+Prefix+"/Users/{id}", s.getUser)
	h("PUT "+Prefix+"/Users/{id}", s.replaceUser)
	h("PATCH "+Prefix+"/Users/{id}", s.patchUser)
	h("DELETE "+Prefix+"/Users/{id}", s.deleteUser)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := mux.Handler(r); pattern == "" {
			// ServeMux would answer 404 or 405 in plain text; ask it which.
			probe := &statusProbe{header: http.Header{}}
			h.ServeHTTP(probe, r)
			if probe.status == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", probe.header.Get("Allow"))
				s.writeError(w, r, &scimError{status: http.StatusMethodNotAllowed, detail: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)})
				return
			}
			s.writeError(w, r, &scimError{status: http.StatusNotFound, detail: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// statusProbe is a ResponseWriter that only remembers the status and headers.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

type actorKey struct{}

func actorFrom(ctx context.Context) usher.Actor {
	a, _ := ctx.Value(actorKey{}).(usher.Actor)
	return a
}

// bearer authenticates "Authorization: Bearer <token>". Whether the token
// may provision is the access service's decision (a SCIM-scoped token).
func (s *server) bearer(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			s.writeError(w, r, usher.Errorf(usher.EUNAUTHORIZED, `send a SCIM token as "Authorization: Bearer <token>"`))
			return
		}
		a, err := s.access.Authenticate(r.Context(), token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		web.NoteActor(r.Context(), a.AccountID, a.UserID)
		next(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	}
}

// scimError is an error of the protocol itself, with its SCIM detail error
// keyword (RFC 7644 §3.12).
type scimError struct {
	status   int
	scimType string
	detail   string
}

func (e *scimError) Error() string { return e.detail }

func badRequest(scimType, format string, args ...any) error {
	return &scimError{status: http.StatusBadRequest, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

// errorBody is the SCIM error response; status is a string (RFC 7644 §3.12).
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// errorStatus maps usher's error codes to SCIM's statuses and keywords.
func errorStatus(code string) (int, string) {
	switch code {
	case usher.EINVALID:
		return http.StatusBadRequest, "invalidValue"
	case usher.ECONFLICT, usher.ENOSEATS:
		return http.StatusConflict, ""
	case usher.EFORBIDDEN:
		return http.StatusForbidden, ""
	case usher.ENOTFOUND:
		return http.StatusNotFound, ""
	case usher.EUNAUTHORIZED:
		return http.StatusUnauthorized, ""
	case usher.ETOOLARGE:
		return http.StatusRequestEntityTooLarge, "tooMany"
	case usher.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType, ""
	case usher.ERATELIMITED:
		return http.StatusTooManyRequests, ""
	}
	return http.StatusInternalServerError, ""
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := errorBody{Schemas: []string{msgError}}
	status := http.StatusInternalServerError
	var se *scimError
	if errors.As(err, &se) {
		status, body.ScimType, body.Detail = se.status, se.scimType, se.detail
	} else {
		status, body.ScimType = errorStatus(usher.ErrorCode(err))
		var ue *usher.Error
		if errors.As(err, &ue) {
			body.Detail = ue.Error()
			if ue.Code == usher.ECONFLICT && len(ue.Fields) > 0 {
				body.ScimType = "uniqueness" // a value another resource holds
			}
		}
	}
	if status == http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		body.Detail = "internal error"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="usher"`)
	}
	body.Status = strconv.Itoa(status)
	s.write(w, r, status, body)
}

func (s *server) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads a JSON object body. SCIM clients send application/scim+json,
// some application/json; both are taken.
func (s *server) decode(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != ContentType && mt != "application/json") {
			return nil, usher.Errorf(usher.EUNSUPPORTED, "send %s, not %s", ContentType, ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, usher.Errorf(usher.ETOOLARGE, "the body is larger than %d bytes", s.maxBody)
	} else if err != nil {
		return nil, badRequest("invalidSyntax", "read body: %v", err)
	}
	var v map[string]any
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil || v == nil {
		return nil, badRequest("invalidSyntax", "the body is not a JSON object")
	}
	return v, nil
}

// baseURL is the absolute URL of the service provider, for meta.location.
func (s *server) baseURL(r *http.Request) string {
	if s.base != "" {
		return s.base + Prefix
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + Prefix
}

// listResponse is a page of resources (RFC 7644 §3.4.2).
type listResponse struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []any    `json:"Resources"`
}

// DefaultCount is the page size when a list names no count.
const DefaultCount = 100

// paging reads startIndex (1-based) and count as RFC 7644 §3.4.2.4 says:
// a startIndex below 1 is 1, a negative count is 0.
func paging(r *http.Request) (start, count int, err error) {
	start, count = 1, DefaultCount
	q := r.URL.Query()
	if v := q.Get("startIndex"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, badRequest("invalidValue", "startIndex: %q is not a number", v)
		}
		start = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			return 0, 0, badRequest("invalidValue", "count: %q is not a number", v)
		}
		count = min(max(n, 0), access.MaxProvisionPage)
	}
	return start, count, nil
}
