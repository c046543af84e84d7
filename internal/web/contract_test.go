package web_test

// The API contract: docs/openapi.yaml is checked against the code three ways.
//
//  1. TestOpenAPIDocument: the document loads and is valid OpenAPI, and keeps
//     the house rules that make (3) meaningful: an operationId and a declared
//     tag per operation, every status listed (no "default"), errors as
//     application/problem+json, response objects closed with
//     additionalProperties: false.
//  2. TestOpenAPIRoutesMatchCode: the routes internal/web registers and the
//     document's operations are the same set.
//  3. Every API test server is made with newTestServer, which validates each
//     request and answer against the document while the tests run: an
//     undocumented path, status, field, content type or header fails the
//     test that sent the request, naming the operation and what drifted.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// openAPIPath is docs/openapi.yaml, found from this file so tests run from
// any directory.
func openAPIPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs", "openapi.yaml")
}

// contract is the loaded document with a router over its operations.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIPath())
	if err != nil {
		return nil, fmt.Errorf("load docs/openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml is not valid OpenAPI: %w", err)
	}
	// Route by path alone: the test servers listen on random ports, not
	// on the documented server URL.
	routed := *doc
	routed.Servers = nil
	r, err := legacy.NewRouter(&routed)
	if err != nil {
		return nil, fmt.Errorf("route docs/openapi.yaml: %w", err)
	}
	return &contract{doc: doc, router: r}, nil
})

