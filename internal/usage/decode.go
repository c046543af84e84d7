package usage

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
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
	return Event{User: strings.TrimSpace(w.User), Product: strings.TrimSpace(w.Product), At: at}, nil
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
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				yield(Item{Line: n, Err: fmt.Errorf("malformed JSON at byte %d (nothing after it was read): %v", dec.InputOffset(), err), Fatal: true})
				return
			}
			var w wireEvent
			it := Item{Line: n}
			if err := strictUnmarshal(raw, &w); err != nil {
				it.Err = err
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
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s must be a string", te.Field)
		}
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return fmt.Errorf("%s; an event has user, product and at", strings.TrimPrefix(err.Error(), "json: "))
		}
		return fmt.Errorf("not an event object: %v", err)
	}
	return nil
}

func decodeNDJSON(r io.Reader) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), MaxLine)
		n := 0
		for sc.Scan() {
			n++
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			it := Item{Line: n}
			var w wireEvent
			if err := strictUnmarshal(line, &w); err != nil {
				it.Err = err
			} else {
				it.Event, it.Err = w.event()
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

func decodeCSV(r io.Reader) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
		cr.TrimLeadingSpace = true
		head, err := cr.Read()
		if err == io.EOF {
			yield(Item{Err: errors.New("the body is empty: send a header line user,product,at and one event per line"), Fatal: true})
			return
		} else if err != nil {
			yield(Item{Line: 1, Err: fmt.Errorf("header: %v", err), Fatal: true})
			return
		}
		col := map[string]int{}
		for i, h := range head {
			col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
		}
		for _, need := range []string{"user", "product", "at"} {
			if _, ok := col[need]; !ok {
				yield(Item{Line: 1, Err: fmt.Errorf("the header line must name the columns user, product and at; it has %q", strings.Join(head, ",")), Fatal: true})
				return
			}
		}
		get := func(rec []string, name string) string {
			if i := col[name]; i < len(rec) {
				return rec[i]
			}
			return ""
		}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return
			}
			line, _ := cr.FieldPos(0)
			it := Item{Line: line}
			var pe *csv.ParseError
			switch {
			case errors.As(err, &pe):
				it.Line, it.Err = pe.Line, fmt.Errorf("malformed CSV: %v", pe.Err)
			case err != nil:
				yield(Item{Line: line, Err: err, Fatal: true})
				return
			case len(rec) != len(head):
				it.Err = fmt.Errorf("has %d fields, the header has %d", len(rec), len(head))
			default:
				it.Event, it.Err = wireEvent{User: get(rec, "user"), Product: get(rec, "product"), At: get(rec, "at")}.event()
			}
			if !yield(it) {
				return
			}
		}
	}
}
