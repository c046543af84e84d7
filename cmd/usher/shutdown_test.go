package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/store"
)

// gate is a TCP relay in front of the real SMTP server that holds every
// connection until opened, so a test can keep an email in flight.
type gate struct {
	addr     string
	arrived  chan struct{} // one value per connection accepted
	open     chan struct{}
	openOnce sync.Once
}

func startGate(t *testing.T, upstream string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{addr: ln.Addr().String(), arrived: make(chan struct{}, 16), open: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); g.release() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.arrived <- struct{}{}
			go func() {
				defer c.Close()
				<-g.open
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return g
}

func (g *gate) release() { g.openOnce.Do(func() { close(g.open) }) }

// TestSIGTERMLosesNothing stops a real `usher serve` while it answers a
// usage upload and sends an email: /readyz says 503 while it drains, the
// upload is answered in full, the email goes exactly once, and the process
// exits 0.
func TestSIGTERMLosesNothing(t *testing.T) {
	dbPath := tempDB(t)
	now := time.Date(2026, 3, 4, 8, 1, 0, 0, time.UTC) // a Wednesday, one minute after the email is due
	setClock(t, now)
	clockFile := os.Getenv(testNowEnv)
	ctx := context.Background()
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	admins := seedAdmins(t, db, 1, now.AddDate(0, 0, -1), "2026-03-04")
	db.Close()

	smtp := smtptest.StartServer(t, smtptest.NoTLS)
	g := startGate(t, smtp.Addr)
	srv := startServe(t, "server", clockFile, "--db", dbPath, "--smtp", "smtp://"+g.addr,
		"--mail-from", "Usher <usher@example.com>", "--drain-delay", "1500ms")
	base := "http://" + srv.addr

	// The email is in flight: the scheduler has connected to the mail server.
	select {
	case <-g.arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("the scheduler did not start sending:\n%s", srv.stderr.String())
	}

	// The upload is in flight: with Expect: 100-continue the body is sent
	// only once the handler reads it, so when the first line is written the
	// request is being served.
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", base+"/api/v1/usage-events", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admins[0].token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Expect", "100-continue")
	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(b), err}
	}()
	line := func(i int) string {
		return fmt.Sprintf(`{"user":%q,"product":"draftpro","at":%q}`+"\n", admins[0].email, now.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339))
	}
	if _, err := io.WriteString(pw, line(1)); err != nil {
		t.Fatal(err)
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: still answering, but not ready.
	eventually(t, 10*time.Second, func() (bool, string) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "stopping"),
			fmt.Sprintf("/readyz: %d %s", resp.StatusCode, b)
	})

	// Let both finish.
	for i := 2; i <= 3; i++ {
		if _, err := io.WriteString(pw, line(i)); err != nil {
			t.Fatal(err)
		}
	}
	pw.Close()
	g.release()

	a := <-answered
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("upload during shutdown: %d %q %v", a.status, a.body, a.err)
	}
	var res struct{ Accepted, Rejected int }
	if err := json.Unmarshal([]byte(a.body), &res); err != nil || res.Accepted != 3 || res.Rejected != 0 {
		t.Fatalf("upload answer %s: want 3 accepted", a.body)
	}
	select {
	case err := <-srv.exited:
		srv.done = true
		if err != nil {
			t.Fatalf("after SIGTERM: %v, want exit 0\n%s", err, srv.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("did not stop within 30s:\n%s", srv.stderr.String())
	}

	msgs := smtptest.WaitMessages(t, smtp.Mailbox, 1, 10*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d emails, want 1", len(msgs))
	}
	db, err = store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs := runsFor(t, db, time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC))
	if len(runs) != 1 || runs[0].status != "delivered" || runs[0].attempts != 1 {
		t.Fatalf("runs: %+v, want one delivered at the first attempt", runs)
	}
	// Every request's log line carries its id.
	for _, l := range srv.logs() {
		if l["msg"] == "request" && l["request_id"] == nil {
			t.Fatalf("request logged without request_id: %v", l)
		}
	}
	if srv.count("usage notification delivered") != 1 {
		t.Fatalf("want one delivery logged:\n%s", srv.stderr.String())
	}
}
