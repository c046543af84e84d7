package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

var tokenIDRE = regexp.MustCompile(`Created token (\d+) `)

func TestTokenCommands(t *testing.T) {
	db := tempDB(t)
	if code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--db", db); code != 0 {
		t.Fatalf("account create: exit %d, %s", code, stderr)
	}
	ctx := context.Background()
	sdb, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	svc := access.New(sdb.Access(), nil)
	email := "mia@acme.test"
	mia, err := svc.CreateUser(ctx, usher.System(1), access.UserInput{Email: &email})
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := cli(t, "token", "create", "--email", "MIA@acme.test", "--name", "reporting", "--scope", "read", "--expires-in", "90d", "--db", db)
	if code != 0 {
		t.Fatalf("token create: exit %d, %s", code, stderr)
	}
	plain, m := tokenRE.FindString(stdout), tokenIDRE.FindStringSubmatch(stdout)
	if plain == "" || m == nil || !strings.Contains(stdout, "shown once") {
		t.Fatalf("stdout: %s", stdout)
	}
	a, err := svc.Authenticate(ctx, plain)
	if err != nil || a.UserID != mia.ID || a.Scope != usher.ScopeRead {
		t.Fatalf("authenticate: got %+v, %v; want a read token of user %d", a, err, mia.ID)
	}

	t.Run("ListShowsItWithoutTheSecret", func(t *testing.T) {
		code, stdout, stderr := cli(t, "token", "list", "--email", email, "--db", db)
		if code != 0 || !strings.Contains(stdout, "reporting") || !strings.Contains(stdout, "read") || strings.Contains(stdout, plain) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("ErrorsAreOneLine", func(t *testing.T) {
		for _, args := range [][]string{
			{"token", "create", "--email", email, "--name", "x", "--scope", "root"},
			{"token", "create", "--email", email, "--name", "x", "--expires-in", "soon"},
			{"token", "create", "--email", email, "--name", "x", "--scope", "ingest"}, // not an admin
			{"token", "create", "--email", "nobody@acme.test", "--name", "x"},
			{"token", "create", "--email", email},
			{"token", "list"},
			{"token", "revoke", "--id", "999"},
			{"token", "revoke"},
			{"token", "bogus"},
		} {
			code, _, stderr := cli(t, append(args, "--db", db)...)
			if code == 0 {
				t.Errorf("%v: exit 0", args)
				continue
			}
			oneErrorLine(t, stderr)
		}
	})
	t.Run("RevokeStopsItAtOnce", func(t *testing.T) {
		code, stdout, stderr := cli(t, "token", "revoke", "--id", m[1], "--db", db)
		if code != 0 || !strings.Contains(stdout, "Revoked token "+m[1]) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if _, err := svc.Authenticate(ctx, plain); usher.ErrorCode(err) != usher.EUNAUTHORIZED {
			t.Fatalf("after revoke: got %v, want unauthorized", err)
		}
	})
}

func TestAccountCreateRefusesAnExistingAdminEmail(t *testing.T) {
	db := tempDB(t)
	if code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--db", db); code != 0 {
		t.Fatalf("account create: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := cli(t, "account", "create", "--name", "Acme 2", "--admin-email", "Ada@acme.test", "--db", db)
	line := oneErrorLine(t, stderr)
	if code != exitError || stdout != "" || !strings.Contains(line, "--allow-existing-email") || !strings.Contains(line, "account 1") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want a refusal naming account 1 and --allow-existing-email", code, stdout, line)
	}
	code, stdout, stderr = cli(t, "account", "create", "--name", "Acme 2", "--admin-email", "ada@acme.test", "--allow-existing-email", "--db", db)
	if code != 0 || !strings.Contains(stdout, "Created account 2") {
		t.Fatalf("with --allow-existing-email: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
