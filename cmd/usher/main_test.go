package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

// cli runs the program in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// oneErrorLine fails the test unless stderr is exactly one "usher: …" line.
func oneErrorLine(t *testing.T, stderr string) string {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "usher: ") {
		t.Fatalf("stderr: got %q, want one line starting with \"usher: \"", stderr)
	}
	return strings.TrimSpace(stderr)
}

var tokenRE = regexp.MustCompile(`ush_[A-Za-z0-9_-]+`)

func tempDB(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "usher.db")
}

func TestAccountCreate(t *testing.T) {
	t.Run("PrintsATokenThatAuthenticates", func(t *testing.T) {
		db := tempDB(t)
		code, stdout, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "Ada@Acme.test",
			"--admin-name", "Ada Lovelace", "--timezone", "Europe/London", "--db", db)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		for _, want := range []string{"Acme", "ada@acme.test", "Europe/London", "shown once"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout does not mention %q:\n%s", want, stdout)
			}
		}
		token := tokenRE.FindString(stdout)
		if token == "" {
			t.Fatalf("no token in stdout:\n%s", stdout)
		}

		ctx := context.Background()
		sdb, err := store.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer sdb.Close()
		actor, err := access.New(sdb.Access(), nil).Authenticate(ctx, token)
		if err != nil {
			t.Fatalf("authenticate the printed token: %v", err)
		}
		if actor.Email != "ada@acme.test" || !actor.Has(usher.RolePrimaryAdmin, 0) {
			t.Fatalf("token acts as %s with %v, want primary admin ada@acme.test", actor.Email, actor.Grants)
		}
	})

	t.Run("InvalidEmailNamesTheField", func(t *testing.T) {
		code, stdout, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "not-an-email", "--db", tempDB(t))
		if code != exitError {
			t.Fatalf("exit: got %d, want %d", code, exitError)
		}
		line := oneErrorLine(t, stderr)
		if !strings.Contains(line, "admin_email") || !strings.Contains(line, "invalid input") {
			t.Errorf("stderr %q does not name admin_email as invalid input", line)
		}
		if stdout != "" {
			t.Errorf("stdout: got %q, want nothing", stdout)
		}
	})

	t.Run("EveryProblemAtOnce", func(t *testing.T) {
		code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "x", "--timezone", "Mars/Olympus", "--db", tempDB(t))
		if code != exitError {
			t.Fatalf("exit: got %d, want %d", code, exitError)
		}
		line := oneErrorLine(t, stderr)
		for _, f := range []string{"admin_email", "timezone"} {
			if !strings.Contains(line, f) {
				t.Errorf("stderr %q does not name %s", line, f)
			}
		}
	})

	t.Run("MissingFlagsIsAUsageError", func(t *testing.T) {
		code, _, stderr := cli(t, "account", "create", "--db", tempDB(t))
		if code != exitUsage {
			t.Fatalf("exit: got %d, want %d", code, exitUsage)
		}
		line := oneErrorLine(t, stderr)
		if !strings.Contains(line, "--name") || !strings.Contains(line, "--admin-email") {
			t.Errorf("stderr %q does not name the missing flags", line)
		}
	})

	t.Run("DuplicateEmailInAnotherAccountIsFineWhenAllowed", func(t *testing.T) {
		db := tempDB(t)
		for _, name := range []string{"One", "Two"} {
			if code, _, stderr := cli(t, "account", "create", "--name", name, "--admin-email", "a@b.test", "--allow-existing-email", "--db", db); code != 0 {
				t.Fatalf("create %s: exit %d, %s", name, code, stderr)
			}
		}
	})
}

func TestAccountList(t *testing.T) {
	db := tempDB(t)
	code, stdout, _ := cli(t, "account", "list", "--db", db)
	if code != 0 || !strings.Contains(stdout, "No accounts") {
		t.Fatalf("empty list: exit %d, stdout %q", code, stdout)
	}
	for _, name := range []string{"Acme", "Globex Corporation"} {
		if code, _, stderr := cli(t, "account", "create", "--name", name, "--admin-email", "admin@"+strings.ToLower(strings.Fields(name)[0])+".test", "--db", db); code != 0 {
			t.Fatalf("create: %s", stderr)
		}
	}
	code, stdout, stderr := cli(t, "account", "list", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"NAME", "Acme", "Globex Corporation", "UTC"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("list does not show %q:\n%s", want, stdout)
		}
	}
}

func TestMigrate(t *testing.T) {
	db := tempDB(t)
	for range 2 { // twice: migrating is idempotent
		code, stdout, stderr := cli(t, "migrate", "--db", db)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "sqlite") || !strings.Contains(stdout, "done") {
			t.Errorf("stdout %q does not say the engine and done", stdout)
		}
	}
}

