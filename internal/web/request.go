package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// decodeJSON reads the request body, a single JSON object, into v. Unknown
// fields are refused, so a misspelt field is an error rather than silently
// ignored. Enumerations are decoded as strings, so unknown values reach the
// domain's validation, which names the field.
func (s *server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return usher.Errorf(usher.ETOOLARGE, "the request body exceeds %d bytes", tooLarge.Limit)
		}
		return usher.Errorf(codeMalformed, "reading the request body failed")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed(body, dec.InputOffset(), "unexpected data after the JSON value")
	}
	return nil
}

// checkJSONContentType accepts application/json and other +json types in UTF-8.
func checkJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	if ct == "" {
		return usher.Errorf(usher.EUNSUPPORTED, "Content-Type is missing; send the body as application/json")
	}
	return usher.Errorf(usher.EUNSUPPORTED, "Content-Type %q is not supported; send the body as application/json", ct)
}

// jsonError turns a decoding error into a 400 problem that says where and
// what is wrong, naming the field when there is one.
func jsonError(body []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return usher.Errorf(codeMalformed, "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return malformed(body, int64(len(body)), "the JSON value ends early")
	case errors.As(err, &syntax):
		return malformed(body, syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		field := pathAt(body, typ.Offset)
		if field == "" && typ.Field != "" {
			field = typ.Field
		}
		if field == "" {
			return usher.Errorf(codeMalformed, "the request body must be a JSON object, not %s", typ.Value)
		}
		reason := "must be " + kindName(typ)
		return &usher.Error{Code: codeMalformed, Message: "a value has the wrong type", Fields: []usher.FieldError{{Field: field, Reason: reason}}}
	case strings.HasPrefix(err.Error(), `json: unknown field "`):
		// encoding/json has no error type for this; the message is stable.
		name := strings.TrimSuffix(strings.TrimPrefix(err.Error(), `json: unknown field "`), `"`)
		field := keyPath(body, name)
		if field == "" {
			field = name
		}
		return &usher.Error{Code: codeMalformed, Message: "the body has a field this endpoint does not take", Fields: []usher.FieldError{{Field: field, Reason: "is not a field of this request"}}}
	default: // a value's own UnmarshalJSON refused it
		return usher.Errorf(codeMalformed, "the request body is not valid: %v", err)
	}
}

// malformed reports a syntax problem at a byte offset as line and column.
func malformed(body []byte, offset int64, reason string) error {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	before := body[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return usher.Errorf(codeMalformed, "malformed JSON at line %d, column %d (byte %d): %s", line, col, offset, reason)
}

// kindName says in words what JSON a Go type wants.
func kindName(e *json.UnmarshalTypeError) string {
	switch e.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if strings.HasPrefix(e.Value, "number") {
			return "a whole number in range"
		}
		return "a number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "of type " + e.Type.String()
	}
}

// jsonFrame is one level of nesting while walking a JSON document.
type jsonFrame struct {
	array   bool
	index   int
	key     string
	wantKey bool
}

// walkJSON calls visit for every value in body with its path, written as the
// domain names fields ("subscriptions[0].services[1]"), and the offset where
// the value's first token ends. It stops when visit returns true.
func walkJSON(body []byte, visit func(path string, end int64, tok json.Token, isKey bool) bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []jsonFrame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index)
			} else if f.key != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].wantKey {
			if key, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = key, false
				if visit(path(), dec.InputOffset(), tok, true) {
					return
				}
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if visit(path(), dec.InputOffset(), tok, false) {
				return
			}
			stack = append(stack, jsonFrame{array: tok == json.Delim('['), wantKey: tok == json.Delim('{')})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			if visit(path(), dec.InputOffset(), tok, false) {
				return
			}
			valueDone()
		}
	}
}

// pathAt returns the path of the value whose first token ends at or after
// offset, where encoding/json reports a type mismatch.
func pathAt(body []byte, offset int64) string {
	var found string
	walkJSON(body, func(path string, end int64, _ json.Token, isKey bool) bool {
		if !isKey && end >= offset {
			found = path
			return true
		}
		return false
	})
	return found
}

// keyPath returns the path of the first object key named name.
func keyPath(body []byte, name string) string {
	var found string
	walkJSON(body, func(path string, _ int64, tok json.Token, isKey bool) bool {
		if isKey && tok == name {
			found = path
			return true
		}
		return false
	})
	return found
}

// pathID reads a positive integer id from the path; anything else names no
// object, so it is "not found".
func pathID(r *http.Request, name, what string) (int64, error) {
	raw := r.PathValue(name)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, usher.Errorf(usher.ENOTFOUND, "%s %q not found: ids are positive whole numbers", what, raw)
	}
	return id, nil
}

// queryID reads an optional positive integer id from the query string.
func queryID(p *usher.Problems, r *http.Request, name string) int64 {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		p.Add(name, "must be a positive whole number")
		return 0
	}
	return id
}

// pageParams reads limit and cursor. The domain bounds the limit; here only
// its syntax is checked.
func pageParams(p *usher.Problems, r *http.Request) (cursor string, limit int) {
	q := r.URL.Query()
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			p.Addf("limit", "must be a whole number between 1 and %d", access.MaxLimit)
		}
		limit = n
	}
	return q.Get("cursor"), limit
}
