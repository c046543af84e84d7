package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usher"
)

// This file implements access.GroupTx and reclaim's ResolveWarnings: the
// statements a reclaim run makes for a group of people at once. On
// PostgreSQL each is one statement over arrays (unnest), as a round trip
// to the server costs more than the row; on SQLite, whose statements are
// calls into the process, each loops over the per-person statement, which
// is cached compiled.

// UsersByIDs returns the account's users among ids.
func (tx *Tx) UsersByIDs(ctx context.Context, accountID int64, ids []int64) (map[int64]usher.User, error) {
	out := make(map[int64]usher.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if tx.engine != Postgres {
		for _, id := range sortedUnique(ids) {
			u, err := tx.UserByID(ctx, accountID, id)
			if usher.ErrorCode(err) == usher.ENOTFOUND {
				continue
			} else if err != nil {
				return nil, err
			}
			out[id] = u
		}
		return out, nil
	}
	rows, err := tx.query(ctx, "SELECT "+userColumns+" FROM users WHERE account_id = ? AND id = ANY(?::bigint[])", accountID, sortedUnique(ids))
	if err != nil {
		return nil, fmt.Errorf("get users: %w", err)
	}
	us, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("get users: %w", err)
	}
	for _, u := range us {
		out[u.ID] = u
	}
	return out, nil
}