func mustContract(t testing.TB) *contract {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func init() {
	// Usage events also come as NDJSON; the document gives them as strings.
	// CSV too: a malformed line is rejected on its own, the others stored.
	for _, ct := range []string{"application/x-ndjson", "application/ndjson", "application/jsonl", "text/csv"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}
}

// operations lists the document's operations as ServeMux patterns
// ("GET /api/v1/users/{id}").
func (c *contract) operations() map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

func TestOpenAPIDocument(t *testing.T) {
	c := mustContract(t)
	tags := map[string]bool{}
	for _, tag := range c.doc.Tags {
		tags[tag.Name] = true
	}
	ids := map[string]string{}
	for pattern, op := range c.operations() {
		if op.OperationID == "" {
			t.Errorf("%s: no operationId", pattern)
		} else if other, dup := ids[op.OperationID]; dup {
			t.Errorf("%s: operationId %q is also %s's", pattern, op.OperationID, other)
		}
		ids[op.OperationID] = pattern
		if len(op.Tags) == 0 {
			t.Errorf("%s (%s): no tag", pattern, op.OperationID)
		}
		for _, tag := range op.Tags {
			if !tags[tag] {
				t.Errorf("%s (%s): tag %q is not declared in the top-level tags", pattern, op.OperationID, tag)
			}
		}
		if op.Responses.Default() != nil {
			t.Errorf("%s (%s): has a default response; list every status instead, so an undocumented one fails the contract", pattern, op.OperationID)
		}
		for status, ref := range op.Responses.Map() {
			resp := ref.Value
			isError := strings.HasPrefix(status, "4") || strings.HasPrefix(status, "5")
			if isError && !((pattern == "GET /healthz" || pattern == "GET /readyz") && status == "503") { // their own JSON for probes
				if len(resp.Content) != 1 || resp.Content.Get("application/problem+json") == nil {
					t.Errorf("%s (%s): status %s must answer application/problem+json only", pattern, op.OperationID, status)
				}
			}
			for ct, mt := range resp.Content {
				if mt.Schema != nil {
					for _, where := range openObjects(mt.Schema, "", map[*openapi3.Schema]bool{}) {
						t.Errorf("%s (%s): status %s %s: object %s lacks additionalProperties: false, so undocumented fields would pass", pattern, op.OperationID, status, ct, where)
					}
				}
			}
		}
	}
}

// openObjects returns where an object schema with properties allows fields
// it does not list.
func openObjects(ref *openapi3.SchemaRef, at string, seen map[*openapi3.Schema]bool) []string {
	s := ref.Value
	if s == nil || seen[s] {
		return nil
	}
	seen[s] = true
	if ref.Ref != "" {
		at = ref.Ref
	}
	var out []string
	if len(s.Properties) > 0 && (s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has) && s.AdditionalProperties.Schema == nil {
		out = append(out, cmpOr(at, "(inline)"))
	}
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, openObjects(s.Properties[name], at+"."+name, seen)...)
	}
	if s.Items != nil {
		out = append(out, openObjects(s.Items, at+"[]", seen)...)
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range group {
			out = append(out, openObjects(sub, at, seen)...)
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestOpenAPIRoutesMatchCode(t *testing.T) {
	c := mustContract(t)
	documented := c.operations()
	registered := map[string]bool{}
	for _, pattern := range web.RoutePatterns() {
		registered[pattern] = true
		if documented[pattern] == nil {
			t.Errorf("route %q is registered in internal/web/routes.go but is not an operation in docs/openapi.yaml", pattern)
		}
	}
	for pattern, op := range documented {
		if !registered[pattern] {
			t.Errorf("operation %s (%s) is in docs/openapi.yaml but no route in internal/web/routes.go serves it", pattern, op.OperationID)
		}
	}
	if len(registered) == 0 {
		t.Fatal("web.RoutePatterns returned no routes")
	}
}

// newTestServer serves h for an API test, checking every request and answer
// against docs/openapi.yaml. A drift fails t with the operation and what
// drifted.
func newTestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	c := mustContract(t)
	srv := httptest.NewServer(c.check(h, func(err error) { t.Errorf("API contract (docs/openapi.yaml): %v", err) }))
	t.Cleanup(srv.Close)
	return srv
}

// Bodies larger than these are passed through unchecked: the streaming
// tests send tens of MB and measure the server's memory.
const (
	maxCheckedRequest  = 256 << 10
	maxCheckedResponse = 4 << 20
)

// genericHeaders are set on every answer (docs/api.md, "Responses and
// headers") or by net/http itself; every other header must be documented
// on the response it appears on.
var genericHeaders = []string{"Cache-Control", "Content-Type", "Content-Length", "X-Content-Type-Options", "X-Request-Id", "Vary", "Date"}

// check serves next and reports every drift of an exchange from the document.
func (c *contract) check(next http.Handler, report func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := &capture{r: r.Body}
		r.Body = in
		out := &captureWriter{ResponseWriter: w}
		// The request as the client sent it, for validation afterwards.
		sent := r.Clone(context.Background())
		defer func() {
			if v := recover(); v != nil {
				panic(v) // an aborted answer: nothing complete to check
			}
			if err := c.validate(sent, in, out); err != nil {
				report(err)
			}
		}()
		next.ServeHTTP(out, r)
	})
}

