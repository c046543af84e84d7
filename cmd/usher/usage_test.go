package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
)

// importDB makes a database with an account "Acme" whose users are
// ada@acme.test (its primary admin) and bob@acme.test.
func importDB(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	db, err := openDB(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := access.New(db.Access(), nil)
	_, _, token, err := svc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "ada@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	email := "bob@acme.test"
	if _, err := svc.CreateUser(ctx, admin, access.UserInput{Email: &email}); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// recent is an RFC 3339 time a few days back, inside the retention.
func recent(days int) string {
	return time.Now().UTC().AddDate(0, 0, -days).Truncate(time.Second).Format(time.RFC3339)
}

func TestUsageImport(t *testing.T) {
	for _, engine := range []string{store.SQLite, store.Postgres} {
		t.Run(engine, func(t *testing.T) {
			dsn := tempDB(t)
			if engine == store.Postgres {
				dsn = postgresDSN(t)
			}
			importDB(t, dsn)
			file := writeFile(t, "march.csv", "user,product,at\n"+
				"ada@acme.test,draftpro,"+recent(2)+"\n"+
				"ada@acme.test,draftpro,\"broken\n"+
				"bob@acme.test,modelstudio,"+recent(1)+"\n"+
				"nobody@acme.test,draftpro,"+recent(1)+"\n")

			code, stdout, stderr := cli(t, "usage", "import", "--db", dsn, file)
			if code != exitError {
				t.Fatalf("exit %d, want 1 for rejected lines; stderr %q", code, stderr)
			}
			for _, want := range []string{`into account 1 "Acme": 2 accepted, 0 duplicates, 2 rejected`, "line 3: malformed CSV", `line 5: user "nobody@acme.test"`} {
				if !strings.Contains(stdout, want) {
					t.Errorf("summary does not say %q:\n%s", want, stdout)
				}
			}
			if line := oneErrorLine(t, stderr); !strings.Contains(line, "2 lines rejected") {
				t.Errorf("stderr: %q", line)
			}

			// Again, flags after the file, as JSON: nothing new.
			code, stdout, _ = cli(t, "usage", "import", file, "--json", "--account", "Acme", "--db", dsn)
			var res usage.IngestResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("--json: %v\n%s", err, stdout)
			}
			if code != exitError || res.Accepted != 0 || res.Duplicates != 2 || res.Rejected != 2 || len(res.Rejections) != 2 {
				t.Fatalf("re-import: exit %d, %+v", code, res)
			}

			ndjson := writeFile(t, "more.data", `{"user":"bob@acme.test","product":"draftpro","at":"`+recent(3)+`"}`+"\n")
			code, stdout, stderr = cli(t, "usage", "import", "--db", dsn, "--account", "1", "--format", "ndjson", ndjson)
			if code != exitOK || !strings.Contains(stdout, "1 accepted, 0 duplicates, 0 rejected") || stderr != "" {
				t.Fatalf("ndjson: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}

func TestUsageImportCommandLine(t *testing.T) {
	dsn := tempDB(t)
	importDB(t, dsn)
	csvFile := writeFile(t, "u.csv", "user,product,at\n")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"NoFile", []string{"--db", dsn}, "FILE is missing"},
		{"TwoFiles", []string{"--db", dsn, csvFile, csvFile}, "one FILE at a time"},
		{"UnknownExtension", []string{"--db", dsn, "usage.txt"}, "--format"},
		{"BadFormat", []string{"--db", dsn, "--format", "xml", csvFile}, `--format "xml"`},
		{"UnknownAccount", []string{"--db", dsn, "--account", "Globex", csvFile}, `--account "Globex"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := cli(t, append([]string{"usage", "import"}, c.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
			}
			if line := oneErrorLine(t, stderr); !strings.Contains(line, c.want) {
				t.Errorf("stderr %q does not say %q", line, c.want)
			}
		})
	}
	t.Run("MissingFile", func(t *testing.T) {
		code, _, stderr := cli(t, "usage", "import", "--db", dsn, filepath.Join(t.TempDir(), "nope.csv"))
		if code != exitError || !strings.Contains(oneErrorLine(t, stderr), "nope.csv") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("AccountRequiredWhenThereAreSeveral", func(t *testing.T) {
		code, _, stderr := cli(t, "account", "create", "--name", "Globex", "--admin-email", "hank@globex.test", "--db", dsn)
		if code != 0 {
			t.Fatal(stderr)
		}
		code, _, stderr = cli(t, "usage", "import", "--db", dsn, csvFile)
		if code != exitUsage || !strings.Contains(stderr, "--account is required") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("Help", func(t *testing.T) {
		for _, args := range [][]string{{"usage", "import", "--help"}, {"help", "usage", "import"}, {"usage", "--help"}} {
			code, stdout, _ := cli(t, args...)
			if code != 0 || !strings.Contains(stdout, "import") {
				t.Errorf("%v: exit %d, stdout %q", args, code, stdout)
			}
		}
		_, stdout, _ := cli(t, "usage", "import", "-h")
		for _, want := range []string{"--account", "--format", "--json", "--db", "USHER_DB", "progress"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("help does not mention %s", want)
			}
		}
	})
}

func TestImportProgress(t *testing.T) {
	items := func(n int) func(func(usage.Item) bool) {
		return func(yield func(usage.Item) bool) {
			for i := range n {
				if !yield(usage.Item{Line: i + 1}) {
					return
				}
			}
		}
	}
	run := func(terminal bool, size int64) string {
		var out bytes.Buffer
		p := newProgress(&out, size)
		p.terminal, p.every = terminal, 0
		r := &countingReader{r: strings.NewReader(strings.Repeat("x", 1000))}
		buf := make([]byte, 250)
		for range p.track(r, items(4)) {
			_, _ = r.Read(buf)
		}
		p.done(r.n)
		return out.String()
	}
	if got := run(false, 1000); strings.Count(got, "\n") != 5 || strings.Contains(got, "\r") || !strings.Contains(got, "(100%), 4 events") {
		t.Errorf("plain lines: got %q", got)
	}
	if got := run(true, 1000); !strings.Contains(got, "\r[") || !strings.Contains(got, "100%") || !strings.HasSuffix(got, "\n") {
		t.Errorf("bar: got %q", got)
	}
	if got := run(false, -1); !strings.Contains(got, "read 0.0 MB, 4 events") {
		t.Errorf("unknown size: got %q", got)
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}

func TestUsageImportFromStandardInput(t *testing.T) {
	dsn := tempDB(t)
	importDB(t, dsn)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = saved; r.Close() }()
	go func() {
		_, _ = w.WriteString(`{"user":"ada@acme.test","product":"draftpro","at":"` + recent(1) + `"}` + "\n")
		w.Close()
	}()
	code, stdout, stderr := cli(t, "usage", "import", "--db", dsn, "--format", "ndjson", "-")
	if code != exitOK || !strings.Contains(stdout, "Imported standard input into account 1") || !strings.Contains(stdout, "1 accepted") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = cli(t, "usage", "import", "--db", dsn, "-")
	if code != exitUsage || !strings.Contains(stderr, "--format") {
		t.Fatalf("without --format: exit %d, stderr %q", code, stderr)
	}
}
