package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

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
	return decodeJSONBody(body, v)
}

// decodeJSONBody decodes body into v with the text rules of usher.TextProblem:
// encoding/json would turn invalid UTF-8 and lone surrogate escapes into
// U+FFFD and take the last of duplicate keys, silently; here they are
// refused, naming the field, and so is any string holding a control
// character.
func decodeJSONBody(body []byte, v any) error {
	if off, reason := badJSONText(body); reason != "" {
		return fieldMalformed(body, off, reason)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed(body, dec.InputOffset(), "unexpected data after the JSON value")
	}
	if field := duplicateKey(body); field != "" {
		return &usher.Error{Code: codeMalformed, Message: "the body names a field twice",
			Fields: []usher.FieldError{{Field: field, Reason: "is given more than once"}}}
	}
	var p usher.Problems
	walkJSON(body, func(path string, _ int64, tok json.Token, isKey bool) bool {
		if s, ok := tok.(string); ok { // keys too: a map's keys are values
			if reason := usher.TextProblem(s); reason != "" {
				p.Add(path, reason)
			}
		}
		return false
	})
	return p.Err()
}

// fieldMalformed is a 400 naming the field whose value holds byte offset.
func fieldMalformed(body []byte, offset int64, reason string) error {
	field := pathAt(body, offset)
	if field == "" {
		return malformed(body, offset, reason)
	}
	return &usher.Error{Code: codeMalformed, Message: "the body is not valid text",
		Fields: []usher.FieldError{{Field: field, Reason: reason}}}
}

// badJSONText finds the first byte of body that is not valid UTF-8, or the
// first \u escape that is half a surrogate pair, inside or outside a
// string, and says what is wrong there; reason is "" when there is none.
func badJSONText(body []byte) (offset int64, reason string) {
	inString := false
	for i := 0; i < len(body); {
		c := body[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(body[i:])
			if r == utf8.RuneError && size == 1 {
				return int64(i), "is not valid UTF-8"
			}
			i += size
			continue
		}
		switch {
		case c == '"':
			inString = !inString
		case inString && c == '\\' && i+1 < len(body):
			if body[i+1] != 'u' {
				i += 2
				continue
			}
			r, ok := hex4(body, i+2)
			if ok && utf16.IsSurrogate(r) {
				low, lok := rune(0), false
				if i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
					low, lok = hex4(body, i+8)
				}
				if r >= 0xdc00 || !lok || low < 0xdc00 || low > 0xdfff {
					return int64(i), "holds half of a UTF-16 surrogate pair, which is not a character"
				}
				i += 12
				continue
			}
			i += 2
			continue
		}
		i++
	}
	return 0, ""
}

// hex4 reads the four hex digits of a \u escape at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	return rune(n), err == nil
}

// duplicateKey returns the path of the first key an object of body names
// twice, or "".
func duplicateKey(body []byte) string {
	var seen []map[string]bool // one set per open object; nil for arrays
	var found string
	walkJSON(body, func(path string, _ int64, tok json.Token, isKey bool) bool {
		if isKey {
			keys := seen[len(seen)-1]
			if keys[tok.(string)] {
				found = path
				return true
			}
			keys[tok.(string)] = true
		}
		return false
	}, func(open bool, object bool) {
		switch {
		case open && object:
			seen = append(seen, map[string]bool{})
		case open:
			seen = append(seen, nil)
		default:
			seen = seen[:len(seen)-1]
		}
	})
	return found
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
// nest, when given, is told of every object or array opening and closing.
func walkJSON(body []byte, visit func(path string, end int64, tok json.Token, isKey bool) bool, nest ...func(open, object bool)) {
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
			for _, f := range nest {
				f(true, tok == json.Delim('{'))
			}
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
			for _, f := range nest {
				f(false, tok == json.Delim('}'))
			}
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

// textQuery refuses a request whose query parameters break the text rules
// of usher.TextProblem (a NUL, a control character, invalid UTF-8), naming
// each parameter, before any handler or database sees them.
func (s *server) textQuery(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := CheckQueryText(r.URL.Query()); err != nil {
			s.writeError(w, r, err)
			return
		}
		next(w, r)
	}
}

// CheckQueryText checks every value of q (query parameters or form fields)
// with usher.TextProblem and returns an usher.EINVALID error naming each bad
// one, or nil. The console checks its forms with it too.
func CheckQueryText(q url.Values) error {
	var p usher.Problems
	for _, name := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[name] {
			if reason := usher.TextProblem(v); reason != "" {
				p.Add(name, reason)
				break
			}
		}
	}
	return p.Err()
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
