package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

// setClock points USHER_TEST_NOW_FILE at a file holding t and returns a
// function that moves the clock.
func setClock(t *testing.T, at time.Time) func(time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "now")
	set := func(at time.Time) {
		t.Helper()
		// Written to a temporary file and renamed, so a reader never sees
		// half a time.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(at.UTC().Format(time.RFC3339Nano)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	set(at)
	t.Setenv(testNowEnv, path)
	return set
}

// addUser creates a user with role in the account, as an admin would.
func addUser(t *testing.T, dsn string, accountID int64, email string, role usher.Role) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := access.New(db.Access(), nil)
	u, err := svc.CreateUser(ctx, usher.System(accountID), access.UserInput{Email: &email})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	if role != "" {
		if err := svc.GrantRole(ctx, usher.System(accountID), usher.RoleGrant{UserID: u.ID, Role: role}); err != nil {
			t.Fatalf("grant %s to %s: %v", role, email, err)
		}
	}
}

func TestNotificationsCommands(t *testing.T) {
	// Monday 2 February 2026, 10:00 in London.
	setClock(t, time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC))
	db := tempDB(t)
	if code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--timezone", "Europe/London", "--db", db); code != 0 {
		t.Fatalf("account create: %s", stderr)
	}

	code, stdout, stderr := cli(t, "notifications", "show", "--admin", "ada@acme.test", "--db", db)
	if code != 0 || !strings.Contains(stdout, "not set up") || !strings.Contains(stdout, "--start-date 2026-02-02") {
		t.Fatalf("show before set up: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = cli(t, "notifications", "set", "--admin", "ADA@acme.test", "--db", db,
		"--start-date", "2026-02-06", "--frequency", "weekly", "--range", "3m")
	if code != 0 {
		t.Fatalf("set: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"have been turned on", "weekly (every week)", "3m (3 months)", "Friday 6 February 2026 at 08:00 Europe/London (2026-02-06T08:00:00Z)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("set: stdout does not say %q:\n%s", want, stdout)
		}
	}

	// An edit changes only what it names.
	code, stdout, stderr = cli(t, "notifications", "set", "--admin", "ada@acme.test", "--db", db, "--range", "1y", "--send-hour", "7")
	if code != 0 || !strings.Contains(stdout, "changes have been saved") || !strings.Contains(stdout, "weekly") ||
		!strings.Contains(stdout, "1y (1 year)") || !strings.Contains(stdout, "at 07:00 Europe/London") {
		t.Fatalf("edit: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	t.Run("InvalidInputNamesEveryField", func(t *testing.T) {
		code, stdout, stderr := cli(t, "notifications", "set", "--admin", "ada@acme.test", "--db", db,
			"--start-date", "2026-02-31", "--frequency", "daily", "--range", "2w")
		line := oneErrorLine(t, stderr)
		for _, want := range []string{`start_date: "2026-02-31" is not a date in the form YYYY-MM-DD`,
			"frequency: must be one of weekly, biweekly, monthly, quarterly", "range: must be one of 30d, 3m, 6m, 9m, 1y"} {
			if !strings.Contains(line, want) {
				t.Errorf("stderr %q does not say %q", line, want)
			}
		}
		if code != exitError || stdout != "" {
			t.Fatalf("exit %d stdout %q, want %d and nothing", code, stdout, exitError)
		}
		code, _, stderr = cli(t, "notifications", "set", "--admin", "ada@acme.test", "--db", db, "--start-date", "2026-02-01")
		if code != exitError || !strings.Contains(oneErrorLine(t, stderr), "start_date: must be today (2026-02-02 in Europe/London) or later") {
			t.Fatalf("past start: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("OnlyPrimaryAdmins", func(t *testing.T) {
		addUser(t, db, 1, "sam@acme.test", usher.RoleSecondaryAdmin)
		for _, sub := range [][]string{{"show"}, {"set", "--start-date", "2026-02-06", "--frequency", "weekly", "--range", "3m"}, {"off"}} {
			code, _, stderr := cli(t, append(append([]string{"notifications"}, sub...), "--admin", "sam@acme.test", "--db", db)...)
			if line := oneErrorLine(t, stderr); code != exitError || !strings.Contains(line, "only primary admins can set up usage notifications") {
				t.Fatalf("%s as a secondary admin: exit %d, stderr %q", sub[0], code, line)
			}
		}
	})

	t.Run("UnknownAndAmbiguousAdmins", func(t *testing.T) {
		code, _, stderr := cli(t, "notifications", "show", "--admin", "nobody@acme.test", "--db", db)
		if code != exitError || !strings.Contains(oneErrorLine(t, stderr), "no user nobody@acme.test") {
			t.Fatalf("unknown: exit %d, stderr %q", code, stderr)
		}
		if code, _, stderr := cli(t, "account", "create", "--name", "Other", "--admin-email", "ada@acme.test", "--allow-existing-email", "--db", db); code != 0 {
			t.Fatal(stderr)
		}
		code, _, stderr = cli(t, "notifications", "show", "--admin", "ada@acme.test", "--db", db)
		if code != exitUsage || !strings.Contains(oneErrorLine(t, stderr), "accounts 1, 2: choose one with --account") {
			t.Fatalf("ambiguous: exit %d, stderr %q", code, stderr)
		}
		code, stdout, _ := cli(t, "notifications", "show", "--admin", "ada@acme.test", "--account", "2", "--db", db)
		if code != 0 || !strings.Contains(stdout, "not set up") {
			t.Fatalf("with --account: exit %d, stdout %q", code, stdout)
		}
	})

	code, stdout, stderr = cli(t, "notifications", "off", "--admin", "ada@acme.test", "--account", "1", "--db", db)
	if code != 0 || !strings.Contains(stdout, "have been turned off") {
		t.Fatalf("off: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = cli(t, "notifications", "show", "--admin", "ada@acme.test", "--account", "1", "--db", db)
	if code != 0 || !strings.Contains(stdout, ": off") || !strings.Contains(stdout, "none while off") || !strings.Contains(stdout, "No emails yet.") {
		t.Fatalf("show after off: exit %d, stdout %q", code, stdout)
	}
}

func TestNotificationsUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"MissingSubcommand", []string{"notifications"}, "missing subcommand"},
		{"UnknownSubcommand", []string{"notifications", "mute"}, `unknown subcommand "mute"`},
		{"MissingAdmin", []string{"notifications", "show"}, "--admin is required"},
		{"RunDueSMTPWithoutSender", []string{"notifications", "run-due", "--smtp", "smtp://127.0.0.1:1025"}, "--smtp needs --mail-from"},
		{"RunDueBadSMTP", []string{"notifications", "run-due", "--smtp", "mail.example.com", "--mail-from", "u@example.com"}, "--smtp"},
		{"ServeSMTPWithoutSender", []string{"serve", "--smtp", "smtp://127.0.0.1:1025"}, "--smtp needs --mail-from"},
		{"ServeBadInterval", []string{"serve", "--scheduler-interval", "-1s"}, "--scheduler-interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := cli(t, c.args...)
			if code != exitUsage {
				t.Fatalf("exit: got %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if line := oneErrorLine(t, stderr); !strings.Contains(line, c.want) {
				t.Errorf("stderr %q does not contain %q", line, c.want)
			}
		})
	}
	code, stdout, _ := cli(t, "serve", "--help")
	if code != 0 || !strings.Contains(stdout, "--scheduler-interval") || !strings.Contains(stdout, "USHER_SCHEDULER_INTERVAL") {
		t.Errorf("serve --help does not document the scheduler interval:\n%s", stdout)
	}
	code, stdout, _ = cli(t, "help", "notifications")
	if code != 0 || !strings.Contains(stdout, "run-due") {
		t.Errorf("help notifications: exit %d, stdout %q", code, stdout)
	}
	for _, args := range [][]string{{"notifications"}, {"notifications", "show"}, {"notifications", "set"}, {"notifications", "off"}, {"notifications", "run-due"}} {
		code, stdout, _ := cli(t, append(args, "--help")...)
		if code != 0 || !strings.Contains(stdout, "Usage: usher notifications") {
			t.Errorf("%v --help: exit %d, stdout %q", args, code, stdout)
		}
	}
}
