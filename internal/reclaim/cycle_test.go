package reclaim_test

import (
	"context"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/access"
	umail "github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mail/smtptest"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// world is an account in Berlin with one priced Standard contract, its
// services on a real database, a controlled clock and a real SMTP server.
type world struct {
	t       *testing.T
	clock   *clock
	acc     *access.Service
	use     *usage.Service
	rec     *reclaim.Service
	admin   usher.Actor
	manager usher.User
	sub     usher.Subscription
	users   map[string]usher.User
	mailbox string
	smtp    string // the SMTP server's host:port
	loc     *time.Location
}

func newWorld(t *testing.T, db *store.DB) *world {
	t.Helper()
	ctx := context.Background()
	loc, _ := time.LoadLocation("Europe/Berlin")
	w := &world{t: t, clock: &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, loc)}, users: map[string]usher.User{}, loc: loc}
	w.acc = access.New(db.Access(), w.clock.Now)
	w.use = usage.New(db.Usage(), usage.Config{Now: w.clock.Now})
	srv := smtptest.StartServer(t, smtptest.NoTLS)
	w.mailbox, w.smtp = srv.Mailbox, srv.Addr
	sender, err := umail.Open("smtp://" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	w.rec = reclaim.New(db.Reclaim(), w.acc, sender, reclaim.Config{BaseURL: "https://usher.example.com", From: "Usher <usher@example.com>",
		Now: w.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_, _, token, err := w.acc.CreateAccount(ctx, access.NewAccount{Name: "Acme", AdminEmail: "admin@acme.test", TimeZone: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if w.admin, err = w.acc.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	w.manager = w.user("manager@acme.test", false)
	seats, no := 10, false
	w.sub, err = w.acc.CreateSubscription(ctx, w.admin, access.NewSubscription{Product: "draftpro", Plan: usher.PlanStandard, Seats: &seats,
		ContractNumber: "STD-1", TermStart: date("2026-01-01"), TermEnd: date("2027-01-01"), ContractManagerID: w.manager.ID,
		AssignManagerSeat: &no, PricePerSeatYear: "1200.00", Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func date(s string) usher.Date { d, _ := usher.ParseDate(s); return d }

func (w *world) user(email string, exempt bool) usher.User {
	w.t.Helper()
	u, err := w.acc.CreateUser(context.Background(), w.admin, access.UserInput{Email: &email, Name: ptr(strings.Split(email, "@")[0]), ReclaimExempt: &exempt})
	if err != nil {
		w.t.Fatal(err)
	}
	w.users[email] = u
	return u
}

// seat creates a user holding a seat of the contract since at.
func (w *world) seat(email string, at time.Time, exempt bool) usher.User {
	w.t.Helper()
	u := w.user(email, exempt)
	saved := w.clock.Now()
	w.clock.Set(at)
	defer w.clock.Set(saved)
	if err := w.acc.Assign(context.Background(), w.admin, u.ID, w.sub.ID, []string{"cloud_storage"}); err != nil {
		w.t.Fatal(err)
	}
	return u
}

func ptr[T any](v T) *T { return &v }

// holds reports whether the user holds a seat of the contract.
func (w *world) holds(email string) bool {
	w.t.Helper()
	ua, err := w.acc.Access(context.Background(), w.admin, w.users[email].ID)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, s := range ua.Subscriptions {
		if s.Subscription.ID == w.sub.ID && s.Assigned && len(s.Services) == 1 {
			return true
		}
	}
	return false
}

// textOf returns the text/plain part of a message.
func textOf(t *testing.T, m *mail.Message) string {
	t.Helper()
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no text part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

type mailSeen struct {
	to, subject, text string
}

func (w *world) mails() []mailSeen {
	var out []mailSeen
	for _, m := range smtptest.Messages(w.t, w.mailbox) {
		out = append(out, mailSeen{to: m.Header.Get("To"), subject: m.Header.Get("Subject"), text: textOf(w.t, m)})
	}
	return out
}

func seatsOf(p reclaim.Plan, action reclaim.Action) []string {
	var out []string
	for _, it := range p.Items {
		if it.Action == action {
			out = append(out, it.Email)
		}
	}
	return out
}

var keepLink = regexp.MustCompile(`https://usher\.example\.com/keep/([A-Za-z0-9_-]+)`)

// TestFullCycle: a policy is set, previewed, warns, one person keeps the
// seat from the email's link, one uses the product, the grace period ends,
// the rest is reclaimed with a notice and a digest, and the reclaim is
// undone. Previews and runs agree seat for seat, and every email reaches a
// real SMTP server once.
func TestFullCycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		long := w.clock.Now().AddDate(0, 0, -100)
		w.seat("keeper@acme.test", long, false)
		w.seat("user@acme.test", long, false)
		w.seat("idle@acme.test", long, false)
		w.seat("exempt@acme.test", long, true)
		w.seat("fresh@acme.test", w.clock.Now().AddDate(0, 0, -5), false)
		contractor := w.seat("contractor@acme.test", long, false)

		p, err := w.rec.Create(ctx, w.admin, reclaim.Input{Name: "Idle DraftPro", Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions,
			SubscriptionIDs: []int64{w.sub.ID}}, Range: "30d", Mode: reclaim.WarnThenReclaim, GraceDays: ptr(7),
			Exemptions: &reclaim.Exemptions{Users: []int64{contractor.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		preview, err := w.rec.Preview(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := seatsOf(preview, reclaim.ActWarn), []string{"idle@acme.test", "keeper@acme.test", "user@acme.test"}; !slices.Equal(got, want) {
			t.Fatalf("preview warns %v, want %v", got, want)
		}
		if len(preview.Skipped) != 2 {
			t.Fatalf("preview skips %+v, want the exempt user and the listed contractor", preview.Skipped)
		}

		// The first run is at 06:00 the next morning.
		w.clock.Set(time.Date(2026, 3, 3, 6, 0, 1, 0, w.loc))
		before, err := w.rec.Preview(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		mails := w.mails()
		var warned []string
		tokens := map[string]string{}
		for _, m := range mails {
			if strings.Contains(m.subject, "will be reclaimed") {
				warned = append(warned, m.to)
				if tok := keepLink.FindStringSubmatch(m.text); tok != nil {
					tokens[m.to] = tok[1]
				}
				if !strings.Contains(m.text, "10 March 2026") || !strings.Contains(m.text, "never used since it was assigned") {
					t.Errorf("warning to %s lacks the reclaim date or the last use:\n%s", m.to, m.text)
				}
			}
		}
		slices.Sort(warned)
		if want := []string{`"idle" <idle@acme.test>`, `"keeper" <keeper@acme.test>`, `"user" <user@acme.test>`}; !slices.Equal(warned, want) {
			t.Fatalf("warned %v, want %v (all mails: %d)", warned, want, len(mails))
		}
		if got := seatsOf(before, reclaim.ActWarn); len(got) != len(warned) {
			t.Fatalf("the run warned %d people, the preview said %v", len(warned), got)
		}
		if len(mails) != 5 { // three warnings, a digest to the primary admin and one to the contract manager
			t.Fatalf("got %d emails after the first run, want 5", len(mails))
		}

		// A second pass the same day sends nothing more.
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		if n := len(w.mails()); n != 5 {
			t.Fatalf("a second pass sent more: %d emails", n)
		}

		// The keeper keeps the seat: reading the link changes nothing, using it keeps.
		tok := tokens[`"keeper" <keeper@acme.test>`]
		offer, err := w.rec.KeepOffer(ctx, tok)
		if err != nil || offer.Kept || offer.ContractNumber != "STD-1" {
			t.Fatalf("offer: %+v, %v", offer, err)
		}
		if _, err := w.rec.Keep(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := w.rec.Keep(ctx, tok); usher.ErrorCode(err) != usher.ECONFLICT {
			t.Fatalf("second keep: got %v, want conflict", err)
		}
		if _, err := w.rec.Keep(ctx, "forged"); usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("forged link: got %v, want not found", err)
		}
		// The user uses the product during the grace period.
		w.clock.Set(time.Date(2026, 3, 6, 12, 0, 0, 0, w.loc))
		if res, err := w.use.Ingest(ctx, w.admin, usage.Decode(strings.NewReader(
			`{"user":"user@acme.test","product":"draftpro","at":"2026-03-05T10:00:00+01:00"}`), usage.FormatNDJSON)); err != nil || res.Accepted != 1 {
			t.Fatal(res, err)
		}
		n0 := len(w.mails())
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		// That day's run closes the user's warning and says so in its digest.
		if m := w.mails()[n0:]; len(m) != 2 || !strings.Contains(m[0].text, "user@acme.test") || !strings.Contains(m[0].text, "used the product after the warning") {
			t.Fatalf("digests after the use: %+v", m)
		}

		// The grace period ends on 10 March.
		w.clock.Set(time.Date(2026, 3, 10, 6, 0, 1, 0, w.loc))
		before, err = w.rec.Preview(ctx, w.admin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := seatsOf(before, reclaim.ActReclaim); !slices.Equal(got, []string{"idle@acme.test"}) {
			t.Fatalf("preview at the reclaim date reclaims %v, want idle only (%+v)", got, before)
		}
		if len(before.Savings) != 1 || before.Savings[0].String() != "EUR 1200.00" {
			t.Fatalf("preview savings: %+v", before.Savings)
		}
		n0 = len(w.mails())
		if _, err := w.rec.RunNow(ctx, "test"); err != nil {
			t.Fatal(err)
		}
		if w.holds("idle@acme.test") || !w.holds("keeper@acme.test") || !w.holds("user@acme.test") || !w.holds("exempt@acme.test") || !w.holds("fresh@acme.test") {
			t.Fatal("after the run: only idle should have lost the seat")
		}
		hist, err := w.acc.Batches(ctx, w.admin, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist.Items) != 1 || len(hist.Items[0].Items) != 1 || hist.Items[0].Items[0].Email != "idle@acme.test" ||
			hist.Items[0].Source != usher.BatchPolicy || hist.Items[0].Saved[0].String() != "EUR 1200.00" {
			t.Fatalf("history: %+v", hist.Items)
		}
		var notice, digest string
		for _, m := range w.mails()[n0:] {
			switch {
			case strings.Contains(m.subject, "was reclaimed") && strings.Contains(m.to, "idle@"):
				notice = m.text
			case strings.HasPrefix(m.subject, "Reclaim policy") && strings.Contains(m.to, "admin@"):
				digest = m.text
			}
		}
		if notice == "" || !strings.Contains(digest, "idle@acme.test") || !strings.Contains(digest, "EUR 1200.00") ||
			!strings.Contains(digest, "kept with the link") {
			t.Fatalf("notice:\n%s\ndigest:\n%s", notice, digest)
		}
		if n := len(w.mails()) - n0; n != 3 { // notice, two digests
			t.Fatalf("reclaim run sent %d emails, want 3", n)
		}

		// Undo gives the seat back with its service.
		res, err := w.acc.Undo(ctx, w.admin, hist.Items[0].ID)
		if err != nil || len(res.Restored) != 1 || len(res.Failed) != 0 {
			t.Fatalf("undo: %+v, %v", res, err)
		}
		if !w.holds("idle@acme.test") {
			t.Fatal("undo did not restore the seat")
		}
		if _, err := w.acc.Undo(ctx, w.admin, hist.Items[0].ID); usher.ErrorCode(err) != usher.ECONFLICT {
			t.Fatalf("second undo: got %v, want conflict", err)
		}
	})
}

// TestTwoReplicasRunOnce: two services on one database (two replicas) run
// the same due policy at once; each person is warned once, each email is
// sent once, and the daily run is carried out once.
func TestTwoReplicasRunOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		w := newWorld(t, db)
		long := w.clock.Now().AddDate(0, 0, -100)
		for _, e := range []string{"a@acme.test", "b@acme.test", "c@acme.test", "d@acme.test"} {
			w.seat(e, long, false)
		}
		p, err := w.rec.Create(ctx, w.admin, reclaim.Input{Name: "Idle", Scope: reclaim.Scope{Kind: reclaim.ScopeProducts, Products: []string{"draftpro"}},
			Range: "30d", Mode: reclaim.WarnThenReclaim, GraceDays: ptr(3)})
		if err != nil {
			t.Fatal(err)
		}
		sender, err := umail.Open("smtp://" + w.smtp)
		if err != nil {
			t.Fatal(err)
		}
		other := reclaim.New(db.Reclaim(), w.acc, sender, reclaim.Config{BaseURL: "https://usher.example.com", From: "Usher <usher@example.com>",
			Now: w.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		check := func(wantMails int) {
			t.Helper()
			var wg sync.WaitGroup
			for i, svc := range []*reclaim.Service{w.rec, other} {
				wg.Go(func() {
					if _, err := svc.RunNow(ctx, "replica-"+string(rune('a'+i))); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			seen := map[string]int{}
			for _, m := range smtptest.Messages(t, w.mailbox) {
				seen[m.Header.Get("Message-Id")]++
			}
			total := 0
			for id, n := range seen {
				total += n
				if n != 1 {
					t.Errorf("%s sent %d times", id, n)
				}
			}
			if total != wantMails {
				t.Fatalf("got %d emails, want %d", total, wantMails)
			}
		}
		w.clock.Set(p.NextRunAt.Add(time.Second))
		check(4 + 2) // four warnings, a digest to the admin and to the contract manager
		w.clock.Set(p.NextRunAt.AddDate(0, 0, 3).Add(time.Second))
		check(6 + 4 + 2) // four notices, two digests
		hist, err := w.acc.Batches(ctx, w.admin, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		seats := 0
		for _, b := range hist.Items {
			seats += len(b.Items)
		}
		if seats != 4 {
			t.Fatalf("reclaimed %d seats over %d batches, want 4", seats, len(hist.Items))
		}
	})
}