// validate checks one exchange. A request the document calls invalid must
// be refused (4xx); every answer must be one the document describes.
func (c *contract) validate(req *http.Request, in *capture, out *captureWriter) error {
	status := out.status
	if status == 0 { // the handler wrote nothing: net/http answers 200
		status, out.header = http.StatusOK, out.ResponseWriter.Header().Clone()
	}
	ctx := context.Background()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// No operation: the server must refuse it as a problem too.
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s is no operation in the document, but the server answered %d; document it", req.Method, req.URL.Path, status)
		}
		if err := c.problemOK(out.header, out.body.Bytes(), status); err != nil {
			return fmt.Errorf("%s %s (no operation) answered %d: %w", req.Method, req.URL.Path, status, err)
		}
		if status == http.StatusMethodNotAllowed && out.header.Get("Allow") == "" {
			return fmt.Errorf("%s %s answered 405 without an Allow header", req.Method, req.URL.Path)
		}
		return nil
	}
	op := fmt.Sprintf("%s %s (%s)", req.Method, route.Path, route.Operation.OperationID)
	checkBody := in.complete && !in.truncated
	if checkBody {
		req.Body = io.NopCloser(bytes.NewReader(in.buf.Bytes()))
	} else {
		req.Body = http.NoBody
	}
	input := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			ExcludeRequestBody: !checkBody,
			MultiError:         true,
			AuthenticationFunc: bearerPresent,
		},
	}
	if reqErr := openapi3filter.ValidateRequest(ctx, input); reqErr != nil && status < 400 {
		return fmt.Errorf("%s: the document says this request is invalid, but the server answered %d; request: %v", op, status, reqErr)
	}

	ref := route.Operation.Responses.Status(status)
	if ref == nil {
		return fmt.Errorf("%s: status %d is not documented for this operation", op, status)
	}
	for name := range out.header {
		if slices.Contains(genericHeaders, name) {
			continue
		}
		documented := false
		for doc := range ref.Value.Headers {
			documented = documented || strings.EqualFold(doc, name)
		}
		if !documented {
			return fmt.Errorf("%s: status %d: header %s is not documented for this response", op, status, name)
		}
	}
	if out.body.Len() > 0 && len(ref.Value.Content) == 0 {
		return fmt.Errorf("%s: status %d answered a body (%s) where the document has none", op, status, out.header.Get("Content-Type"))
	}
	if out.truncated {
		return nil // too large to check its body
	}
	resp := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 status,
		Header:                 out.header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	resp.SetBodyBytes(out.body.Bytes())
	if err := openapi3filter.ValidateResponse(ctx, resp); err != nil {
		return fmt.Errorf("%s: status %d %s: %v\nbody: %s", op, status, out.header.Get("Content-Type"), describe(err), clip(out.body.Bytes()))
	}
	return nil
}

// problemOK checks an answer outside every operation is a Problem.
func (c *contract) problemOK(h http.Header, body []byte, status int) error {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt != "application/problem+json" {
		return fmt.Errorf("Content-Type %q, want application/problem+json", h.Get("Content-Type"))
	}
	v, err := decodeJSON(body)
	if err != nil {
		return err
	}
	schema := c.doc.Components.Schemas["Problem"].Value
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("not a Problem: %v; body: %s", describe(err), clip(body))
	}
	return nil
}

func decodeJSON(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %v; body: %s", err, clip(b))
	}
	return v, nil
}

func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, token, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errors.New(`no "Authorization: Bearer <token>" header`)
	}
	return nil
}

// describe flattens kin-openapi's nested errors into one line per problem.
func describe(err error) string {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		parts := make([]string, len(me))
		for i, e := range me {
			parts[i] = describe(e)
		}
		return strings.Join(parts, "; ")
	}
	var re *openapi3filter.ResponseError
	if errors.As(err, &re) && re.Err != nil {
		return re.Reason + ": " + describe(re.Err)
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		return fmt.Sprintf("field %q: %s", "/"+strings.Join(se.JSONPointer(), "/"), se.Reason)
	}
	return err.Error()
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// capture records a request body while the handler reads it.
type capture struct {
	r         io.ReadCloser
	buf       bytes.Buffer
	complete  bool // read to the end
	truncated bool // longer than maxCheckedRequest
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	switch {
	case c.truncated:
	case c.buf.Len()+n <= maxCheckedRequest:
		c.buf.Write(p[:n])
	default:
		c.truncated, c.buf = true, bytes.Buffer{}
	}
	if err == io.EOF {
		c.complete = true
	}
	return n, err
}

func (c *capture) Close() error { return c.r.Close() }

