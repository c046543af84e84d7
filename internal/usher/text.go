package usher

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// The text rules every string input obeys, wherever it comes from (a JSON
// field, a query parameter, a console form, a usage event, a command-line
// flag): valid UTF-8, no NUL and no other control character, and lengths
// counted in characters (runes), not bytes. Usher has no multi-line text, so
// tab, CR and LF are refused like the other controls. The edges check every
// string they read with TextProblem; the domain's validators check the
// fields they keep with CheckText, which adds the length limit.

// TextProblem says what is wrong with s as text, or "" when nothing is.
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == 0:
			return "contains a NUL character"
		case unicode.IsControl(r):
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

// CheckText records in p why s is not acceptable text for field of min to
// max characters (max 0: no upper limit), and reports whether it is.
func CheckText(p *Problems, field, s string, min, max int) bool {
	if reason := TextProblem(s); reason != "" {
		p.Add(field, reason)
		return false
	}
	n := utf8.RuneCountInString(s)
	switch {
	case min > 0 && n < min && max > 0:
		p.Addf(field, "is required, at most %d characters", max)
	case min > 0 && n < min:
		p.Add(field, "is required")
	case max > 0 && n > max:
		p.Addf(field, "is longer than %d characters", max)
	default:
		return true
	}
	return false
}

// DisplayName makes s safe to show on one line where control characters
// would do harm (a mail header, a log line): invalid bytes become U+FFFD
// and each run of control characters one space.
func DisplayName(s string) string {
	out := make([]rune, 0, len(s))
	space := false
	for _, r := range []rune(s) { // invalid bytes come out as U+FFFD
		if unicode.IsControl(r) {
			if !space {
				out = append(out, ' ')
			}
			space = true
			continue
		}
		out = append(out, r)
		space = false
	}
	return string(out)
}
