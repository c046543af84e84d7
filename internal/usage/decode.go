package usage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/usher"
)

// Format is how a body of usage events is written.
type Format string

const (
	FormatJSON   Format = "json"   // one JSON array of objects
	FormatNDJSON Format = "ndjson" // one JSON object per line
	FormatCSV    Format = "csv"    // a header line naming user, product, at; then one event per line
)

// FormatFor maps a media type (or a file name's extension) to a Format.
func FormatFor(mediaTypeOrName string) (Format, bool) {
	s := strings.ToLower(mediaTypeOrName)
	switch {
	case s == "application/json" || strings.HasSuffix(s, ".json"):
		return FormatJSON, true
	case s == "application/x-ndjson" || s == "application/ndjson" || s == "application/jsonl" ||
		strings.HasSuffix(s, ".ndjson") || strings.HasSuffix(s, ".jsonl"):
		return FormatNDJSON, true
	case s == "text/csv" || strings.HasSuffix(s, ".csv"):
		return FormatCSV, true
	}
	return "", false
}

// Item is one decoded input record: an event, or why its line is unusable.
// Fatal marks an error after which nothing more can be read.
type Item struct {
	Line  int // 1-based line (NDJSON, CSV) or element number (JSON array)
	Event Event
	Err   error
	Fatal bool
}

// MaxLine bounds one NDJSON or CSV line.
const MaxLine = 64 << 10

type wireEvent struct {
	User    string `json:"user"`
	Product string `json:"product"`
	At      string `json:"at"`
}

func (w wireEvent) event() (Event, error) {
	for _, f := range [...]struct{ name, value string }{{"user", w.User}, {"product", w.Product}, {"at", w.At}} {
		if reason := usher.TextProblem(f.value); reason != "" {
			return Event{}, fmt.Errorf("%s %s", f.name, reason)
		}
		// encoding/json turns invalid UTF-8 into U+FFFD, which no email,
		// product code or time holds: refused, not stored as something else.
		if strings.ContainsRune(f.value, utf8.RuneError) {
			return Event{}, fmt.Errorf("%s is not valid UTF-8 (or holds U+FFFD)", f.name)
		}
	}
	var missing []string
	if strings.TrimSpace(w.User) == "" {
		missing = append(missing, "user")
	}
	if strings.TrimSpace(w.Product) == "" {
		missing = append(missing, "product")
	}
	if strings.TrimSpace(w.At) == "" {
		missing = append(missing, "at")
	}
	if len(missing) > 0 {
		return Event{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(w.At))
	if err != nil {
		return Event{}, fmt.Errorf("at: %q is not an RFC 3339 time such as 2026-03-01T09:30:00Z", w.At)
	}
	// Clones, not substrings: a batch holds thousands of events, and each
	// must not keep its whole input line (up to MaxLine) alive.
	return Event{User: strings.Clone(strings.TrimSpace(w.User)), Product: strings.Clone(strings.TrimSpace(w.Product)), At: at}, nil
}

// Decode reads events from r one at a time, never holding the whole body.
func Decode(r io.Reader, f Format) iter.Seq[Item] {
	switch f {
	case FormatJSON:
		return decodeJSON(r)
	case FormatNDJSON:
		return decodeNDJSON(r)
	case FormatCSV:
		return decodeCSV(r)
	}
	return func(yield func(Item) bool) {
		yield(Item{Err: fmt.Errorf("unknown format %q", f), Fatal: true})
	}
}

func decodeJSON(r io.Reader) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		tok, err := dec.Token()
		if err == io.EOF {
			yield(Item{Err: errors.New("the body is empty: send a JSON array of events"), Fatal: true})
			return
		}
		if d, ok := tok.(json.Delim); err != nil || !ok || d != '[' {
			yield(Item{Err: errors.New("the body is not a JSON array of events"), Fatal: true})
			return
		}
		for n := 1; dec.More(); n++ {
			// Decoding straight into the event scans each element once more
			// than needed, not three times more as through a RawMessage. A
			// wrong type or an unknown field is that element's problem: the
			// decoder has read the whole element and can go on.
			var w wireEvent
			it := Item{Line: n}
			if err := dec.Decode(&w); err != nil {
				if it.Err = elementError(err); it.Err == nil {
					yield(Item{Line: n, Err: fmt.Errorf("malformed JSON at byte %d (nothing after it was read): %v", dec.InputOffset(), err), Fatal: true})
					return
				}
			} else {
				it.Event, it.Err = w.event()
			}
			if !yield(it) {
				return
			}
		}
		if _, err := dec.Token(); err != nil {
			yield(Item{Err: fmt.Errorf("the JSON array is not closed: %v", err), Fatal: true})
		}
	}
}

func strictUnmarshal(b []byte, w *wireEvent) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(w); err != nil {
		if e := elementError(err); e != nil {
			return e
		}
		return fmt.Errorf("not an event object: %v", err)
	}
	return nil
}