func TestDBFromEnvironment(t *testing.T) {
	envDB, flagDB := tempDB(t), tempDB(t)
	t.Setenv("USHER_DB", envDB)
	if code, _, stderr := cli(t, "account", "create", "--name", "FromEnv", "--admin-email", "a@b.test"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if code, _, stderr := cli(t, "account", "create", "--name", "FromFlag", "--admin-email", "a@b.test", "--db", flagDB); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, envList, _ := cli(t, "account", "list")
	_, flagList, _ := cli(t, "account", "list", "--db", flagDB)
	if !strings.Contains(envList, "FromEnv") || strings.Contains(envList, "FromFlag") {
		t.Errorf("USHER_DB database lists:\n%s", envList)
	}
	if !strings.Contains(flagList, "FromFlag") || strings.Contains(flagList, "FromEnv") {
		t.Errorf("--db database lists (the flag must win over USHER_DB):\n%s", flagList)
	}
}

func TestHelp(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"serve"}, []string{"--addr", "--db", "--base-url", "--smtp", "--mail-from", "--demo", "--log-level",
			"USHER_ADDR", "USHER_DB", "USHER_BASE_URL", "USHER_SMTP_URL", "USHER_MAIL_FROM", "USHER_LOG_LEVEL", "--trusted-proxies", "USHER_TRUSTED_PROXIES"}},
		{[]string{"migrate"}, []string{"--db", "USHER_DB"}},
		{[]string{"account", "create"}, []string{"--name", "--admin-email", "--admin-name", "--timezone", "--allow-existing-email", "--db", "USHER_DB"}},
		{[]string{"account", "list"}, []string{"--db", "USHER_DB"}},
		{[]string{"account"}, []string{"create", "list"}},
		{[]string{"token", "create"}, []string{"--email", "--account", "--name", "--scope", "--expires-in", "--db", "USHER_DB"}},
		{[]string{"token", "list"}, []string{"--email", "--account", "--db"}},
		{[]string{"token", "revoke"}, []string{"--id", "--db"}},
		{[]string{"token"}, []string{"create", "list", "revoke"}},
		{[]string{"version"}, []string{"version"}},
	}
	for _, c := range cases {
		for _, h := range []string{"--help", "-h"} {
			t.Run(strings.Join(c.args, "_")+h, func(t *testing.T) {
				code, stdout, stderr := cli(t, append(c.args, h)...)
				if code != 0 || stderr != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
				}
				for _, w := range c.want {
					if !strings.Contains(stdout, w) {
						t.Errorf("help does not mention %s:\n%s", w, stdout)
					}
				}
			})
		}
	}

	t.Run("HelpCommand", func(t *testing.T) {
		code, stdout, _ := cli(t, "help")
		if code != 0 || !strings.Contains(stdout, "account create") || !strings.Contains(stdout, "serve") {
			t.Fatalf("exit %d, stdout %q", code, stdout)
		}
		code, stdout, _ = cli(t, "help", "account", "create")
		if code != 0 || !strings.Contains(stdout, "--admin-email") {
			t.Fatalf("help account create: exit %d, stdout %q", code, stdout)
		}
	})

	t.Run("NoArgumentsShowsTheOverview", func(t *testing.T) {
		code, _, stderr := cli(t)
		if code != exitUsage || !strings.Contains(stderr, "Commands:") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"UnknownCommand", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"UnknownAccountCommand", []string{"account", "delete"}, `unknown subcommand "delete"`},
		{"MissingAccountCommand", []string{"account"}, "missing subcommand"},
		{"UnknownFlag", []string{"migrate", "--nope"}, "-nope"},
		{"StrayArgument", []string{"migrate", "extra"}, `unexpected argument "extra"`},
		{"BadLogLevel", []string{"serve", "--log-level", "loud"}, "--log-level"},
		{"BadSMTP", []string{"serve", "--smtp", "mail.example.com"}, "--smtp"},
		{"BadBaseURL", []string{"serve", "--base-url", "usher.example.com"}, "--base-url"},
		{"BadTrustedProxies", []string{"serve", "--trusted-proxies", "10.0.0.0/8,proxy.example"}, "--trusted-proxies: \"proxy.example\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, c.args...)
			if code != exitUsage {
				t.Fatalf("exit: got %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if line := oneErrorLine(t, stderr); !strings.Contains(line, c.want) {
				t.Errorf("stderr %q does not contain %q", line, c.want)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
		})
	}
}

func TestBadEnvironmentIsAUsageError(t *testing.T) {
	t.Setenv("USHER_LOG_LEVEL", "shouty")
	code, _, stderr := cli(t, "serve", "--db", tempDB(t))
	if code != exitUsage {
		t.Fatalf("exit: got %d, want %d", code, exitUsage)
	}
	if line := oneErrorLine(t, stderr); !strings.Contains(line, "shouty") {
		t.Errorf("stderr %q does not show the bad value", line)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := cli(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "usher ") {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
}

func TestRedact(t *testing.T) {
	got := redact("postgres://usher:s3cret@db:5432/usher?sslmode=disable")
	if strings.Contains(got, "s3cret") {
		t.Fatalf("redact left the password in: %s", got)
	}
	if got := redact("/var/lib/usher/usher.db"); got != "/var/lib/usher/usher.db" {
		t.Fatalf("redact changed a file path: %s", got)
	}
}

func TestLocalURL(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1:8080":   "http://127.0.0.1:8080",
		":8080":            "http://127.0.0.1:8080",
		"0.0.0.0:80":       "http://127.0.0.1:80",
		"[::]:9000":        "http://127.0.0.1:9000",
		"[::1]:8080":       "http://[::1]:8080",
		"10.0.0.5:8080":    "http://10.0.0.5:8080",
		"usher.local:8080": "http://usher.local:8080",
	}
	for addr, want := range cases {
		if got := localURL(addr); got != want {
			t.Errorf("localURL(%q): got %q, want %q", addr, got, want)
		}
	}
}
