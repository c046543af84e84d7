package usher_test

import (
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/usher"
)

func TestTextProblem(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"Ada Lovelace", ""},
		{"Zoë 李 🙂", ""},
		{"\uFFFD", ""}, // the character itself is text
		{"a\x00b", "NUL"},
		{"a\tb", "U+0009"},
		{"a\r\nb", "U+000D"},
		{"bell\a", "U+0007"},
		{"esc\x1b[31m", "U+001B"},
		{"del\x7f", "U+007F"},
		{"c1\u0085", "U+0085"},
		{"t7\xff@a.test", "UTF-8"},
		{"\xed\xa0\x80", "UTF-8"}, // an encoded surrogate
	} {
		got := usher.TextProblem(tt.in)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("TextProblem(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckTextCountsCharacters(t *testing.T) {
	var p usher.Problems
	if !usher.CheckText(&p, "name", strings.Repeat("é", 200), 1, 200) {
		t.Errorf("200 × é (400 bytes) refused: %v", p)
	}
	if usher.CheckText(&p, "name", strings.Repeat("é", 201), 1, 200) || usher.CheckText(&p, "name", "", 1, 200) {
		t.Error("201 characters or none accepted")
	}
	if len(p) != 2 || p[0].Field != "name" {
		t.Errorf("problems: %+v", p)
	}
}

func TestDisplayNameIsOneLine(t *testing.T) {
	if got := usher.DisplayName("Ada\r\n\x00Admin\xff"); got != "Ada Admin\uFFFD" {
		t.Errorf("got %q", got)
	}
}

func TestValidEmailRefusesBadText(t *testing.T) {
	for _, e := range []string{"t7\xff@a.test", "t7\x00@a.test", "t7\x07@a.test"} {
		if usher.ValidEmail(e) {
			t.Errorf("%q accepted", e)
		}
	}
}
