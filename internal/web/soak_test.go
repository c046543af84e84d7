package web_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// soakDuration is how long TestSoak runs on each engine: a few seconds by
// default, so that every test run tries the mix; set USHER_SOAK_DURATION (a
// Go duration such as 2m) for a longer hunt, e.g.
//
//	USHER_SOAK_DURATION=2m go test -race -count=1 -run TestSoak ./internal/web/
func soakDuration(t *testing.T) time.Duration {
	raw := os.Getenv("USHER_SOAK_DURATION")
	if raw == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		t.Fatalf("USHER_SOAK_DURATION=%q: want a positive Go duration such as 2m", raw)
	}
	return d
}

// TestSoak runs assigns, bulk unassigns, PUT access, usage ingest and report
// reads from many goroutines at once through the HTTP API, then checks that
// nothing answered 5xx (or another status the operation cannot give), that
// every subscription's seats used equal its seats held and stay within
// the seats bought, and that the audit log holds exactly one entry per seat
// taken or given back.
func TestSoak(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		u := newUsageEnv(t, db, 0)
		admin := u.admin
		// Few seats, so that assigns also run out of them.
		subs := []subJSON{
			admin.createSubscription("SOAK-1", "draftpro", 4, u.adminU.ID),
			admin.createSubscription("SOAK-2", "civilworks", 4, u.adminU.ID),
			admin.createSubscription("SOAK-3", "animator", 3, u.adminU.ID),
		}
		var users []userJSON
		for i := range 10 {
			users = append(users, admin.createUser(fmt.Sprintf("soak%d@acme.test", i)))
		}
		// Bulk unassigns come from a second admin, so that the audit
		// entries of their seats can be told from those of PUT access.
		sam := admin.createUser("sam@acme.test")
		admin.ok(http.StatusCreated, "POST", "/api/v1/users/"+itoa(sam.ID)+"/roles", map[string]any{"role": "secondary_admin"}, nil)
		samClient := u.tokenFor(u.adminU.AccountID, sam.ID, usher.ScopeFull)
		products := []string{"draftpro", "civilworks", "animator"}

		type outcome struct {
			op   string
			call call
		}
		var (
			mu            sync.Mutex
			outcomes      []outcome
			unassignSeats int // seats the second admin's 200 answers say were taken
		)
		var gaveAndTook [2]atomic.Bool // an assign and an unassign have succeeded
		record := func(op string, c call) {
			mu.Lock()
			outcomes = append(outcomes, outcome{op, c})
			mu.Unlock()
			if c.status == 200 && op == "assign" {
				gaveAndTook[0].Store(true)
			} else if c.status == 200 && op == "unassign" {
				gaveAndTook[1].Store(true)
			}
		}
		accessItems := func(r *rand.Rand) []map[string]any {
			items := []map[string]any{}
			for _, s := range subs {
				if r.IntN(2) == 0 {
					items = append(items, map[string]any{"subscription_id": s.ID, "assigned": true})
				}
			}
			return items
		}
		ops := map[string]func(r *rand.Rand){
			// assign: read the user's access and PUT it back with one more seat.
			"assign": func(r *rand.Rand) {
				usr, sub := users[r.IntN(len(users))], subs[r.IntN(len(subs))]
				path := "/api/v1/users/" + itoa(usr.ID) + "/access"
				got := admin.send("GET", path, "", nil)
				record("read access", got)
				var acc accessJSON
				if got.status != http.StatusOK || json.Unmarshal(got.body, &acc) != nil {
					return
				}
				items := []map[string]any{}
				for _, e := range acc.Subscriptions {
					if e.Assigned || e.Subscription.ID == sub.ID {
						items = append(items, map[string]any{"subscription_id": e.Subscription.ID, "assigned": true})
					}
				}
				record("assign", admin.sendJSON("PUT", path, map[string]any{"subscriptions": items}))
			},
			"put access": func(r *rand.Rand) {
				usr := users[r.IntN(len(users))]
				record("put access", admin.sendJSON("PUT", "/api/v1/users/"+itoa(usr.ID)+"/access", map[string]any{"subscriptions": accessItems(r)}))
			},
			// unassign: the seats some users held a moment ago, which
			// others may be taking at the same time.
			"unassign": func(r *rand.Rand) {
				var items []map[string]int64
				for _, i := range r.Perm(len(users))[:1+r.IntN(3)] {
					got := admin.send("GET", "/api/v1/users/"+itoa(users[i].ID)+"/access", "", nil)
					record("read access", got)
					var acc accessJSON
					if got.status != http.StatusOK || json.Unmarshal(got.body, &acc) != nil {
						return
					}
					for _, e := range acc.Subscriptions {
						if e.Assigned {
							items = append(items, map[string]int64{"user_id": users[i].ID, "subscription_id": e.Subscription.ID})
						}
					}
				}
				if len(items) == 0 {
					return
				}
				r.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
				c := samClient.sendJSON("POST", "/api/v1/unassign", map[string]any{"items": items})
				record("unassign", c)
				var res struct{ Seats int }
				if c.status == http.StatusOK && json.Unmarshal(c.body, &res) == nil {
					mu.Lock()
					unassignSeats += res.Seats
					mu.Unlock()
				}
			},
			"ingest": func(r *rand.Rand) {
				var b strings.Builder
				n := 1 + r.IntN(20)
				for range n {
					at := testNow.Add(-time.Duration(r.IntN(40*24)) * time.Hour)
					fmt.Fprintf(&b, `{"user":%q,"product":%q,"at":%q}`+"\n",
						users[r.IntN(len(users))].Email, products[r.IntN(len(products))], at.Format(time.RFC3339))
				}
				c := admin.send("POST", "/api/v1/usage-events", "application/x-ndjson", []byte(b.String()))
				record("ingest", c)
				var res usage.IngestResult
				if c.status == http.StatusOK && (json.Unmarshal(c.body, &res) != nil || res.Accepted+res.Duplicates+res.Rejected != n || res.Rejected != 0) {
					record("ingest counts", call{method: "POST", path: fmt.Sprintf("/api/v1/usage-events (%d lines)", n), status: -1, body: c.body})
				}
			},
			"report": func(r *rand.Rand) {
				q := url.Values{"status": {[]string{"all", "inactive", "active"}[r.IntN(3)]}, "range": {"30d"}}
				record("report", admin.send("GET", "/api/v1/reports/usage?"+q.Encode(), "", nil))
				record("report", admin.send("GET", "/api/v1/subscriptions/"+itoa(subs[r.IntN(len(subs))].ID), "", nil))
			},
		}
		names := []string{"assign", "assign", "put access", "unassign", "unassign", "ingest", "report"}
		// Which statuses each operation may answer: 409 is a lost race
		// (no seats left, a seat already gone), never an error.
		allowed := map[string][]int{
			"read access": {200}, "assign": {200, 409}, "put access": {200, 409},
			"unassign": {200, 409}, "ingest": {200}, "report": {200},
		}

		// The mix runs for the soak's duration, and on a loaded machine on
		// until it has both given and taken a seat (within a bound), so that
		// what it checks below was exercised.
		deadline := time.Now().Add(soakDuration(t))
		bound := deadline.Add(2 * time.Minute)
		going := func() bool {
			now := time.Now()
			return now.Before(deadline) || now.Before(bound) && !(gaveAndTook[0].Load() && gaveAndTook[1].Load())
		}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
				for going() {
					ops[names[r.IntN(len(names))]](r)
				}
			})
		}
		wg.Wait()

		counts := map[string]map[int]int{}
		bad := 0
		for _, o := range outcomes {
			if counts[o.op] == nil {
				counts[o.op] = map[int]int{}
			}
			counts[o.op][o.call.status]++
			ok := o.call.err == nil
			if ok {
				ok = false
				for _, s := range allowed[o.op] {
					ok = ok || s == o.call.status
				}
			}
			if !ok {
				if bad++; bad <= 10 {
					t.Errorf("%s: %s (err %v)", o.op, o.call, o.call.err)
				}
			}
		}
		t.Logf("%d requests: %v", len(outcomes), counts)
		if counts["unassign"][200] == 0 || counts["assign"][200] == 0 {
			t.Errorf("the mix never took or gave back a seat: %v", counts)
		}

		// Seats used = seats held ≤ seats bought, on every subscription.
		held := map[int64]int{}
		for _, usr := range append(users, sam) {
			for _, e := range admin.access(usr.ID).Subscriptions {
				if e.Assigned {
					held[e.Subscription.ID]++
				}
			}
		}
		held[subs[0].ID]++ // the admin's own seats, taken when the
		held[subs[1].ID]++ // subscriptions were made
		held[subs[2].ID]++
		for _, s := range subs {
			got := admin.subscription(s.ID)
			if got.SeatsUsed != held[s.ID] || got.SeatsUsed > got.Seats || got.SeatsAvailable != got.Seats-got.SeatsUsed {
				t.Errorf("%s: seats %d, used %d, available %d, held by %d users", s.ContractNumber, got.Seats, got.SeatsUsed, got.SeatsAvailable, held[s.ID])
			}
		}

		// One audit entry per change: per subscription, seats taken minus
		// seats given back is what is held now; the second admin's entries
		// are the seats their answers reported.
		entries := auditEntries(t, admin)
		net := map[int64]int{}
		samUnassigns := 0
		for _, e := range entries {
			switch e.Action {
			case "seat.assign":
				net[e.SubscriptionID]++
			case "seat.unassign":
				net[e.SubscriptionID]--
				if e.ActorID == sam.ID {
					samUnassigns++
				}
			}
		}
		for _, s := range subs {
			if net[s.ID] != held[s.ID] {
				t.Errorf("%s: the audit log takes %d seats net, %d are held", s.ContractNumber, net[s.ID], held[s.ID])
			}
		}
		if samUnassigns != unassignSeats {
			t.Errorf("the audit log has %d seat.unassign entries of bulk unassigns, their answers took %d seats", samUnassigns, unassignSeats)
		}
	})
}

// auditEntries reads the whole audit log, page by page.
func auditEntries(t *testing.T, c *client) []usher.AuditEntry {
	t.Helper()
	var all []usher.AuditEntry
	cursor := ""
	for {
		var page struct {
			Items      []usher.AuditEntry `json:"items"`
			NextCursor string             `json:"next_cursor"`
		}
		c.ok(http.StatusOK, "GET", "/api/v1/audit-log?limit=500&cursor="+url.QueryEscape(cursor), nil, &page)
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
}
