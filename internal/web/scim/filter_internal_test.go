package scim

import (
	"reflect"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

// The shortcut for userName eq "…" must read a filter exactly as the
// parser does, and leave to the parser what it cannot read so.
func TestUserNameEqReadsAsTheParser(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		shortcut bool
	}{
		{`userName eq "ada@example.com"`, true},
		{`userName eq "Ada.Lovelace@Example.COM"`, true},
		{`userName eq "a b!#$%&'()*+,-./:;<=>?@[]^_{|}~"`, true},
		{`userName eq "x"`, true},
		{`userName eq ""`, true},
		{`userName eq "a\"b"`, false},
		{`userName eq "a\\b"`, false},
		{`userName eq "ad\u00e9"`, false},
		{"userName eq \"ad\u00e9\"", false},
		{`userName eq "a" `, false},
		{`userName eq "a" and userName eq "b"`, false},
		{`userName eq "a" or displayName eq "b"`, false},
		{`username eq "a"`, false},
		{`userName Eq "a"`, false},
		{`userName  eq "a"`, false},
		{`userName eq "a`, false},
		{`userName eq`, false},
		{`userName eq "`, false},
		{`userName ne "a"`, false},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"`, false},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			v, ok := userNameEq(tc.raw)
			if ok != tc.shortcut {
				t.Fatalf("shortcut: got %v, want %v", ok, tc.shortcut)
			}
			got, gotErr := userMatch(tc.raw)
			e, err := filter.ParseFilter([]byte(tc.raw))
			if err != nil {
				if ok {
					t.Fatalf("shortcut read %q, the parser refuses it: %v", v, err)
				}
				if gotErr == nil {
					t.Fatalf("userMatch: got %+v, want the parser's error %v", got, err)
				}
				return
			}
			want, wantErr := translate(e)
			if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("userMatch: got %+v (%v), the parser reads %+v (%v)", got, gotErr, want, wantErr)
			}
		})
	}
}
