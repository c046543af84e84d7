package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usher"
)

// plans of the synthetic account's five subscriptions, one per product: four
// carry usage data, one (Basic) does not, so the report has all statuses.
var plans = []usher.Plan{usher.PlanPremium, usher.PlanStandard, usher.PlanStandard, usher.PlanPremium, usher.PlanBasic}

// world is the synthetic account as the benchmark knows it.
type world struct {
	account  usher.Account
	token    string // the primary admin's API token
	loc      *time.Location
	products []product // in subscription order
	userIDs  []int64   // by user index
	seats    []seat
}

type product struct {
	id             int64
	code           string
	subscriptionID int64
}

// seat is one assignment: user index and product index.
type seat struct {
	user, product int32
}

func email(i int) string { return fmt.Sprintf("user%06d@bench.usher.test", i) }

var (
	firstNames = []string{"Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kira", "Liam", "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara"}
	lastNames  = []string{"Abbott", "Brandt", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ivanova", "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quist", "Rossi", "Silva", "Tanaka"}
)

// seed creates the account through the access service (the rules for an
// account and its admin), then bulk-loads users, subscriptions' seats and
// assignments with plain SQL: setting up 150,000 seats one request at a time
// would take longer than everything measured afterwards.
func seed(ctx context.Context, db *store.DB, cfg Config, now time.Time, progress func(string, ...any)) (*world, error) {
	clock := func() time.Time { return now }
	svc := access.New(db.Access(), clock)
	acct, admin, token, err := svc.CreateAccount(ctx, access.NewAccount{
		Name: "Bench Co", TimeZone: "Europe/Berlin", AdminEmail: "admin@bench.usher.test", AdminName: "Bench Admin",
	})
	if err != nil {
		return nil, fmt.Errorf("seed account: %w", err)
	}
	loc, err := time.LoadLocation(acct.TimeZone)
	if err != nil {
		return nil, err
	}
	w := &world{account: acct, token: token, loc: loc}
	actor, err := svc.Authenticate(ctx, token)
	if err != nil {
		return nil, err
	}

	// Seats: every user holds one product; the first Seats−Users users a
	// second one, two products further on.
	w.seats = make([]seat, 0, cfg.Seats)
	for i := range cfg.Users {
		w.seats = append(w.seats, seat{int32(i), int32(i % len(plans))})
	}
	for i := 0; len(w.seats) < cfg.Seats; i++ {
		w.seats = append(w.seats, seat{int32(i), int32((i + 2) % len(plans))})
	}
	perProduct := make([]int, len(plans))
	for _, s := range w.seats {
		perProduct[s.product]++
	}

	catalog, err := svc.ListProducts(ctx, actor)
	if err != nil {
		return nil, err
	}
	if len(catalog) < len(plans) {
		return nil, fmt.Errorf("seed: the catalog has %d products, the benchmark needs %d", len(catalog), len(plans))
	}
	no := false
	start, end := usher.DateOf(now.AddDate(-2, 0, 0)), usher.DateOf(now.AddDate(1, 0, 0))
	for i, plan := range plans {
		n := perProduct[i] + perProduct[i]/10 + 1 // a tenth spare, as contracts usually have
		sub, err := svc.CreateSubscription(ctx, actor, access.NewSubscription{
			Product: catalog[i].Code, Plan: plan, Seats: &n, ContractNumber: fmt.Sprintf("BENCH-%d", i+1),
			TermStart: start, TermEnd: end, ContractManagerID: admin.ID, AssignManagerSeat: &no,
		})
		if err != nil {
			return nil, fmt.Errorf("seed subscription: %w", err)
		}
		w.products = append(w.products, product{id: catalog[i].ID, code: catalog[i].Code, subscriptionID: sub.ID})
	}

	progress("seeding %d users", cfg.Users)
	if err := w.insertUsers(ctx, db, cfg.Users, now); err != nil {
		return nil, err
	}
	progress("seeding %d seats", len(w.seats))
	if err := w.insertSeats(ctx, db, now, perProduct); err != nil {
		return nil, err
	}
	return w, nil
}

// chunkRows is how many rows one multi-row INSERT carries: within SQLite's
// 32,766 bound variables for up to eight columns.
const chunkRows = 4000

func (w *world) insertUsers(ctx context.Context, db *store.DB, n int, now time.Time) error {
	ms := now.UnixMilli()
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		for lo := 0; lo < n; lo += chunkRows {
			hi := min(lo+chunkRows, n)
			var q strings.Builder
			q.WriteString("INSERT INTO users (account_id, email, name, name_key, status, created_at, updated_at) VALUES ")
			args := make([]any, 0, 7*(hi-lo))
			for i := lo; i < hi; i++ {
				if i > lo {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, 'active', ?, ?)")
				name := fmt.Sprintf("%s %s %d", firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)], i)
				args = append(args, w.account.ID, email(i), name, strings.ToLower(name), ms, ms)
			}
			if _, err := tx.ExecContext(ctx, db.Rebind(q.String()), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	rows, err := db.SQL().QueryContext(ctx, db.Rebind("SELECT id, email FROM users WHERE account_id = ? AND email LIKE 'user%'"), w.account.ID)
	if err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	defer rows.Close()
	w.userIDs = make([]int64, n)
	for rows.Next() {
		var id int64
		var e string
		if err := rows.Scan(&id, &e); err != nil {
			return err
		}
		var i int
		if _, err := fmt.Sscanf(e, "user%06d@", &i); err != nil || i >= n {
			return fmt.Errorf("seed users: unexpected email %q", e)
		}
		w.userIDs[i] = id
	}
	return rows.Err()
}

// insertSeats assigns every seat, assigned at some time in the two years
// before now, and counts the seats used of each subscription.
func (w *world) insertSeats(ctx context.Context, db *store.DB, now time.Time, perProduct []int) error {
	rnd := rand.New(rand.NewPCG(2, 3))
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		for lo := 0; lo < len(w.seats); lo += chunkRows {
			hi := min(lo+chunkRows, len(w.seats))
			var q strings.Builder
			q.WriteString("INSERT INTO assignments (account_id, user_id, subscription_id, assigned_at) VALUES ")
			args := make([]any, 0, 4*(hi-lo))
			for i, s := range w.seats[lo:hi] {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?)")
				at := now.Add(-time.Duration(rnd.Int64N(int64(2 * 365 * 24 * time.Hour))))
				args = append(args, w.account.ID, w.userIDs[s.user], w.products[s.product].subscriptionID, at.UnixMilli())
			}
			if _, err := tx.ExecContext(ctx, db.Rebind(q.String()), args...); err != nil {
				return err
			}
		}
		for i, p := range w.products {
			if _, err := tx.ExecContext(ctx, db.Rebind("UPDATE subscriptions SET seats_used = ? WHERE id = ?"), perProduct[i], p.subscriptionID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed seats: %w", err)
	}
	return analyze(ctx, db)
}

// analyze refreshes the planner's statistics after a bulk load, as an
// operator would after importing data.
func analyze(ctx context.Context, db *store.DB) error {
	return db.Analyze(ctx)
}

func inTx(ctx context.Context, db *store.DB, fn func(*sql.Tx) error) error {
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