// elementError words the errors that concern one well-formed JSON value
// (a wrong type, an unknown field), and returns nil for the others: bad
// syntax, a cut-off body, a failed read.
func elementError(err error) error {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("not an event object: got a JSON %s", te.Value)
	case errors.As(err, &te):
		return fmt.Errorf("%s must be a string", te.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		// encoding/json has no error type for this; the message is stable.
		return fmt.Errorf("%s; an event has user, product and at", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// readErr remembers a read error other than io.EOF.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// lineScanner returns a scanner of the lines of r. When reading fails
// (a connection cut, a body over its limit), the piece of line read before
// the failure is not returned as a line: Err reports the failure instead,
// so a cut-off last line is not mistaken for a malformed one.
func lineScanner(r io.Reader) *bufio.Scanner {
	er := &readErr{r: r}
	sc := bufio.NewScanner(er)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if atEOF && er.err != nil && len(data) > 0 && bytes.IndexByte(data, '\n') < 0 {
			return 0, nil, er.err
		}
		return bufio.ScanLines(data, atEOF)
	})
	return sc
}

func decodeNDJSON(r io.Reader) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		sc := lineScanner(r)
		in := interner{}
		n := 0
		for sc.Scan() {
			n++
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			it := Item{Line: n}
			if u, p, at, ok := fastLine(line); ok {
				it.Event, it.Err = in.fastEvent(u, p, at)
			} else {
				var w wireEvent
				if err := strictUnmarshal(line, &w); err != nil {
					it.Err = err
				} else {
					it.Event, it.Err = w.event()
				}
			}
			if !yield(it) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("line %d is longer than %d bytes", n+1, MaxLine)
			}
			yield(Item{Line: n + 1, Err: err, Fatal: true})
		}
	}
}

// decodeCSV reads CSV line by line: an event never spans lines, so a stray
// quote costs its own line only, where a general CSV reader would run the
// quoted field on to the end of the body and lose every line after it.
func decodeCSV(r io.Reader) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		sc := lineScanner(r)
		n := 0
		var head []string
		col := map[string]int{}
		for sc.Scan() {
			n++
			text := sc.Text()
			if n == 1 {
				text = strings.TrimPrefix(text, "\ufeff")
			}
			if strings.TrimSpace(text) == "" {
				continue
			}
			rec, err := splitCSVLine(text)
			if head == nil {
				if err != nil {
					yield(Item{Line: n, Err: fmt.Errorf("header: %v", err), Fatal: true})
					return
				}
				head = rec
				for i, h := range head {
					col[strings.ToLower(strings.TrimSpace(h))] = i
				}
				for _, need := range []string{"user", "product", "at"} {
					if _, ok := col[need]; !ok {
						yield(Item{Line: n, Err: fmt.Errorf("the header line must name the columns user, product and at; it has %q", text), Fatal: true})
						return
					}
				}
				continue
			}
			it := Item{Line: n}
			switch {
			case err != nil:
				it.Err = fmt.Errorf("malformed CSV: %v", err)
			case len(rec) != len(head):
				it.Err = fmt.Errorf("has %d fields, the header has %d", len(rec), len(head))
			default:
				it.Event, it.Err = wireEvent{User: rec[col["user"]], Product: rec[col["product"]], At: rec[col["at"]]}.event()
			}
			if !yield(it) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("line %d is longer than %d bytes", n+1, MaxLine)
			}
			yield(Item{Line: n + 1, Err: err, Fatal: true})
			return
		}
		if head == nil {
			yield(Item{Err: errors.New("the body is empty: send a header line user,product,at and one event per line"), Fatal: true})
		}
	}
}

// splitCSVLine splits one line of RFC 4180 CSV: fields separated by commas,
// optionally quoted with "" for a quote inside. Leading spaces of a field
// are dropped.
func splitCSVLine(line string) ([]string, error) {
	line = strings.TrimSuffix(line, "\r")
	var out []string
	var b strings.Builder
	for i := 0; ; {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		b.Reset()
		if i < len(line) && line[i] == '"' {
			i++
			for {
				j := strings.IndexByte(line[i:], '"')
				if j < 0 {
					return nil, fmt.Errorf("field %d: a quoted field is not closed", len(out)+1)
				}
				b.WriteString(line[i : i+j])
				i += j + 1
				if i < len(line) && line[i] == '"' { // a doubled quote
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			if i < len(line) && line[i] != ',' {
				return nil, fmt.Errorf("field %d: unexpected text after the closing quote", len(out)+1)
			}
		} else {
			j := strings.IndexByte(line[i:], ',')
			if j < 0 {
				j = len(line) - i
			}
			field := line[i : i+j]
			if strings.Contains(field, `"`) {
				return nil, fmt.Errorf("field %d: a quote inside an unquoted field", len(out)+1)
			}
			b.WriteString(field)
			i += j
		}
		out = append(out, b.String())
		if i >= len(line) {
			return out, nil
		}
		i++ // the comma
		if i == len(line) {
			return append(out, ""), nil
		}
	}
}
