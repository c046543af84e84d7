package notify_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usher"
)

// memStore is an in-memory notify.Store for unit tests of the service's
// logic. It follows the documented Tx semantics, serialises every
// transaction and rolls a failed Write back. The real stores are checked
// against the same semantics in the store package's conformance suite.
type memStore struct {
	mu       sync.Mutex
	accounts map[int64]usher.Account
	users    map[int64]usher.User
	roles    map[int64][]usher.RoleGrant
	settings map[[2]int64]notify.Setting
	runs     []notify.Run // index = ID - 1
	audit    []usher.AuditEntry
}

func newMemStore() *memStore {
	return &memStore{
		accounts: map[int64]usher.Account{}, users: map[int64]usher.User{},
		roles: map[int64][]usher.RoleGrant{}, settings: map[[2]int64]notify.Setting{},
	}
}

func (m *memStore) Read(ctx context.Context, fn func(notify.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(memTx{m})
}

func (m *memStore) Write(ctx context.Context, fn func(notify.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	settings := make(map[[2]int64]notify.Setting, len(m.settings))
	for k, v := range m.settings {
		settings[k] = v
	}
	runs, audit := slices.Clone(m.runs), slices.Clone(m.audit)
	err := fn(memTx{m})
	if err != nil {
		m.settings, m.runs, m.audit = settings, runs, audit
	}
	return err
}

// auditActions lists the actions audited so far, oldest first.
func (m *memStore) auditActions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.audit {
		out = append(out, e.Action)
	}
	return out
}

func (m *memStore) allRuns() []notify.Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.runs)
}

type memTx struct{ m *memStore }

func notFound(what string) error { return usher.Errorf(usher.ENOTFOUND, "%s not found", what) }

func (tx memTx) AccountByID(ctx context.Context, id int64) (usher.Account, error) {
	a, ok := tx.m.accounts[id]
	if !ok {
		return usher.Account{}, notFound("account")
	}
	return a, nil
}

func (tx memTx) UserByID(ctx context.Context, accountID, id int64) (usher.User, error) {
	u, ok := tx.m.users[id]
	if !ok || u.AccountID != accountID {
		return usher.User{}, notFound("user")
	}
	return u, nil
}

func (tx memTx) RolesOf(ctx context.Context, accountID, userID int64) ([]usher.RoleGrant, error) {
	if u, ok := tx.m.users[userID]; !ok || u.AccountID != accountID {
		return nil, nil
	}
	return slices.Clone(tx.m.roles[userID]), nil
}

func (tx memTx) InsertAudit(ctx context.Context, e *usher.AuditEntry) error {
	e.ID = int64(len(tx.m.audit) + 1)
	tx.m.audit = append(tx.m.audit, *e)
	return nil
}

func (tx memTx) SettingOf(ctx context.Context, accountID, userID int64) (notify.Setting, error) {
	s, ok := tx.m.settings[[2]int64{accountID, userID}]
	if !ok {
		return notify.Setting{}, notFound("setting")
	}
	return s, nil
}

func (tx memTx) PutSetting(ctx context.Context, s notify.Setting) error {
	tx.m.settings[[2]int64{s.AccountID, s.UserID}] = s
	return nil
}

func (tx memTx) DueSettings(ctx context.Context, now time.Time, limit int) ([]notify.Setting, error) {
	var out []notify.Setting
	for _, s := range tx.m.settings {
		if s.Enabled && !s.NextAt.After(now) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b notify.Setting) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		if a.AccountID != b.AccountID {
			return int(a.AccountID - b.AccountID)
		}
		return int(a.UserID - b.UserID)
	})
	return out[:min(limit, len(out))], nil
}

func (tx memTx) AdvanceSetting(ctx context.Context, s notify.Setting, from time.Time) (bool, error) {
	k := [2]int64{s.AccountID, s.UserID}
	cur, ok := tx.m.settings[k]
	if !ok || !cur.Enabled || !cur.NextAt.Equal(from) {
		return false, nil
	}
	cur.NextAt, cur.LastRunFor, cur.UpdatedAt = s.NextAt, s.LastRunFor, s.UpdatedAt
	tx.m.settings[k] = cur
	return true, nil
}

func (tx memTx) InsertRun(ctx context.Context, r *notify.Run) (bool, error) {
	for _, x := range tx.m.runs {
		if x.AccountID == r.AccountID && x.UserID == r.UserID && x.ScheduledFor.Equal(r.ScheduledFor) {
			return false, nil
		}
	}
	r.ID = int64(len(tx.m.runs) + 1)
	tx.m.runs = append(tx.m.runs, *r)
	return true, nil
}

func (tx memTx) ClaimRuns(ctx context.Context, now time.Time, owner string, until time.Time, limit int) ([]notify.Run, error) {
	var claim []int
	for i, r := range tx.m.runs {
		if (r.Status == notify.StatusPending || r.Status == notify.StatusSending) &&
			!r.NextAttemptAt.After(now) && r.LeaseUntil.Before(now) {
			claim = append(claim, i)
		}
	}
	slices.SortFunc(claim, func(a, b int) int {
		if c := tx.m.runs[a].NextAttemptAt.Compare(tx.m.runs[b].NextAttemptAt); c != 0 {
			return c
		}
		return a - b
	})
	var out []notify.Run
	for _, i := range claim[:min(limit, len(claim))] {
		r := &tx.m.runs[i]
		r.Status, r.LeaseOwner, r.LeaseUntil, r.Attempts, r.UpdatedAt = notify.StatusSending, owner, until, r.Attempts+1, now
		out = append(out, *r)
	}
	return out, nil
}

func (tx memTx) FinishRun(ctx context.Context, r notify.Run, owner string) error {
	if r.ID < 1 || int(r.ID) > len(tx.m.runs) {
		return notFound("run")
	}
	cur := &tx.m.runs[r.ID-1]
	if cur.AccountID != r.AccountID {
		return notFound("run")
	}
	if cur.Status != notify.StatusSending || cur.LeaseOwner != owner {
		return usher.Errorf(usher.ECONFLICT, "run %d is not leased to %s", r.ID, owner)
	}
	cur.Status, cur.Attempts, cur.NextAttemptAt = r.Status, r.Attempts, r.NextAttemptAt
	cur.InactiveUsers, cur.InactiveSeats, cur.LastError = r.InactiveUsers, r.InactiveSeats, r.LastError
	cur.LeaseOwner, cur.LeaseUntil, cur.DeliveredAt, cur.UpdatedAt = r.LeaseOwner, r.LeaseUntil, r.DeliveredAt, r.UpdatedAt
	return nil
}

func (tx memTx) RunsOf(ctx context.Context, accountID, userID, beforeID int64, limit int) ([]notify.Run, error) {
	var out []notify.Run
	for i := len(tx.m.runs) - 1; i >= 0 && len(out) < limit; i-- {
		r := tx.m.runs[i]
		if r.AccountID == accountID && r.UserID == userID && (beforeID <= 0 || r.ID < beforeID) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) memSetting(accountID, userID int64) (notify.Setting, error) {
	var s notify.Setting
	err := m.Read(context.Background(), func(tx notify.Tx) (err error) {
		s, err = tx.SettingOf(context.Background(), accountID, userID)
		return err
	})
	return s, err
}
