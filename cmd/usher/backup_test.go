package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// backupNow is the test clock of the backup tests: the report's ranges are
// computed from it, so two servers on the same data answer alike.
var backupNow = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// seedForBackup gives the account behind api a subscription, eight users
// holding seats and an audit trail.
func seedForBackup(t *testing.T, api *apiClient) []string {
	t.Helper()
	var me struct {
		User struct{ ID int64 } `json:"user"`
	}
	api.do("GET", "/api/v1/me", "", 200, &me)
	var sub struct{ ID int64 }
	api.do("POST", "/api/v1/subscriptions", fmt.Sprintf(`{"product":"draftpro","plan":"standard","seats":20,"contract_number":"C-1",
		"term_start":"2026-01-01","term_end":"2027-01-01","benefits":[],"contract_manager_id":%d}`, me.User.ID), 201, &sub)
	var emails []string
	for i := range 8 {
		email := fmt.Sprintf("user%d@acme.test", i)
		var u struct{ ID int64 }
		api.do("POST", "/api/v1/users", fmt.Sprintf(`{"email":%q,"name":"User %d"}`, email, i), 201, &u)
		api.do("PUT", fmt.Sprintf("/api/v1/users/%d/access", u.ID), fmt.Sprintf(`{"subscriptions":[{"subscription_id":%d,"assigned":true,"services":[]}]}`, sub.ID), 200, nil)
		emails = append(emails, email)
	}
	return emails
}

// answers is what a server says about the account: the Usage Report of
// every seat, the audit log and the subscriptions with their seat counts.
func answers(t *testing.T, base, token string) (string, error) {
	var b strings.Builder
	for _, path := range []string{"/api/v1/reports/usage?status=all&range=1y&limit=500", "/api/v1/audit-log?limit=500", "/api/v1/subscriptions?limit=500"} {
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return "", fmt.Errorf("GET %s: %d %s %v", path, resp.StatusCode, body, err)
		}
		fmt.Fprintf(&b, "%s\n%s\n", path, body)
	}
	return b.String(), nil
}

// ingestStep sends one batch of usage events, one transaction's worth.
func ingestStep(base, token string, emails []string, step int) error {
	var body strings.Builder
	for i, e := range emails {
		// Each step moves every seat's last use a day on (the report
		// counts days), so each state differs.
		at := backupNow.AddDate(0, 0, step-360).Add(time.Duration(i) * time.Second)
		fmt.Fprintf(&body, `{"user":%q,"product":"draftpro","at":%q}`+"\n", e, at.Format(time.RFC3339))
	}
	req, err := http.NewRequest("POST", base+"/api/v1/usage-events", strings.NewReader(body.String()))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf(`"accepted":%d`, len(emails))) {
		return fmt.Errorf("ingest step %d: %d %s", step, resp.StatusCode, b)
	}
	return nil
}

// TestBackupDuringIngestRestoresTheSameAnswers backs up a live server while
// usage events stream in, restores the copy into a fresh file, and wants a
// server on it to answer exactly as the original did at one moment inside
// the backup's window.
func TestBackupDuringIngestRestoresTheSameAnswers(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "live.db")
	setClock(t, backupNow)
	clockFile := os.Getenv(testNowEnv)
	code, stdout, stderr := cli(t, "account", "create", "--name", "Acme", "--admin-email", "ada@acme.test", "--timezone", "UTC", "--db", dbPath)
	if code != 0 {
		t.Fatalf("account create: %d %s", code, stderr)
	}
	token := tokenRE.FindString(stdout)
	live := startServe(t, "live", clockFile, "--db", dbPath)
	liveURL := "http://" + live.addr
	emails := seedForBackup(t, &apiClient{t: t, base: liveURL, token: token})

	// The ingest runs on; after each step it notes what the server answers.
	var (
		mu      sync.Mutex
		states  []string // states[i]: the answers after i steps
		failed  error
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	first, err := answers(t, liveURL, token)
	if err != nil {
		t.Fatal(err)
	}
	states = append(states, first)
	go func() {
		defer close(stopped)
		for step := 1; step < 360; step++ {
			select {
			case <-stop:
				return
			default:
			}
			err := ingestStep(liveURL, token, emails, step)
			var a string
			if err == nil {
				a, err = answers(t, liveURL, token)
			}
			mu.Lock()
			if err != nil {
				failed = err
				mu.Unlock()
				return
			}
			states = append(states, a)
			mu.Unlock()
		}
	}()
	steps := func() int {
		mu.Lock()
		defer mu.Unlock()
		if failed != nil {
			t.Fatalf("ingest: %v", failed)
		}
		return len(states) - 1
	}
	eventually(t, 30*time.Second, func() (bool, string) { return steps() >= 3, "three ingest steps" })

	backup := filepath.Join(dir, "backup.db")
	before := steps()
	code, stdout, stderr = cli(t, "backup", "--db", dbPath, "--to", backup)
	after := steps()
	if code != 0 || !strings.Contains(stdout, "Backed up") || !strings.Contains(stdout, "schema version") {
		t.Fatalf("backup: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	eventually(t, 30*time.Second, func() (bool, string) { return steps() >= after+2, "two more steps" })
	close(stop)
	<-stopped

	// A live server's database is not restored over.
	code, _, stderr = cli(t, "restore", "--from", backup, "--db", dbPath)
	if code == 0 || !strings.Contains(stderr, "in use by a running usher serve") {
		t.Fatalf("restore over a live database: exit %d, stderr %q", code, stderr)
	}
	// A damaged copy changes nothing.
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("not a database, not at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "restored.db")
	if code, _, stderr := cli(t, "restore", "--from", junk, "--db", fresh); code == 0 || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("restore of junk: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("restore of junk left %s behind: %v", fresh, err)
	}

	code, stdout, stderr = cli(t, "restore", "--from", backup, "--db", fresh)
	if code != 0 || !strings.Contains(stdout, "integrity ok") {
		t.Fatalf("restore: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	restored := startServe(t, "restored", clockFile, "--db", fresh)
	got, err := answers(t, "http://"+restored.addr, token)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	match := -1
	for k := before; k <= after+1 && k < len(states); k++ {
		if states[k] == got {
			match = k
		}
	}
	if match < 0 {
		t.Fatalf("the restored server answers like none of the states %d..%d the backup ran between:\n%s", before, after+1, got)
	}
	if states[match] == states[len(states)-1] {
		t.Fatalf("the restored server answers like the live one after the backup: the copy is not of the backup's moment; states %d, match %d:\n%s", len(states), match, got)
	}
	t.Logf("backup taken between steps %d and %d; restored answers are those after step %d", before, after, match)
}