// AssignmentsOfUsers returns the users' seats, by user and then
// subscription id, with services and groups in order: three queries.
func (tx *Tx) AssignmentsOfUsers(ctx context.Context, accountID int64, userIDs []int64) (map[int64][]usher.Assignment, error) {
	out := make(map[int64][]usher.Assignment, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	if tx.engine != Postgres {
		for _, id := range sortedUnique(userIDs) {
			as, err := tx.AssignmentsOfUser(ctx, accountID, id)
			if err != nil {
				return nil, err
			}
			if len(as) > 0 {
				out[id] = as
			}
		}
		return out, nil
	}
	users := sortedUnique(userIDs)
	rows, err := tx.query(ctx, `
		SELECT account_id, user_id, subscription_id, assigned_at, direct, last_used_at FROM assignments
		WHERE account_id = ? AND user_id = ANY(?::bigint[])
		ORDER BY user_id, subscription_id`, accountID, users)
	if err != nil {
		return nil, fmt.Errorf("seats of users: %w", err)
	}
	all, err := collect(rows, scanHeldSeat)
	if err != nil {
		return nil, fmt.Errorf("seats of users: %w", err)
	}
	if len(all) == 0 {
		return out, nil
	}
	index := make(map[access.SeatRef]int, len(all))
	for i, a := range all {
		index[access.SeatRef{UserID: a.UserID, SubscriptionID: a.SubscriptionID}] = i
	}
	// Services and groups of those seats, each in order.
	for _, q := range []struct{ what, sql string }{
		{"services", `SELECT user_id, subscription_id, service_code FROM assignment_services
			WHERE account_id = ? AND user_id = ANY(?::bigint[]) ORDER BY user_id, subscription_id, service_code`},
		{"groups", `SELECT user_id, subscription_id, group_id FROM seat_group_sources
			WHERE account_id = ? AND user_id = ANY(?::bigint[]) ORDER BY user_id, subscription_id, group_id`},
	} {
		rows, err := tx.query(ctx, q.sql, accountID, users)
		if err != nil {
			return nil, fmt.Errorf("seats of users: %s: %w", q.what, err)
		}
		for rows.Next() {
			var k access.SeatRef
			var code string
			var group int64
			if q.what == "services" {
				err = rows.Scan(&k.UserID, &k.SubscriptionID, &code)
			} else {
				err = rows.Scan(&k.UserID, &k.SubscriptionID, &group)
			}
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("seats of users: %s: %w", q.what, err)
			}
			if i, ok := index[k]; ok {
				if q.what == "services" {
					all[i].Services = append(all[i].Services, code)
				} else {
					all[i].Groups = append(all[i].Groups, group)
				}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("seats of users: %s: %w", q.what, err)
		}
	}
	for _, a := range all {
		out[a.UserID] = append(out[a.UserID], a)
	}
	return out, nil
}

// BenefitsOfUsers returns the users' benefit codes by user and
// subscription id, in code order.
func (tx *Tx) BenefitsOfUsers(ctx context.Context, accountID int64, userIDs []int64) (map[int64]map[int64][]string, error) {
	out := make(map[int64]map[int64][]string, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	if tx.engine != Postgres {
		for _, id := range sortedUnique(userIDs) {
			b, err := tx.BenefitsOfUser(ctx, accountID, id)
			if err != nil {
				return nil, err
			}
			if len(b) > 0 {
				out[id] = b
			}
		}
		return out, nil
	}
	rows, err := tx.query(ctx, `
		SELECT user_id, subscription_id, code FROM benefit_grants
		WHERE account_id = ? AND user_id = ANY(?::bigint[])
		ORDER BY user_id, subscription_id, code`, accountID, sortedUnique(userIDs))
	if err != nil {
		return nil, fmt.Errorf("benefits of users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var userID, subID int64
		var code string
		if err := rows.Scan(&userID, &subID, &code); err != nil {
			return nil, fmt.Errorf("benefits of users: %w", err)
		}
		if out[userID] == nil {
			out[userID] = map[int64][]string{}
		}
		out[userID][subID] = append(out[userID][subID], code)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("benefits of users: %w", err)
	}
	return out, nil
}

// seatArrays splits seats into a users and a subscriptions array, in
// (subscription, user) order: the one global order of seat rows, so that
// statements that change several take their locks in it.
func seatArrays(seats []access.SeatRef) (users, subs []int64) {
	sorted := slices.Clone(seats)
	slices.SortFunc(sorted, func(a, b access.SeatRef) int {
		if a.SubscriptionID != b.SubscriptionID {
			return compareInt64(a.SubscriptionID, b.SubscriptionID)
		}
		return compareInt64(a.UserID, b.UserID)
	})
	sorted = slices.Compact(sorted)
	users, subs = make([]int64, len(sorted)), make([]int64, len(sorted))
	for i, s := range sorted {
		users[i], subs[i] = s.UserID, s.SubscriptionID
	}
	return users, subs
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GroupGrantedSeats returns those of seats that a group assignment reaches.
func (tx *Tx) GroupGrantedSeats(ctx context.Context, accountID int64, seats []access.SeatRef) ([]access.SeatRef, error) {
	if len(seats) == 0 {
		return nil, nil
	}
	if tx.engine != Postgres {
		var out []access.SeatRef
		for _, k := range seats {
			gs, err := tx.GroupGrantsFor(ctx, accountID, k.UserID, k.SubscriptionID)
			if err != nil {
				return nil, err
			}
			if len(gs) > 0 {
				out = append(out, k)
			}
		}
		return out, nil
	}
	users, subs := seatArrays(seats)
	rows, err := tx.query(ctx, `
		SELECT DISTINCT k.u, k.s FROM unnest(?::bigint[], ?::bigint[]) AS k (u, s)
		JOIN group_assignments ga ON ga.account_id = ? AND ga.subscription_id = k.s
		JOIN group_members m ON m.account_id = ga.account_id AND m.group_id = ga.group_id AND m.user_id = k.u
		WHERE NOT EXISTS (SELECT 1 FROM group_exclusions e
		                  WHERE e.account_id = ga.account_id AND e.group_id = ga.group_id
		                    AND e.subscription_id = ga.subscription_id AND e.user_id = m.user_id)
		ORDER BY k.s, k.u`, users, subs, accountID)
	if err != nil {
		return nil, fmt.Errorf("group grants of seats: %w", err)
	}
	out, err := collect(rows, func(row interface{ Scan(...any) error }) (access.SeatRef, error) {
		var k access.SeatRef
		return k, row.Scan(&k.UserID, &k.SubscriptionID)
	})
	if err != nil {
		return nil, fmt.Errorf("group grants of seats: %w", err)
	}
	return out, nil
}

// DeleteSeats removes the seat records, in the global order of seats.
func (tx *Tx) DeleteSeats(ctx context.Context, accountID int64, seats []access.SeatRef) error {
	if len(seats) == 0 {
		return nil
	}
	if tx.engine != Postgres {
		for _, k := range seats {
			if _, err := tx.DeleteWaiter(ctx, accountID, k.SubscriptionID, k.UserID); err != nil {
				return err
			}
			if err := tx.DeleteAssignment(ctx, accountID, k.UserID, k.SubscriptionID); err != nil {
				return err
			}
		}
		return nil
	}
	users, subs := seatArrays(seats)
	_, err := tx.exec(ctx, `
		DELETE FROM seat_waiters w USING unnest(?::bigint[], ?::bigint[]) AS k (u, s)
		WHERE w.account_id = ? AND w.subscription_id = k.s AND w.user_id = k.u`, users, subs, accountID)
	if err != nil {
		return fmt.Errorf("delete seats: waiters: %w", err)
	}
	// The services and group sources go by cascade, as with DeleteAssignment.
	n, err := affected(tx.exec(ctx, `
		DELETE FROM assignments a USING unnest(?::bigint[], ?::bigint[]) AS k (u, s)
		WHERE a.account_id = ? AND a.subscription_id = k.s AND a.user_id = k.u`, users, subs, accountID))
	if err != nil {
		return fmt.Errorf("delete seats: %w", err)
	}
	if n != int64(len(users)) {
		return usher.Errorf(usher.ENOTFOUND, "%d of the %d seats to delete are not held", int64(len(users))-n, len(users))
	}
	tx.seats.unassigned += n
	return nil
}

// ReleaseSeats gives back n[id] seats of each subscription id, in id order.
func (tx *Tx) ReleaseSeats(ctx context.Context, accountID int64, n map[int64]int) error {
	ids := make([]int64, 0, len(n))
	for id, c := range n {
		if c > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return nil
	}
	if tx.engine != Postgres {
		for _, id := range ids {
			for range n[id] {
				if err := tx.ReleaseSeat(ctx, accountID, id); err != nil {
					return err
				}
			}
		}
		return nil
	}
	counts := make([]int64, len(ids))
	for i, id := range ids {
		counts[i] = int64(n[id])
	}
	got, err := affected(tx.exec(ctx, `
		UPDATE subscriptions s SET seats_used = s.seats_used - k.n
		FROM unnest(?::bigint[], ?::bigint[]) AS k (id, n)
		WHERE s.account_id = ? AND s.id = k.id AND s.seats_used >= k.n`, ids, counts, accountID))
	if err != nil {
		return fmt.Errorf("release seats: %w", err)
	}
	if got != int64(len(ids)) {
		// A bug in the caller, or a subscription gone: every release
		// pairs with a reservation.
		return fmt.Errorf("release seats: %d of %d subscriptions not found or with fewer seats in use", int64(len(ids))-got, len(ids))
	}
	return nil
}

// ClearBenefits removes the users' benefits on those subscriptions.
func (tx *Tx) ClearBenefits(ctx context.Context, accountID int64, seats []access.SeatRef) error {
	if len(seats) == 0 {
		return nil
	}
	if tx.engine != Postgres {
		for _, k := range seats {
			if err := tx.SetBenefits(ctx, accountID, k.UserID, k.SubscriptionID, nil); err != nil {
				return err
			}
		}
		return nil
	}
	users, subs := seatArrays(seats)
	_, err := tx.exec(ctx, `
		DELETE FROM benefit_grants b USING unnest(?::bigint[], ?::bigint[]) AS k (u, s)
		WHERE b.account_id = ? AND b.subscription_id = k.s AND b.user_id = k.u`, users, subs, accountID)
	if err != nil {
		return fmt.Errorf("clear benefits: %w", err)
	}
	return nil
}

// InsertAudits appends the entries to the audit log in order.
func (tx *Tx) InsertAudits(ctx context.Context, es []usher.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	for _, e := range es {
		if !usher.ValidAuditAction(e.Action) {
			return fmt.Errorf("audit %q: not one of usher.AuditActions; add it there", e.Action)
		}
	}
	if tx.engine != Postgres {
		for i := range es {
			if err := tx.InsertAudit(ctx, &es[i]); err != nil {
				return err
			}
		}
		return nil
	}
	n := len(es)
	accounts, actors, subs, targets, at := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	actorEmails, actions, targetEmails, before, after := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, e := range es {
		accounts[i], actors[i], subs[i], targets[i], at[i] = e.AccountID, e.ActorID, e.SubscriptionID, e.TargetUserID, millis(e.At)
		actorEmails[i], actions[i], targetEmails[i], before[i], after[i] = e.ActorEmail, e.Action, e.TargetEmail, string(e.Before), string(e.After)
	}
	// Zero ids and empty texts are stored as NULL, as InsertAudit does.
	_, err := tx.exec(ctx, `
		INSERT INTO audit_log (account_id, actor_id, actor_email, action, target_user_id, target_email,
		                       subscription_id, before, after, at)
		SELECT a, NULLIF(ac, 0), ae, act, NULLIF(tu, 0), NULLIF(te, ''), NULLIF(s, 0), NULLIF(b, ''), NULLIF(af, ''), t
		FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::bigint[])
			WITH ORDINALITY AS v (a, ac, ae, act, tu, te, s, b, af, t, i)
		ORDER BY i`,
		accounts, actors, actorEmails, actions, targets, targetEmails, subs, before, after, at)
	if isForeignKeyViolation(err) {
		return usher.Errorf(usher.ENOTFOUND, "account %d not found", es[0].AccountID)
	} else if err != nil {
		return fmt.Errorf("audit %d entries: %w", n, err)
	}
	for _, e := range es {
		tx.markChanged(e.AccountID)
	}
	return nil
}

// InsertBatches stores the batches with their items and sets their IDs.
// On PostgreSQL the IDs are drawn from the table's sequence first, so that
// each batch's items can name it in the same two statements.
func (tx *Tx) InsertBatches(ctx context.Context, bs []*usher.ReclaimBatch) error {
	if len(bs) == 0 {
		return nil
	}
	if tx.engine != Postgres {
		for _, b := range bs {
			if err := tx.InsertBatch(ctx, b); err != nil {
				return err
			}
		}
		return nil
	}
	rows, err := tx.query(ctx, `SELECT nextval(pg_get_serial_sequence('reclaim_batches', 'id')) FROM generate_series(1, ?::int)`, len(bs))
	if err != nil {
		return fmt.Errorf("insert reclaim batches: %w", err)
	}
	ids, err := collect(rows, func(row interface{ Scan(...any) error }) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("insert reclaim batches: %w", err)
	}
	if len(ids) != len(bs) {
		return fmt.Errorf("insert reclaim batches: got %d ids for %d batches", len(ids), len(bs))
	}
	slices.Sort(ids) // in order, as one InsertBatch after another would number them
	n := len(bs)
	accounts, policies, runs, actors, created := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	sources, actorEmails := make([]string, n), make([]string, n)
	var ibatch, iuser, isub, iassigned, iprice []int64
	var iemail, iservices, ibenefits, icurrency []string
	var iseat []bool
	for i, b := range bs {
		b.ID = ids[i]
		accounts[i], policies[i], runs[i], actors[i], created[i] = b.AccountID, b.PolicyID, b.RunID, b.ActorID, millis(b.CreatedAt)
		sources[i], actorEmails[i] = b.Source, b.ActorEmail
		for _, it := range b.Items {
			services, _ := json.Marshal(orEmptyStrings(it.Services))
			benefits, _ := json.Marshal(orEmptyStrings(it.Benefits))
			ibatch, iuser, isub = append(ibatch, b.ID), append(iuser, it.UserID), append(isub, it.SubscriptionID)
			iemail, iseat = append(iemail, it.Email), append(iseat, it.Seat)
			iservices, ibenefits = append(iservices, string(services)), append(ibenefits, string(benefits))
			iassigned, iprice, icurrency = append(iassigned, millis(it.AssignedAt)), append(iprice, priceCents(it.Price)), append(icurrency, priceCurrency(it.Price))
		}
	}
	_, err = tx.exec(ctx, `
		INSERT INTO reclaim_batches (id, account_id, source, policy_id, run_id, actor_id, actor_email, created_at, undone_at, undone_by)
		SELECT id, a, src, p, r, ac, ae, c, 0, ''
		FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::bigint[])
			AS v (id, a, src, p, r, ac, ae, c)
		ORDER BY id`,
		ids, accounts, sources, policies, runs, actors, actorEmails, created)
	if err != nil {
		return fmt.Errorf("insert reclaim batches: %w", err)
	}
	if len(ibatch) == 0 {
		return nil
	}
	_, err = tx.exec(ctx, `
		INSERT INTO reclaim_batch_items (batch_id, user_id, subscription_id, email, seat, services, benefits, assigned_at, price_cents, currency)
		SELECT b, u, s, e, st, sv, bf, at, pc, cur
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::boolean[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::text[])
			WITH ORDINALITY AS v (b, u, s, e, st, sv, bf, at, pc, cur, i)
		ORDER BY i`,
		ibatch, iuser, isub, iemail, iseat, iservices, ibenefits, iassigned, iprice, icurrency)
	if err != nil {
		return fmt.Errorf("insert reclaim batch items: %w", err)
	}
	return nil
}

// ResolveWarnings closes those of the open warnings ids with the outcome,
// as ResolveWarning does for each, and answers how many were still open.
func (tx *Tx) ResolveWarnings(ctx context.Context, accountID int64, ids []int64, w reclaim.Warning) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if tx.engine != Postgres {
		n := 0
		for _, id := range ids {
			w.ID, w.AccountID = id, accountID
			ok, err := tx.ResolveWarning(ctx, w)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		return n, nil
	}
	n, err := affected(tx.exec(ctx, `
		UPDATE reclaim_warnings SET outcome = ?, resolved_at = ?, resolved_run_id = ?, kept_until = ?
		WHERE account_id = ? AND id = ANY(?::bigint[]) AND outcome = 'open'`,
		w.Outcome, optMillis(w.ResolvedAt), w.ResolvedRunID, optMillis(w.KeptUntil), accountID, sortedUnique(ids)))
	if err != nil {
		return 0, fmt.Errorf("resolve %d reclaim warnings: %w", len(ids), err)
	}
	return int(n), nil
}
