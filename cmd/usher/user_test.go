package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

// withStdin makes the commands read s as their standard input.
func withStdin(t *testing.T, s string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(s)
	t.Cleanup(func() { stdin = old })
}

func openAuth(t *testing.T, dsn string) *auth.Service {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return auth.New(db.Auth(), auth.Config{})
}

var linkRE = regexp.MustCompile(`(http://\S+)/set-password\?token=(usp_\S+)`)

func TestUserSetPassword(t *testing.T) {
	db := tempDB(t)
	code, stdout, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--db", db)
	if code != 0 {
		t.Fatalf("account create: exit %d, %s", code, stderr)
	}
	if !strings.Contains(stdout, "usher user set-password --email ada@acme.test --account 1") {
		t.Errorf("account create does not say how to set a password:\n%s", stdout)
	}

	t.Run("FromStandardInputThenSignIn", func(t *testing.T) {
		withStdin(t, "a fine password\n")
		code, stdout, stderr := cli(t, "user", "set-password", "--email", "ADA@acme.test", "--db", db)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if !strings.Contains(stdout, "Password set for") || !strings.Contains(stdout, "/signin") {
			t.Errorf("stdout: %q", stdout)
		}
		if _, _, err := openAuth(t, db).SignIn(context.Background(), "ada@acme.test", "a fine password", ""); err != nil {
			t.Fatalf("sign in with the new password: %v", err)
		}
	})
	t.Run("LinkSetsThePasswordOnce", func(t *testing.T) {
		code, stdout, stderr := cli(t, "user", "set-password", "--email", "ada@acme.test", "--link", "--base-url", "http://usher.test:9", "--db", db)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		m := linkRE.FindStringSubmatch(stdout)
		if m == nil || m[1] != "http://usher.test:9" {
			t.Fatalf("no link on http://usher.test:9 in %q", stdout)
		}
		a := openAuth(t, db)
		if _, _, err := a.UsePasswordLink(context.Background(), m[2], "linked password"); err != nil {
			t.Fatalf("use the link: %v", err)
		}
		if _, _, err := a.UsePasswordLink(context.Background(), m[2], "linked password"); usher.ErrorCode(err) != usher.EUNAUTHORIZED {
			t.Fatalf("second use: got %v, want unauthorized", err)
		}
	})
	t.Run("ShortPasswordNamesTheField", func(t *testing.T) {
		withStdin(t, "short\n")
		code, _, stderr := cli(t, "user", "set-password", "--email", "ada@acme.test", "--db", db)
		if line := oneErrorLine(t, stderr); code != 1 || !strings.Contains(line, "password: must be at least 10 characters") {
			t.Fatalf("exit %d, %q", code, line)
		}
	})
	t.Run("EmptyStandardInputIsAUsageError", func(t *testing.T) {
		withStdin(t, "")
		code, _, stderr := cli(t, "user", "set-password", "--email", "ada@acme.test", "--db", db)
		if line := oneErrorLine(t, stderr); code != 2 || !strings.Contains(line, "no password") {
			t.Fatalf("exit %d, %q", code, line)
		}
	})
	t.Run("MissingEmailIsAUsageError", func(t *testing.T) {
		code, _, stderr := cli(t, "user", "set-password", "--db", db)
		if line := oneErrorLine(t, stderr); code != 2 || !strings.Contains(line, "--email is required") {
			t.Fatalf("exit %d, %q", code, line)
		}
	})
	t.Run("AnEmailInTwoAccountsNeedsAccount", func(t *testing.T) {
		if code, _, stderr := cli(t, "account", "create", "--name", "Beta", "--admin-email", "ada@acme.test", "--allow-existing-email", "--db", db); code != 0 {
			t.Fatalf("account create: %s", stderr)
		}
		withStdin(t, "a fine password\n")
		code, _, stderr := cli(t, "user", "set-password", "--email", "ada@acme.test", "--db", db)
		if line := oneErrorLine(t, stderr); code != 1 || !strings.Contains(line, "account: ada@acme.test is a user in accounts 1, 2") {
			t.Fatalf("exit %d, %q", code, line)
		}
		withStdin(t, "a fine password\n")
		if code, _, stderr := cli(t, "user", "set-password", "--email", "ada@acme.test", "--account", "2", "--db", db); code != 0 {
			t.Fatalf("with --account 2: exit %d, %s", code, stderr)
		}
	})
	t.Run("UnknownEmail", func(t *testing.T) {
		code, _, stderr := cli(t, "user", "set-password", "--email", "nobody@acme.test", "--link", "--db", db)
		if line := oneErrorLine(t, stderr); code != 1 || !strings.Contains(line, "no user nobody@acme.test") {
			t.Fatalf("exit %d, %q", code, line)
		}
	})
}
