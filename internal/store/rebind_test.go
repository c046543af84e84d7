package store

import "testing"

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x LIKE ? ESCAPE '\\' OR y = ?", "x LIKE $1 ESCAPE '\\' OR y = $2"},
		{"a = '?' AND b = ?", "a = '?' AND b = $1"},
		{`"odd?name" = ?`, `"odd?name" = $1`},
		{"a = 'it''s ?' AND b = ?", "a = 'it''s ?' AND b = $1"},
		{"VALUES (?, ?), (?, ?), (?, ?), (?, ?), (?, ?), (?)", "VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8), ($9, $10), ($11)"},
	}
	for _, tc := range tests {
		if got := rebind(tc.in); got != tc.want {
			t.Fatalf("rebind(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValueRows(t *testing.T) {
	if got, want := valueRows(2, 3), "(?, ?, ?), (?, ?, ?)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
