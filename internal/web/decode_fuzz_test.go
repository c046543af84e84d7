package web

import (
	"testing"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/usher"
)

// FuzzDecodeJSONBody: any body either decodes into clean text or is refused
// as a client's mistake (400 or 422), never an internal error or a panic.
// Faster than FuzzJSONRequests, so better for long runs (docs/testing.md).
func FuzzDecodeJSONBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"Ada","tags":["a","b"],"n":1,"sub":{"name":"x"}}`,
		`{"name":"Ada","name":"Eve"}`,
		`{"sub":{"name":"x","name":"y"}}`,
		`[{"name":"a"},{"name":"a"}]`,
		"{\"name\":\"\xff\"}",
		`{"name":"\ud83d\ude00"}`,
		`{"name":"\ud83d"}`,
		`{"name":"\udc00\ud800"}`,
		`{"name":"\\ud800"}`,
		`{"name":"a\u0000b"}`,
		`{"tags":["\u001b"]}`,
		`{"n":"1"}`,
		`{"unknown":1}`,
		`{} {}`,
		``,
	} {
		f.Add([]byte(s))
	}
	type body struct {
		Name string                 `json:"name"`
		Tags []string               `json:"tags"`
		N    int                    `json:"n"`
		Sub  *struct{ Name string } `json:"sub"`
		Map  map[string]string      `json:"map"`
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v body
		err := decodeJSONBody(raw, &v)
		if err != nil {
			if code := usher.ErrorCode(err); code != codeMalformed && code != usher.EINVALID {
				t.Fatalf("%q: %v (code %s)", raw, err, code)
			}
			return
		}
		if !utf8.Valid(raw) {
			t.Fatalf("%q: invalid UTF-8 accepted", raw)
		}
		strs := append([]string{v.Name}, v.Tags...)
		if v.Sub != nil {
			strs = append(strs, v.Sub.Name)
		}
		for k, s := range v.Map {
			strs = append(strs, k, s)
		}
		for _, s := range strs {
			if usher.TextProblem(s) != "" {
				t.Fatalf("%q: %q accepted", raw, s)
			}
		}
	})
}
