package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUserImport(t *testing.T) {
	db := tempDB(t)
	if code, _, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--db", db); code != 0 {
		t.Fatalf("account create: %s", stderr)
	}
	seedSubscription(t, db, "C-7", 2)
	file := filepath.Join(t.TempDir(), "people.csv")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("email,name,groups,roles,subscriptions\n" +
		"bob@acme.test,Bob,Design,,C-7:cloud_storage\n" +
		"cy@acme.test,Cy,Design;CAD,contract_manager:C-7,\n")

	code, stdout, stderr := cli(t, "user", "import", "--dry-run", file, "--db", db)
	if code != 0 {
		t.Fatalf("dry run: exit %d, %s", code, stderr)
	}
	for _, want := range []string{"line 2 bob@acme.test: create user Bob; create group Design; add to group Design; assign C-7\n",
		"line 3 cy@acme.test: create user Cy; add to group Design; create group CAD; add to group CAD; grant contract_manager on C-7\n",
		"nothing was changed", "2 users created, 0 updated, 2 groups created, 3 memberships, 1 roles, 1 seats, 0 waiting"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "2 of 2 lines") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
	if _, out, _ := cli(t, "group", "list", "--db", db); strings.Contains(out, "Design") {
		t.Fatalf("the dry run created a group:\n%s", out)
	}

	code, stdout, stderr = cli(t, "user", "import", file, "--db", db)
	if code != 0 || !strings.Contains(stdout, "Imported 2 lines") {
		t.Fatalf("import: exit %d, %s %s", code, stdout, stderr)
	}
	if _, out, _ := cli(t, "group", "members", "Design", "--db", db); !strings.Contains(out, "bob@acme.test") || !strings.Contains(out, "cy@acme.test") {
		t.Fatalf("members after import:\n%s", out)
	}

	write("email,name,colour\nnot-an-email,X,red\n")
	code, _, stderr = cli(t, "user", "import", file, "--db", db)
	if code != 1 || !strings.Contains(oneErrorLine(t, stderr), `"colour" is not a column`) {
		t.Fatalf("bad header: exit %d, %q", code, stderr)
	}
	write("email,subscriptions\nnot-an-email,C-404\n")
	code, _, stderr = cli(t, "user", "import", file, "--db", db)
	if code != 1 || !strings.Contains(stderr, "line 2: email") || !strings.Contains(stderr, "line 2: subscriptions[0]: no contract numbered C-404") {
		t.Fatalf("bad lines: exit %d, %q", code, stderr)
	}
}
