package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var urlRE = regexp.MustCompile(`URL:\s+(http://\S+)`)

// TestServeDemo builds the binary, starts "usher serve --demo" on a free
// port, and uses the printed token against the REST API, the way a person
// following the README would.
func TestServeDemo(t *testing.T) {
	dir := t.TempDir()
	bin := usherBinary(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Port 0: the kernel picks a free port, and the demo prints the URL.
	cmd := exec.CommandContext(ctx, bin, "serve", "--demo", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "x.db"))
	cmd.Env = append(cmd.Environ(), "USHER_SMTP_URL=", "USHER_BASE_URL=", "USHER_LOG_LEVEL=info")
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server stdout:\n%s\nserver stderr:\n%s", stdout.String(), stderr.String())
		}
	}()

	// Wait for the demo's instructions: the URL, the token, a curl line.
	var base, token string
	for base == "" || token == "" {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("server exited before printing the demo token: %v", err)
		case <-ctx.Done():
			t.Fatal("timed out waiting for the demo token")
		case <-time.After(50 * time.Millisecond):
		}
		out := stdout.String()
		if !strings.Contains(out, "curl") {
			continue
		}
		if m := urlRE.FindStringSubmatch(out); m != nil {
			base = m[1]
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "API token:") {
				token = tokenRE.FindString(line)
			}
		}
		if base == "" || token == "" {
			t.Fatalf("no URL or token printed; stdout:\n%s", out)
		}
	}
	if !strings.Contains(stdout.String(), `curl -H "Authorization: Bearer `+token+`" `+base+`/api/v1/subscriptions`) {
		t.Errorf("stdout has no ready curl line:\n%s", stdout.String())
	}

	waitHealthy(t, base)

	// The printed password signs in to the console.
	pw := regexp.MustCompile(`Password:\s+(\S+)`).FindStringSubmatch(stdout.String())
	if pw == nil || !strings.Contains(stdout.String(), "Sign in:    "+base+"/signin") {
		t.Fatalf("no sign-in URL or password printed:\n%s", stdout.String())
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(base+"/signin", map[string][]string{"email": {"admin@demo.usher.test"}, "password": {pw[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cookie := resp.Header.Get("Set-Cookie"); resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(cookie, "usher_session=uss_") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Fatalf("sign in with the printed password: %s, Set-Cookie %q", resp.Status, cookie)
	}

	get := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}

	var users struct {
		Items []struct {
			ID    int64  `json:"id"`
			Email string `json:"email"`
			Name  string `json:"name"`
		} `json:"items"`
	}
	get("/api/v1/users?limit=500", &users)
	if len(users.Items) < 300 {
		t.Errorf("users: got %d, want the demo's 300 and more", len(users.Items))
	}
	admin := false
	for _, u := range users.Items {
		admin = admin || u.Email == "admin@demo.usher.test"
		if !strings.HasSuffix(u.Email, "@demo.usher.test") || u.Name == "" {
			t.Errorf("user %d: %q <%s>, want a named demo.usher.test user", u.ID, u.Name, u.Email)
		}
	}
	if !admin {
		t.Error("admin@demo.usher.test is not listed")
	}

	var subs struct {
		Items []struct {
			ID             int64  `json:"id"`
			ContractNumber string `json:"contract_number"`
			Seats          int    `json:"seats"`
			SeatsUsed      *int   `json:"seats_used"`
			SeatsAvailable *int   `json:"seats_available"`
			Plan           string `json:"plan"`
			Product        struct {
				Code string `json:"code"`
			} `json:"product"`
		} `json:"items"`
	}
	get("/api/v1/subscriptions", &subs)
	products := map[string]bool{}
	for _, s := range subs.Items {
		products[s.Product.Code] = true
		if s.SeatsUsed == nil || s.SeatsAvailable == nil {
			t.Fatalf("subscription %d lacks seats_used or seats_available", s.ID)
		}
		if *s.SeatsUsed <= 0 || *s.SeatsUsed > s.Seats || *s.SeatsUsed+*s.SeatsAvailable != s.Seats {
			t.Errorf("contract %s: %d used + %d available of %d seats", s.ContractNumber, *s.SeatsUsed, *s.SeatsAvailable, s.Seats)
		}
	}
	if len(products) != 5 {
		t.Errorf("subscriptions cover products %v, want all five", products)
	}

	// Somebody among the first users holds a seat with services.
	type access struct {
		User          struct{ Email string } `json:"user"`
		Subscriptions []struct {
			Assigned     bool     `json:"assigned"`
			Services     []string `json:"services"`
			Benefits     []string `json:"benefits"`
			Subscription struct {
				ContractNumber string `json:"contract_number"`
			} `json:"subscription"`
		} `json:"subscriptions"`
	}
	seated := false
	for _, u := range users.Items[:min(40, len(users.Items))] {
		var a access
		get(fmt.Sprintf("/api/v1/users/%d/access", u.ID), &a)
		if a.User.Email != u.Email {
			t.Fatalf("access of user %d is for %q, want %q", u.ID, a.User.Email, u.Email)
		}
		if len(a.Subscriptions) != len(subs.Items) {
			t.Fatalf("access of %s: %d subscriptions, want all %d for an admin", u.Email, len(a.Subscriptions), len(subs.Items))
		}
		for _, s := range a.Subscriptions {
			if s.Assigned && len(s.Services) > 0 {
				seated = true
			}
		}
		if seated {
			break
		}
	}
	if !seated {
		t.Error("none of the first 40 users holds a seat with services")
	}

	// Months of usage: the report shows every status.
	var report struct {
		Rows []struct {
			Status   string  `json:"status"`
			LastUsed *string `json:"last_used"`
		} `json:"rows"`
		Totals struct {
			InactiveSeats int `json:"inactive_seats"`
		} `json:"totals"`
		ProcessedAt *time.Time `json:"processed_at"`
	}
	get("/api/v1/reports/usage?range=3m&limit=1000", &report)
	statuses := map[string]int{}
	for _, r := range report.Rows {
		statuses[r.Status]++
	}
	if statuses["active"] == 0 || statuses["inactive"] == 0 || statuses["unavailable"] == 0 ||
		report.Totals.InactiveSeats != statuses["inactive"] || report.ProcessedAt == nil {
		t.Errorf("usage report: statuses %v, totals %+v, processed at %v", statuses, report.Totals, report.ProcessedAt)
	}

	if !strings.Contains(stderr.String(), "usage notification emails will not be delivered") {
		t.Error("no log line says notification emails will not be delivered without SMTP")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit within 30s of SIGTERM")
	}
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 within 30s (last: %v)", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
