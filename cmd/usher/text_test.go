package main

import (
	"strings"
	"testing"
)

// Flags and the environment follow the text rules of every other input.
func TestFlagsMustBeCleanText(t *testing.T) {
	for _, tt := range []struct{ name, value, want string }{
		{"NUL", "Acme\x00Ltd", "NUL"},
		{"LineBreak", "Acme\nLtd", "control character"},
		{"InvalidUTF8", "Acme\xffLtd", "UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "account", "create", "--db", tempDB(t), "--name", tt.value, "--admin-email", "ada@acme.test")
			if code != exitUsage {
				t.Fatalf("exit: got %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if line := oneErrorLine(t, stderr); !strings.Contains(line, "--name") || !strings.Contains(line, tt.want) {
				t.Errorf("stderr %q does not name --name and say %q", line, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
		})
	}
	t.Run("Environment", func(t *testing.T) {
		t.Setenv("USHER_MAIL_FROM", "usher@example.com\r\nBcc: eve@example.com")
		code, _, stderr := cli(t, "serve", "--db", tempDB(t))
		if code != exitUsage || !strings.Contains(oneErrorLine(t, stderr), "--mail-from") {
			t.Fatalf("exit %d, stderr %q: want a usage error naming --mail-from", code, stderr)
		}
	})
}
