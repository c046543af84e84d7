package usage_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// The ingest decoders take any bytes without panicking, and what they call
// an event is clean text: go test runs the seeds below; for a longer run see
// docs/testing.md ("Fuzzing").

var ingestSeeds = []string{
	"",
	"\n\n",
	`{"user":"ada@acme.test","product":"draftpro","at":"2026-03-14T09:00:00Z"}`,
	`{"user":"ada@acme.test","product":"draftpro","at":"2026-03-14T09:00:00Z"}` + "\n" + `{"user":`,
	`[{"user":"ada@acme.test","product":"draftpro","at":"2026-03-14T09:00:00Z"},{"user":1}]`,
	`[{"user":"a\u0000","product":"p","at":"2026-03-14T09:00:00Z"}`,
	"[{\"user\":\"a\xff\",\"product\":\"p\",\"at\":\"x\"}]",
	`[{"user":"a\ud800","product":"p","at":"2026-03-14T09:00:00+01:00"}]`,
	`{"user":"a","product":"p","at":"2026-03-14T09:00:00Z","extra":1}`,
	"user,product,at\nada@acme.test,draftpro,2026-03-14T09:00:00Z\n",
	"\ufeffUser, Product ,AT\r\n\"ada@acme.test\",\"draft\"\"pro\",2026-03-14T09:00:00Z\r\n",
	"user,product,at\nada@acme.test,\"draftpro,2026-03-14T09:00:00Z\n,,\n\x00,\x00,\x00\n",
	"product,at,user\nx,y\n",
	"[1, \"a\", null, {}, []]",
	strings.Repeat("[", 1000),
}

func fuzzDecoder(f *testing.F, format usage.Format) {
	for _, s := range ingestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		last, fatal := 0, false
		for it := range usage.Decode(bytes.NewReader(body), format) {
			if fatal {
				t.Fatalf("an item after a fatal one: %+v", it)
			}
			fatal = it.Fatal
			if it.Line < last && !it.Fatal {
				t.Fatalf("line %d after line %d", it.Line, last)
			}
			last = it.Line
			if it.Err != nil {
				if !utf8.ValidString(it.Err.Error()) {
					t.Fatalf("reason is not UTF-8: %q", it.Err.Error())
				}
				continue
			}
			e := it.Event
			for name, v := range map[string]string{"user": e.User, "product": e.Product} {
				if v == "" || usher.TextProblem(v) != "" || strings.ContainsRune(v, utf8.RuneError) {
					t.Fatalf("line %d: %s %q accepted", it.Line, name, v)
				}
			}
			if e.At.IsZero() {
				t.Fatalf("line %d: no time", it.Line)
			}
		}
	})
}

func FuzzDecodeJSON(f *testing.F)   { fuzzDecoder(f, usage.FormatJSON) }
func FuzzDecodeNDJSON(f *testing.F) { fuzzDecoder(f, usage.FormatNDJSON) }
func FuzzDecodeCSV(f *testing.F)    { fuzzDecoder(f, usage.FormatCSV) }