// captureWriter records the status, headers and body of an answer.
type captureWriter struct {
	http.ResponseWriter
	status    int
	header    http.Header
	body      bytes.Buffer
	truncated bool
}

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.header = w.ResponseWriter.Header().Clone()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.body.Len()+len(b) <= maxCheckedResponse {
		w.body.Write(b)
	} else {
		w.truncated = true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *captureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestContractCatchesDrift makes sure the checking server fails on each kind
// of drift, and says which operation and what drifted.
func TestContractCatchesDrift(t *testing.T) {
	c := mustContract(t)
	const user = `{"id":1,"email":"a@b.test","name":"A","status":"active","reclaim_exempt":false,"created_at":"2026-03-15T10:00:00Z","updated_at":"2026-03-15T10:00:00Z"`
	const me = `{"user":` + user + `},"roles":[],"account":{"id":1,"name":"Acme","time_zone":"UTC","new_seat_grace_days":14,"created_at":"2026-03-15T10:00:00Z"},"scope":"full"`
	answer := func(status int, contentType, body string, header ...string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			if contentType != "" {
				w.Header().Set("Content-Type", contentType)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		})
	}
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		server       http.Handler
		want         []string // in the report; none = no drift
	}{
		{"AsDocumented", "GET", "/api/v1/me", "", answer(200, "application/json", me+"}"), nil},
		{"UndocumentedField", "GET", "/api/v1/me", "", answer(200, "application/json", me+`,"secret":"x"}`),
			[]string{"GET /api/v1/me (getMe)", "status 200", "secret"}},
		{"MissingField", "GET", "/api/v1/me", "", answer(200, "application/json", `{"user":`+user+`}}`),
			[]string{"getMe", "roles"}},
		{"NestedFieldOfWrongType", "GET", "/api/v1/me", "", answer(200, "application/json", strings.Replace(me, `"id":1,"name"`, `"id":"1","name"`, 1)+"}"),
			[]string{"getMe", "/account/id"}},
		{"UndocumentedStatus", "GET", "/api/v1/me", "", answer(http.StatusTeapot, "application/problem+json", `{}`),
			[]string{"getMe", "status 418 is not documented"}},
		{"UndocumentedContentType", "GET", "/api/v1/me", "", answer(200, "text/html", "<p>hi</p>"),
			[]string{"getMe", "text/html"}},
		{"ErrorNotAProblem", "GET", "/api/v1/me", "", answer(404, "application/json", `{"error":"no"}`),
			[]string{"getMe", "status 404"}},
		{"UndocumentedHeader", "GET", "/api/v1/me", "", answer(200, "application/json", me+"}", "Usher-Secret", "x"),
			[]string{"getMe", "header Usher-Secret is not documented"}},
		{"UndocumentedPath", "GET", "/api/v1/secret", "", answer(200, "application/json", `{}`),
			[]string{"GET /api/v1/secret is no operation", "200"}},
		{"UnknownPathAsProblem", "GET", "/api/v1/secret", "", answer(404, "application/problem+json",
			`{"type":"https://usher.dev/problems/not_found","title":"Not found","status":404,"code":"not_found"}`), nil},
		{"InvalidRequestAccepted", "POST", "/api/v1/users", `{"emial":"a@b.test"}`, answer(201, "application/json", user+`,"roles":[]}`, "Location", "/api/v1/users/1"),
			[]string{"POST /api/v1/users (createUser)", "request is invalid", "answered 201", "emial"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reports []string
			var mu sync.Mutex
			srv := httptest.NewServer(c.check(tc.server, func(err error) {
				mu.Lock()
				defer mu.Unlock()
				reports = append(reports, err.Error())
			}))
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer ush_test")
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if len(tc.want) == 0 {
				if len(reports) != 0 {
					t.Fatalf("reported drift where there is none: %q", reports)
				}
				return
			}
			if len(reports) != 1 {
				t.Fatalf("want one report containing %q, got %q", tc.want, reports)
			}
			t.Logf("report: %s", reports[0])
			for _, w := range tc.want {
				if !strings.Contains(reports[0], w) {
					t.Errorf("report does not say %q:\n%s", w, reports[0])
				}
			}
		})
	}
}

// The audit log's action filter is an enum in the document; it must list
// exactly the actions the domain records, or a new action could be recorded
// but never filtered by a client that trusts the document.
func TestOpenAPIAuditActionsMatchDomain(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	op := c.doc.Paths.Find("/api/v1/audit-log").Get
	var got []string
	for _, p := range op.Parameters {
		if p.Value.Name == "action" {
			for _, v := range p.Value.Schema.Value.Enum {
				got = append(got, fmt.Sprint(v))
			}
		}
	}
	want := slices.Clone(usher.AuditActions)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("docs/openapi.yaml lists audit actions %v; the domain records %v", got, want)
	}
}
