package mail_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const reportURL = "https://usher.example.com/reports/usage?status=inactive&range=3m"

func message(inactive bool) notify.Message {
	m := notify.Message{
		MessageID: "<run-7-1-1768892400@usher.example.com>",
		From:      "Usher <usher@example.com>",
		To:        usher.User{ID: 1, Name: "Ada Admin", Email: "ada@example.com"},
		Account:   usher.Account{ID: 7, Name: "Demo Co", TimeZone: "Europe/Berlin"},
		Date:      time.Date(2026, 1, 20, 7, 0, 0, 0, time.UTC),
		Summary: usage.InactiveSummary{Range: usage.Range3m, ByProduct: []usage.ProductSummary{},
			FirstUsers: []usher.User{}},
		ScheduledFor: time.Date(2026, 1, 20, 7, 0, 0, 0, time.UTC),
		SettingsURL:  "https://usher.example.com/usage-notifications",
	}
	if inactive {
		m.Summary.InactiveUsers, m.Summary.InactiveSeats = 12, 15
		m.Summary.NeverUsedSeats, m.Summary.StoppedUsingSeats = 4, 11
		m.Summary.InactiveCost = []usher.Cost{{Currency: "EUR", Seats: 10, Cents: 1200000}, {Currency: "USD", Seats: 2, Cents: 99900}}
		m.Summary.ByProduct = []usage.ProductSummary{
			{Product: "FUSION", ProductName: "Fusion Design", InactiveSeats: 9, InactiveUsers: 8},
			{Product: "RENDER", ProductName: "Render Studio", InactiveSeats: 6, InactiveUsers: 6},
		}
		m.Summary.FirstUsers = []usher.User{
			{ID: 11, Name: "Ben Baker", Email: "ben@example.com"},
			{ID: 12, Name: "Chloé <Dev> & Co", Email: "chloe@example.com"},
			{ID: 13, Name: "Dan Dunn", Email: "dan@example.com"},
		}
		m.ReportURL = reportURL
	}
	return m
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run go test -update after checking the change):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name        string
		inactive    bool
		wantSubject string
	}{
		{"inactive", true, "12 inactive users in Demo Co over the past 3 months"},
		{"none_inactive", false, "No inactive users in Demo Co over the past 3 months"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := mail.Render(message(tt.inactive))
			if err != nil {
				t.Fatal(err)
			}
			if e.Subject != tt.wantSubject {
				t.Errorf("subject: got %q, want %q", e.Subject, tt.wantSubject)
			}
			golden(t, tt.name+".txt.golden", "Subject: "+e.Subject+"\n\n"+e.Text)
			golden(t, tt.name+".html.golden", e.HTML)
			hasButton := strings.Contains(e.HTML, ">View inactive users</a>")
			hasLink := strings.Contains(e.HTML, "status=inactive") || strings.Contains(e.Text, "status=inactive")
			if hasButton != tt.inactive || hasLink != tt.inactive {
				t.Errorf("button %v, link %v; want both %v", hasButton, hasLink, tt.inactive)
			}
		})
	}
}

func TestRenderHidesTheButtonWhenNobodyIsInactiveEvenWithAURL(t *testing.T) {
	m := message(false)
	m.ReportURL = reportURL
	e, err := mail.Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.HTML, "View inactive users") || strings.Contains(e.HTML+e.Text, "status=inactive") {
		t.Fatal("an email without inactive users carries the button or the filtered link")
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		users int
		r     usage.Range
		name  string
		want  string
	}{
		{1, usage.Range30d, "Demo Co", "1 inactive user in Demo Co over the past 30 days"},
		{40, usage.Range1y, "Demo Co", "40 inactive users in Demo Co over the past year"},
		{0, usage.Range9m, "Demo\r\nBcc: x@example.com", "No inactive users in Demo Bcc: x@example.com over the past 9 months"},
	}
	for _, tt := range tests {
		m := notify.Message{Account: usher.Account{Name: tt.name}, Summary: usage.InactiveSummary{Range: tt.r, InactiveUsers: tt.users}}
		if got := mail.Subject(m); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// A recipient without a name is greeted without one, never by address, and
// every email opens with a heading naming the account.
func TestRenderGreetsWithoutANameAndHasAHeading(t *testing.T) {
	m := message(true)
	m.To.Name = ""
	e, err := mail.Render(m)
	if err != nil {
		t.Fatal(err)
	}
	for part, body := range map[string]string{"text": e.Text, "html": e.HTML} {
		if !strings.Contains(body, "Hello,") || strings.Contains(body, "Hello "+m.To.Email) {
			t.Errorf("%s: want a greeting without a name:\n%s", part, body)
		}
	}
	if !strings.Contains(e.HTML, "<h1") || !strings.Contains(e.HTML, "Demo Co · Usher") {
		t.Errorf("html: want a heading and the account's name:\n%s", e.HTML)
	}
	if !strings.HasPrefix(e.Text, "Demo Co: usage notification") {
		t.Errorf("text: want the account's name first:\n%s", e.Text)
	}
}
