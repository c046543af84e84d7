package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSameMessageRefusesDifferentEmails keeps the benchmark from comparing
// rates of two different emails.
func TestSameMessageRefusesDifferentEmails(t *testing.T) {
	const id = "<run-1-2-3@bench>"
	msg := func(subject, body string) string {
		return "Message-Id: " + id + "\r\nSubject: " + subject + "\r\nFrom: a@b.test\r\nTo: c@d.test\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n" + body
	}
	dir := t.TempDir()
	write := func(name, content string) map[string]bool {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return map[string]bool{p: true}
	}
	usher := write("usher", msg("3 inactive users", "hello"))
	tests := []struct {
		name, bare, want string
	}{
		{"Same", msg("3 inactive users", "hello"), ""},
		{"OtherSubject", msg("4 inactive users", "hello"), "Subject"},
		{"OtherBody", msg("3 inactive users", "hello, world"), "body of 12 bytes, not 5"},
		{"OtherHeaders", "X-Extra: 1\r\n" + msg("3 inactive users", "hello"), "header fields"},
		{"OtherMessageID", strings.Replace(msg("3 inactive users", "hello"), id, "<other@bench>", 1), "no message " + id + " from the bare loop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, err := sameMessage(usher, write("bare-"+tt.name, tt.bare), id)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want == "" && size != len(msg("3 inactive users", "hello")):
				t.Fatalf("size: got %d, want %d", size, len(msg("3 inactive users", "hello")))
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}
