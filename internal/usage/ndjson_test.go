package usage

import (
	"bytes"
	"testing"
)

// The reflection-free reading of a line answers as encoding/json does, on
// every line it takes: go test runs the seeds.
func FuzzFastLineMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"user":"ada@acme.test","product":"draftpro","at":"2026-03-14T09:00:00Z"}`,
		` { "at" : "2026-03-14T09:00:00.123+01:00" , "product":"p", "user":" Ada@Acme.test " } `,
		`{"user":"","product":" ","at":""}`,
		`{"user":"a","product":"p","at":"yesterday"}`,
		`{"user":"a","product":"p","at":"2026-03-14T09:00:00Z","user":"b"}`,
		`{"User":"a","product":"p","at":"2026-03-14T09:00:00Z"}`,
		`{"user":"a","product":"p","at":"2026-03-14T09:00:00Z"} x`,
		`{"user":"a","product":"p"}`,
		`{"user":"a\u0041","product":"p","at":"2026-03-14T09:00:00Z"}`,
		`{"user":1,"product":"p","at":"2026-03-14T09:00:00Z"}`,
		"{\"user\":\"a\x7f\",\"product\":\"p\",\"at\":\"2026-03-14T09:00:00Z\"}",
		`{"user":"a","product":"p","at":"2026-03-14T09:00:00Z",}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimSpace(line)
		u, p, at, ok := fastLine(line)
		if !ok {
			return
		}
		got, gotErr := interner{}.fastEvent(u, p, at)
		var w wireEvent
		if err := strictUnmarshal(line, &w); err != nil {
			t.Fatalf("%q: read as %q %q %q, encoding/json says %v", line, u, p, at, err)
		}
		want, wantErr := w.event()
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("%q: error %v, want %v", line, gotErr, wantErr)
		}
		if got.User != want.User || got.Product != want.Product || !got.At.Equal(want.At) || got.At.Location().String() != want.At.Location().String() {
			t.Fatalf("%q: %+v, want %+v", line, got, want)
		}
	})
}
