package usage

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// fastLine reads the common form of an NDJSON event without reflection:
// one object with exactly the keys user, product and at, each once, whose
// values are strings of printable ASCII without escapes. For anything else
// (escapes, other bytes, other keys or types, bad syntax) ok is false and
// the line goes through encoding/json, which words every problem; on the
// lines it takes, fastLine answers as encoding/json and wireEvent.event do.
func fastLine(line []byte) (user, product, at []byte, ok bool) {
	i := 0
	ws := func() {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
			i++
		}
	}
	str := func() ([]byte, bool) {
		if i >= len(line) || line[i] != '"' {
			return nil, false
		}
		i++
		start := i
		for ; i < len(line); i++ {
			c := line[i]
			if c == '"' {
				i++
				return line[start : i-1], true
			}
			if c < 0x20 || c >= 0x7f || c == '\\' {
				return nil, false
			}
		}
		return nil, false
	}
	ws()
	if i >= len(line) || line[i] != '{' {
		return nil, nil, nil, false
	}
	i++
	for n := 0; ; n++ {
		ws()
		key, ok := str()
		if !ok {
			return nil, nil, nil, false
		}
		ws()
		if i >= len(line) || line[i] != ':' {
			return nil, nil, nil, false
		}
		i++
		ws()
		val, ok := str()
		if !ok {
			return nil, nil, nil, false
		}
		var field *[]byte
		switch string(key) {
		case "user":
			field = &user
		case "product":
			field = &product
		case "at":
			field = &at
		default:
			return nil, nil, nil, false
		}
		if *field != nil {
			return nil, nil, nil, false // a key given twice
		}
		*field = val
		ws()
		if i < len(line) && line[i] == ',' {
			i++
			continue
		}
		if i >= len(line) || line[i] != '}' || n != 2 {
			return nil, nil, nil, false
		}
		i++
		ws()
		return user, product, at, i == len(line)
	}
}

// interner shares the strings of one body's repeated emails and product
// codes, so that a batch holds one copy of each, not one per event.
type interner map[string]string

// maxInterned bounds an interner; past it, it starts afresh.
const maxInterned = 100_000

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	if len(in) >= maxInterned {
		clear(in)
	}
	s := string(b)
	in[s] = s
	return s
}

// fastEvent is wireEvent.event for the fields fastLine read: printable
// ASCII, so no text problem is possible and trimming spaces is all.
func (in interner) fastEvent(user, product, at []byte) (Event, error) {
	u, p, a := bytes.Trim(user, " "), bytes.Trim(product, " "), bytes.Trim(at, " ")
	var missing []string
	if len(u) == 0 {
		missing = append(missing, "user")
	}
	if len(p) == 0 {
		missing = append(missing, "product")
	}
	if len(a) == 0 {
		missing = append(missing, "at")
	}
	if len(missing) > 0 {
		return Event{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	t, err := time.Parse(time.RFC3339Nano, string(a))
	if err != nil {
		return Event{}, fmt.Errorf("at: %q is not an RFC 3339 time such as 2026-03-01T09:30:00Z", at)
	}
	return Event{User: in.get(u), Product: in.get(p), At: t}, nil
}
