package reclaim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// planBatch is how many due policies one planning transaction handles.
const planBatch = 100

// PlanDue creates today's run of every enabled policy whose run time has
// come, and moves the policy to its next day. Several schedulers may plan at
// once: each (policy, day) gets one run. A server that was down makes one
// run for the day it wakes up on, not one per missed day.
func (s *Service) PlanDue(ctx context.Context) (int, error) {
	now := s.now()
	total := 0
	for {
		var seen, advanced, created int
		err := s.store.Write(ctx, func(tx Tx) error {
			seen, advanced, created = 0, 0, 0
			due, err := tx.DuePolicies(ctx, now, planBatch)
			if err != nil {
				return err
			}
			seen = len(due)
			for _, p := range due {
				acct, err := tx.AccountByID(ctx, p.AccountID)
				if err != nil {
					return err
				}
				loc := acct.Location()
				next := p
				next.NextRunAt = nextRunAt(p, loc, now)
				ok, err := tx.AdvancePolicy(ctx, next, p.NextRunAt)
				if err != nil || !ok {
					if err != nil {
						return err
					}
					continue
				}
				advanced++
				r := Run{AccountID: p.AccountID, PolicyID: p.ID, RunOn: usage.DayOf(now, loc).String(), Status: RunPending,
					NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
				made, err := tx.InsertReclaimRun(ctx, &r)
				if err != nil {
					return err
				}
				if made {
					created++
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("plan due reclaim runs: %w", err)
		}
		total += created
		if seen < planBatch || advanced == 0 {
			return total, nil
		}
	}
}

// SendDue carries out due runs and sends due emails, at most max of each,
// for owner (a name unique to this process); the emails go Config.Workers
// at a time. It answers how many runs it finished and emails it attempted. Without a mailer it does nothing: a
// policy must not reclaim from people it could not warn.
func (s *Service) SendDue(ctx context.Context, owner string, max int) (int, error) {
	if s.mailer == nil || max <= 0 {
		return 0, nil
	}
	done := 0
	var errs []error
	for range max {
		if ctx.Err() != nil {
			break
		}
		ok, err := s.runOne(ctx, owner)
		if err != nil {
			errs = append(errs, err)
		}
		if !ok {
			break
		}
		done++
	}
	sent, err := s.sendEmails(ctx, owner, max)
	if err != nil {
		errs = append(errs, err)
	}
	return done + sent, errors.Join(errs...)
}

// RunNow plans and carries out every due run and sends every due email
// once, for `usher reclaim run-due` and tests.
func (s *Service) RunNow(ctx context.Context, owner string) (int, error) {
	if _, err := s.PlanDue(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := s.SendDue(ctx, owner, 100)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

func (s *Service) lease(owner string) string { return fmt.Sprintf("%s#r%d", owner, s.claims.Add(1)) }

// runOne claims one due run and carries it out; it reports whether it claimed one.
func (s *Service) runOne(ctx context.Context, owner string) (bool, error) {
	now, lease := s.now(), s.lease(owner)
	var r Run
	var ok bool
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		r, ok, err = tx.ClaimReclaimRun(ctx, now, lease, now.Add(s.cfg.Lease))
		return err
	})
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("claim reclaim run: %w", err)
		}
		return false, err
	}
	log := s.log.With(slog.Int64("run_id", r.ID), slog.Int64("policy_id", r.PolicyID), slog.String("run_on", r.RunOn), slog.Int("attempt", r.Attempts))
	// The counts are this attempt's: FinishReclaimRun adds them to those
	// of earlier attempts, which committed what they did.
	r.Warned, r.Reclaimed, r.Kept = 0, 0, 0
	cause := s.execute(ctx, &r)
	return true, s.finishRun(ctx, log, r, lease, cause)
}

func (s *Service) finishRun(ctx context.Context, log *slog.Logger, r Run, lease string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := s.now()
	r.LeaseOwner, r.LeaseUntil, r.UpdatedAt = "", time.Time{}, now
	switch {
	case cause == nil:
		r.Status, r.LastError = RunDone, ""
		log.InfoContext(ctx, "reclaim run done", slog.Int("warned", r.Warned), slog.Int("reclaimed", r.Reclaimed), slog.Int("kept", r.Kept))
	case r.Attempts >= s.cfg.MaxAttempts:
		r.Status, r.LastError = RunFailed, cause.Error()
		log.ErrorContext(ctx, "reclaim run failed for good", slog.String("error", r.LastError))
	default:
		r.Status, r.LastError, r.NextAttemptAt = RunPending, cause.Error(), now.Add(notify.Backoff(r.Attempts))
		log.WarnContext(ctx, "reclaim run failed; will retry", slog.String("error", r.LastError))
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := tx.FinishReclaimRun(ctx, r, lease); err != nil {
			return err
		}
		// The evidence goes with the outcome; the first attempt recorded
		// keeps its plan (InsertSnapshot).
		if r.Evidence != nil {
			return tx.InsertSnapshot(ctx, r.Evidence)
		}
		return nil
	})
	if usher.ErrorCode(err) == usher.ECONFLICT {
		log.WarnContext(ctx, "reclaim run lease lost before the outcome was recorded")
		return nil
	}
	if err == nil && r.Status == RunDone {
		s.stats.SeatsReclaimed.Add(int64(r.Reclaimed))
	}
	return err
}

// groupSize is how many people one transaction of a run carries out: one
// commit for many people instead of one each. Should one person's part
// fail, the group goes again with each person in a savepoint of their own,
// so that only that part is rolled back; the group stays under 64 people,
// PostgreSQL's cache of subtransactions per transaction, past which every
// other session's snapshots get slower.
const groupSize = 50

// counts is what carrying out one person added to a run.
type counts struct{ warned, reclaimed, kept int }

func (c *counts) add(o counts) {
	c.warned, c.reclaimed, c.kept = c.warned+o.warned, c.reclaimed+o.reclaimed, c.kept+o.kept
}

// execute carries out a run: the policy's plan, groupSize people to a
// transaction that locks their seats, plans them again and does what that
// says, then one digest per admin. A person whose part fails is rolled back
// alone; the others' parts commit, and the run fails this attempt (without
// its digest) to be tried again. Every step is idempotent, so a run taken
// over from a worker that died, or tried again, picks up where it stopped:
// warned seats have open warnings, reclaimed seats are gone, and emails are
// unique per run, kind and person.
func (s *Service) execute(ctx context.Context, r *Run) error {
	var p Policy
	var acct usher.Account
	var pl Plan
	gone := false
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		if p, err = tx.PolicyByID(ctx, r.AccountID, r.PolicyID); usher.ErrorCode(err) == usher.ENOTFOUND {
			gone = true
			return nil
		} else if err != nil {
			return err
		}
		if acct, err = tx.AccountByID(ctx, r.AccountID); err != nil {
			return err
		}
		pl, err = s.plan(ctx, tx, p, acct, s.now(), nil)
		return err
	})
	if err != nil || gone || !p.Enabled {
		return err
	}
	r.Evidence = evidenceOf(pl, r, p)
	if p.Mode == ReportOnly {
		return nil
	}
	var order []int64
	seen := map[int64]bool{}
	reclaims := map[int64][]int64{} // the plan's seats to reclaim, by person
	for _, it := range pl.Items {
		if !seen[it.UserID] {
			seen[it.UserID] = true
			order = append(order, it.UserID)
		}
		if it.Action == ActReclaim {
			reclaims[it.UserID] = append(reclaims[it.UserID], it.SubscriptionID)
		}
	}
	var failed []error
	for lo := 0; lo < len(order); lo += groupSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		group := order[lo:min(lo+groupSize, len(order))]
		var got counts
		var lost []error
		// First set-based, as people rarely fail: should anything fail,
		// the transaction rolls back whole and the group goes again, each
		// person in a savepoint of their own.
		for careful := false; ; careful = true {
			err := s.store.Write(ctx, func(tx Tx) error {
				got, lost = counts{}, nil // afresh if the store runs this again
				return s.carryOutGroup(ctx, tx, p, acct, *r, group, reclaims, careful, &got, &lost)
			})
			var ge *groupError
			if !careful && errors.As(err, &ge) && ctx.Err() == nil {
				s.log.WarnContext(ctx, "reclaim group failed; going again person by person", slog.Int64("run_id", r.ID), slog.String("error", err.Error()))
				continue
			}
			if err != nil {
				return err
			}
			break
		}
		r.Warned, r.Reclaimed, r.Kept = r.Warned+got.warned, r.Reclaimed+got.reclaimed, r.Kept+got.kept
		failed = append(failed, lost...)
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	return s.digest(ctx, p, acct, r)
}

// groupError is a failure of a group carried out set-based, without
// savepoints: the transaction must roll back, and the group go again
// person by person.
type groupError struct{ err error }

func (e *groupError) Error() string { return fmt.Sprintf("group: %v", e.err) }
func (e *groupError) Unwrap() error { return e.err }

// carryOutGroup carries out a group of people in tx, adding to got what it
// did. careful puts each person in a savepoint: one whose part fails is
// rolled back alone and added to lost. Otherwise the group is carried out
// with set-based statements (carryOutSet), whose failure is a *groupError,
// and the whole transaction must roll back.
func (s *Service) carryOutGroup(ctx context.Context, tx Tx, p Policy, acct usher.Account, r Run, group []int64, reclaims map[int64][]int64,
	careful bool, got *counts, lost *[]error) error {
	// The group's seats are locked first, in the one global order (as
	// Unassign takes them), rather than person by person.
	var subs, users []int64
	for _, uid := range group {
		if ids := reclaims[uid]; len(ids) > 0 {
			subs, users = append(subs, ids...), append(users, uid)
		}
	}
	if err := tx.LockSeats(ctx, acct.ID, subs, users); err != nil {
		return err
	}
	// The group's people are planned again, as the seats are now that
	// they are locked: a seat used since stays.
	gp, err := s.plan(ctx, tx, p, acct, s.now(), group)
	if err != nil {
		return err
	}
	items := map[int64][]Item{}
	for _, it := range gp.Items {
		items[it.UserID] = append(items[it.UserID], it)
	}
	if !careful {
		if err := s.carryOutSet(ctx, tx, p, acct, r, group, items, gp.At, got); err != nil {
			return &groupError{err}
		}
		return nil
	}
	for _, uid := range group {
		if len(items[uid]) == 0 {
			continue
		}
		var c counts
		bad, err := tx.Savepoint(ctx, func() error {
			c = counts{}
			return s.carryOut(ctx, tx, p, acct, r, uid, items[uid], gp.At, &c)
		})
		if err != nil {
			return fmt.Errorf("user %d: %w", uid, err)
		}
		if bad != nil {
			*lost = append(*lost, fmt.Errorf("user %d: %w", uid, bad))
			continue
		}
		got.add(c)
	}
	return nil
}

// carryOut does what the plan made at now in tx says for one person: warn,
// reclaim (all of their seats or none), or close warnings. It adds what it
// did to c.
func (s *Service) carryOut(ctx context.Context, tx Tx, p Policy, acct usher.Account, r Run, userID int64, plan []Item, now time.Time, c *counts) error {
	u, err := tx.UserByID(ctx, acct.ID, userID)
	if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
		return err
	}
	sys := usher.System(acct.ID)
	sys.Email = "reclaim policy " + p.Name
	var warned, reclaimed []MessageSeat
	var reclaimSubs []int64
	var reclaimWarnings []int64
	for _, it := range plan {
		switch it.Action {
		case ActWarn:
			seat, e, made, err := s.warn(ctx, tx, p, r, sys, u, it, now)
			if err != nil {
				return err
			}
			if !made {
				continue
			}
			c.warned++
			warned = append(warned, seat)
			if err := tx.InsertAudit(ctx, &e); err != nil {
				return err
			}
		case ActReclaim:
			reclaimSubs = append(reclaimSubs, it.SubscriptionID)
			if it.WarningID != 0 {
				reclaimWarnings = append(reclaimWarnings, it.WarningID)
			}
			reclaimed = append(reclaimed, seatOf(it, ""))
		case ActKeep:
			ok, err := tx.ResolveWarning(ctx, Warning{ID: it.WarningID, AccountID: acct.ID, Outcome: OutcomeUsed, ResolvedAt: now, ResolvedRunID: r.ID})
			if err != nil {
				return err
			}
			if ok {
				c.kept++
			}
		}
	}
	if len(reclaimSubs) > 0 {
		batch := usher.ReclaimBatch{AccountID: acct.ID, Source: usher.BatchPolicy, PolicyID: p.ID, RunID: r.ID, ActorEmail: sys.Email, CreatedAt: now}
		if err := s.access.ReclaimSeats(ctx, tx, sys, userID, reclaimSubs, &batch); err != nil {
			return err
		}
		if err := tx.InsertBatch(ctx, &batch); err != nil {
			return err
		}
		for _, id := range reclaimWarnings {
			if _, err := tx.ResolveWarning(ctx, Warning{ID: id, AccountID: acct.ID, Outcome: OutcomeReclaimed, ResolvedAt: now, ResolvedRunID: r.ID}); err != nil {
				return err
			}
		}
		c.reclaimed += len(reclaimSubs)
		e := usher.AuditEntry{AccountID: acct.ID, ActorEmail: sys.Email, Action: "reclaim.reclaim", TargetUserID: u.ID, TargetEmail: u.Email, At: now}
		if err := e.SetChange(nil, map[string]any{"policy_id": p.ID, "policy": p.Name, "run_id": r.ID, "batch_id": batch.ID,
			"subscription_ids": reclaimSubs, "saved": usher.SavedOf(batch.Items)}); err != nil {
			return err
		}
		if err := tx.InsertAudit(ctx, &e); err != nil {
			return err
		}
	}
	for kind, seats := range map[EmailKind][]MessageSeat{EmailWarning: warned, EmailNotice: reclaimed} {
		if len(seats) == 0 || u.ID == 0 {
			continue
		}
		m := Message{Kind: kind, From: s.cfg.From, To: u, Account: acct, Date: now, Policy: p.Name, Range: p.Range, Seats: seats}
		if _, err := s.enqueue(ctx, tx, &r, kind, u.ID, m); err != nil {
			return err
		}
	}
	return nil
}

// carryOutSet is carryOut for every person of a group at once, with the
// same outcome: warnings one by one (each has its own link), and for
// everyone together the reads, the reclaims (access.ReclaimGroup), the
// batches, the resolved warnings and the audit entries, each in a few
// statements. The emails are stored person by person, warning first.
// Any failure fails the group, whose transaction must then roll back.
func (s *Service) carryOutSet(ctx context.Context, tx Tx, p Policy, acct usher.Account, r Run, group []int64, items map[int64][]Item, now time.Time, got *counts) error {
	var ids []int64
	for _, uid := range group {
		if len(items[uid]) > 0 {
			ids = append(ids, uid)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	users, err := tx.UsersByIDs(ctx, acct.ID, ids)
	if err != nil {
		return err
	}
	sys := usher.System(acct.ID)
	sys.Email = "reclaim policy " + p.Name
	type person struct {
		u                 usher.User // zero when gone, as in carryOut
		warned, reclaimed []MessageSeat
		subs              []int64
		batch             *usher.ReclaimBatch
	}
	var audits []usher.AuditEntry
	var people []access.PersonSeats
	var used, reclaimedWarnings []int64
	each := make([]person, len(ids))
	for i, uid := range ids {
		pp := &each[i]
		pp.u = users[uid]
		for _, it := range items[uid] {
			switch it.Action {
			case ActWarn:
				seat, e, made, err := s.warn(ctx, tx, p, r, sys, pp.u, it, now)
				if err != nil {
					return fmt.Errorf("user %d: %w", uid, err)
				}
				if !made {
					continue
				}
				got.warned++
				pp.warned = append(pp.warned, seat)
				audits = append(audits, e)
			case ActReclaim:
				pp.subs = append(pp.subs, it.SubscriptionID)
				if it.WarningID != 0 {
					reclaimedWarnings = append(reclaimedWarnings, it.WarningID)
				}
				pp.reclaimed = append(pp.reclaimed, seatOf(it, ""))
			case ActKeep:
				used = append(used, it.WarningID)
			}
		}
		if len(pp.subs) > 0 {
			pp.batch = &usher.ReclaimBatch{AccountID: acct.ID, Source: usher.BatchPolicy, PolicyID: p.ID, RunID: r.ID, ActorEmail: sys.Email, CreatedAt: now}
			people = append(people, access.PersonSeats{UserID: uid, SubscriptionIDs: pp.subs, Batch: pp.batch})
		}
	}
	kept, err := tx.ResolveWarnings(ctx, acct.ID, used, Warning{Outcome: OutcomeUsed, ResolvedAt: now, ResolvedRunID: r.ID})
	if err != nil {
		return err
	}
	got.kept += kept
	if len(people) > 0 {
		if err := s.access.ReclaimGroup(ctx, tx, sys, people); err != nil {
			return err
		}
		batches := make([]*usher.ReclaimBatch, len(people))
		for i, x := range people {
			batches[i] = x.Batch
		}
		if err := tx.InsertBatches(ctx, batches); err != nil {
			return err
		}
		if _, err := tx.ResolveWarnings(ctx, acct.ID, reclaimedWarnings, Warning{Outcome: OutcomeReclaimed, ResolvedAt: now, ResolvedRunID: r.ID}); err != nil {
			return err
		}
		for _, pp := range each {
			if pp.batch == nil {
				continue
			}
			got.reclaimed += len(pp.subs)
			e := usher.AuditEntry{AccountID: acct.ID, ActorEmail: sys.Email, Action: "reclaim.reclaim", TargetUserID: pp.u.ID, TargetEmail: pp.u.Email, At: now}
			if err := e.SetChange(nil, map[string]any{"policy_id": p.ID, "policy": p.Name, "run_id": r.ID, "batch_id": pp.batch.ID,
				"subscription_ids": pp.subs, "saved": usher.SavedOf(pp.batch.Items)}); err != nil {
				return err
			}
			audits = append(audits, e)
		}
	}
	if err := tx.InsertAudits(ctx, audits); err != nil {
		return err
	}
	for _, pp := range each {
		if pp.u.ID == 0 {
			continue
		}
		for _, m := range []struct {
			kind  EmailKind
			seats []MessageSeat
		}{{EmailWarning, pp.warned}, {EmailNotice, pp.reclaimed}} {
			if len(m.seats) == 0 {
				continue
			}
			msg := Message{Kind: m.kind, From: s.cfg.From, To: pp.u, Account: acct, Date: now, Policy: p.Name, Range: p.Range, Seats: m.seats}
			if _, err := s.enqueue(ctx, tx, &r, m.kind, pp.u.ID, msg); err != nil {
				return fmt.Errorf("user %d: %w", pp.u.ID, err)
			}
		}
	}
	return nil
}

// warn stores the warning of item it for user u, unless the run has one
// already (made false), and returns the seat for the warning email, with
// its own Keep my seat link, and the audit entry to store with it.
func (s *Service) warn(ctx context.Context, tx Tx, p Policy, r Run, sys usher.Actor, u usher.User, it Item, now time.Time) (MessageSeat, usher.AuditEntry, bool, error) {
	token, hash := newToken()
	w := Warning{AccountID: r.AccountID, PolicyID: p.ID, RunID: r.ID, UserID: it.UserID, SubscriptionID: it.SubscriptionID,
		Inactivity: it.Inactivity, LastUsedAt: it.LastUsedAt, WarnedAt: now, ReclaimAt: it.ReclaimAt.UTC(), TokenHash: hash, Outcome: OutcomeOpen}
	made, err := tx.InsertWarning(ctx, &w)
	if err != nil || !made {
		return MessageSeat{}, usher.AuditEntry{}, false, err
	}
	e := usher.AuditEntry{AccountID: r.AccountID, ActorEmail: sys.Email, Action: "reclaim.warn", TargetUserID: u.ID, TargetEmail: u.Email,
		SubscriptionID: it.SubscriptionID, At: now}
	if err := e.SetChange(nil, map[string]any{"policy_id": p.ID, "policy": p.Name, "warning_id": w.ID, "reclaim_at": w.ReclaimAt, "inactivity": it.Inactivity}); err != nil {
		return MessageSeat{}, usher.AuditEntry{}, false, err
	}
	return seatOf(it, s.cfg.BaseURL+KeepPath+token), e, true, nil
}

func seatOf(it Item, keepURL string) MessageSeat {
	ms := MessageSeat{Email: it.Email, Name: it.Name, ProductName: it.ProductName, ContractNumber: it.ContractNumber, ReclaimAt: it.ReclaimAt, KeepURL: keepURL, Reason: it.Reason}
	if !it.LastUsedAt.IsZero() {
		t := it.LastUsedAt
		ms.LastUsed = &t
	}
	return ms
}

// enqueue stores one email of a run unless it exists.
func (s *Service) enqueue(ctx context.Context, tx Tx, r *Run, kind EmailKind, userID int64, m Message) (bool, error) {
	now := s.now()
	m.MessageID = fmt.Sprintf("<reclaim-%d-%s-%d-%d@%s>", r.AccountID, kind, r.ID, userID, s.host)
	e := Email{AccountID: r.AccountID, RunID: r.ID, Kind: kind, UserID: userID, MessageID: m.MessageID, Payload: m,
		Status: "pending", NextAttemptAt: now, CreatedAt: now}
	return tx.InsertEmail(ctx, &e)
}

// digest tells the admins who manage the subscriptions concerned what the
// run did: primary admins, and the contract managers of those subscriptions.
func (s *Service) digest(ctx context.Context, p Policy, acct usher.Account, r *Run) error {
	return s.store.Write(ctx, func(tx Tx) error {
		// Seats kept from the link whose reclaim date has come are this
		// run's to report.
		if err := tx.ReportKept(ctx, p.AccountID, p.ID, r.ID, s.now()); err != nil {
			return err
		}
		created, resolved, err := tx.RunWarnings(ctx, r.ID)
		if err != nil {
			return err
		}
		batches, err := tx.RunBatches(ctx, r.ID)
		if err != nil {
			return err
		}
		if len(created) == 0 && len(resolved) == 0 && len(batches) == 0 {
			return nil
		}
		loc := acct.Location()
		subs := map[int64]usher.Subscription{}
		sub := func(id int64) usher.Subscription {
			if x, ok := subs[id]; ok {
				return x
			}
			x, _ := tx.SubscriptionByID(ctx, acct.ID, id)
			subs[id] = x
			return x
		}
		users := map[int64]usher.User{}
		user := func(id int64) usher.User {
			if x, ok := users[id]; ok {
				return x
			}
			x, _ := tx.UserByID(ctx, acct.ID, id)
			users[id] = x
			return x
		}
		m := Message{Kind: EmailDigest, From: s.cfg.From, Account: acct, Date: s.now(), Policy: p.Name, Range: p.Range,
			HistoryURL: s.cfg.BaseURL + HistoryPath}
		concerned := map[int64]bool{}
		for _, w := range created {
			x, u := sub(w.SubscriptionID), user(w.UserID)
			concerned[x.ID] = true
			m.Warned = append(m.Warned, MessageSeat{Email: u.Email, Name: u.Name, ProductName: x.Product.Name, ContractNumber: x.ContractNumber, ReclaimAt: w.ReclaimAt.In(loc)})
		}
		for _, w := range resolved {
			if w.Outcome != OutcomeUsed && w.Outcome != OutcomeKept {
				continue
			}
			x, u := sub(w.SubscriptionID), user(w.UserID)
			concerned[x.ID] = true
			why := "used the product after the warning"
			if w.Outcome == OutcomeKept {
				why = "kept with the link in the warning"
			}
			m.Kept = append(m.Kept, MessageSeat{Email: u.Email, Name: u.Name, ProductName: x.Product.Name, ContractNumber: x.ContractNumber, Reason: why})
		}
		var items []usher.BatchItem
		for _, b := range batches {
			for _, it := range b.Items {
				x := sub(it.SubscriptionID)
				concerned[x.ID] = true
				items = append(items, it)
				m.Reclaimed = append(m.Reclaimed, MessageSeat{Email: it.Email, Name: user(it.UserID).Name, ProductName: x.Product.Name, ContractNumber: x.ContractNumber})
			}
		}
		m.Saved = usher.SavedOf(items)
		recipients := map[int64]bool{}
		admins, err := tx.UsersWithRole(ctx, acct.ID, usher.RolePrimaryAdmin)
		if err != nil {
			return err
		}
		managers, err := tx.UsersWithRole(ctx, acct.ID, usher.RoleContractManager)
		if err != nil {
			return err
		}
		for _, g := range admins {
			recipients[g.UserID] = true
		}
		for _, g := range managers {
			if concerned[g.SubscriptionID] {
				recipients[g.UserID] = true
			}
		}
		ids := make([]int64, 0, len(recipients))
		for id := range recipients {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			u := user(id)
			if u.ID == 0 || u.Status != usher.UserActive {
				continue
			}
			dm := m
			dm.To = u
			if _, err := s.enqueue(ctx, tx, r, EmailDigest, id, dm); err != nil {
				return err
			}
		}
		return nil
	})
}

// sendEmails claims at most max due emails for owner and sends them,
// Workers at a time, each on its own connection. One loop does the
// database's part while the workers send: each of its transactions records
// the outcomes of the emails sent since the last one and claims as many
// new ones, so a commit serves several emails and the next emails are
// claimed while others are on the wire. At most claimAhead emails per
// worker wait for one, so a lease covers little more than its send. It
// answers how many emails it claimed.
func (s *Service) sendEmails(ctx context.Context, owner string, max int) (int, error) {
	workers := min(s.cfg.Workers, max)
	// Up to claimAhead emails per worker wait, claimed, so that the
	// workers never wait for a commit.
	limit := workers * (1 + claimAhead)
	queue := make(chan claim, limit)
	outcomes := make(chan *attempt, limit)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range queue {
				outcomes <- s.sendEmail(ctx, c.e, c.lease)
			}
		})
	}
	var errs []error
	claimed, outstanding, left := 0, 0, max
	more := true            // emails may still be due
	var pos notify.Position // past the last email claimed
	var done []*attempt
loop:
	for {
		// Outcomes that came in meanwhile are recorded with the next claim.
	drain:
		for {
			select {
			case a := <-outcomes:
				done = append(done, a)
			default:
				break drain
			}
		}
		busy := outstanding - len(done) // claimed, not sent yet
		want := 0
		if more && ctx.Err() == nil {
			want = min(limit-busy, left)
		}
		switch {
		case want <= 0 && len(done) == 0:
			if outstanding == 0 {
				break loop
			}
			done = append(done, <-outcomes) // wait for a worker
			continue
		case len(done) < workers && busy >= 2*workers:
			// Enough is claimed to keep the workers going: wait for more
			// outcomes, so that one commit records several.
			done = append(done, <-outcomes)
			continue
		}
		now, lease := s.now(), s.lease(owner)
		var got []Email
		err := s.recordEmails(ctx, done, func(tx Tx) (err error) {
			got = nil
			if want > 0 {
				got, err = tx.ClaimEmailsAfter(ctx, now, lease, now.Add(s.cfg.Lease), want, pos)
			}
			return err
		})
		outstanding -= len(done)
		done = nil
		if err != nil {
			errs = append(errs, fmt.Errorf("claim reclaim emails: %w", err))
			more = false
			continue
		}
		if len(got) < want {
			more = false
		}
		for _, e := range got {
			pos = pos.Past(e.NextAttemptAt, e.ID)
			queue <- claim{e, lease}
		}
		claimed, outstanding, left = claimed+len(got), outstanding+len(got), left-len(got)
	}
	close(queue)
	wg.Wait()
	return claimed, errors.Join(errs...)
}

// claimAhead is how many claimed emails per worker may wait to be sent:
// enough that a slow commit does not leave workers idle, few enough that a
// claimed email waits for a worker a few sends at most, far within its lease.
const claimAhead = 4

// claim is an email leased to lease.
type claim struct {
	e     Email
	lease string
}

// attempt is one delivery attempt of a claimed email, to be recorded by
// finishEmail: delivered when cause is nil.
type attempt struct {
	e     Email
	lease string
	log   *slog.Logger
	cause error
}

// sendEmail makes one attempt at a claimed email.
func (s *Service) sendEmail(ctx context.Context, e Email, lease string) *attempt {
	a := &attempt{e: e, lease: lease,
		log: s.log.With(slog.Int64("email_id", e.ID), slog.String("kind", string(e.Kind)), slog.Int64("user_id", e.UserID), slog.String("message_id", e.MessageID))}
	if e.Attempts > s.cfg.MaxAttempts {
		a.cause = fmt.Errorf("gave up after %d attempts", s.cfg.MaxAttempts)
		return a
	}
	m := e.Payload
	m.MessageID, m.Date = e.MessageID, s.now()
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	a.cause = s.mailer.SendReclaim(sendCtx, m)
	cancel()
	return a
}

// recordEmails records attempts done under their emails' leases, then
// runs then (if not nil) in the same transaction. The outcomes are recorded
// even when ctx ends, or the emails would be sent again after their
// leases; should the transaction with then fail, they are recorded alone.
func (s *Service) recordEmails(ctx context.Context, done []*attempt, then func(Tx) error) error {
	if len(done) == 0 {
		if then == nil {
			return nil
		}
		return s.store.Write(ctx, then)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := s.now()
	emails := make([]Email, len(done))
	for i, a := range done {
		e := a.e
		e.LeaseOwner, e.LeaseUntil = "", time.Time{}
		switch {
		case a.cause == nil:
			e.Status, e.DeliveredAt, e.LastError = "delivered", now, ""
		case e.Attempts >= s.cfg.MaxAttempts:
			e.Status, e.LastError = "failed", a.cause.Error()
		default:
			e.Status, e.LastError, e.NextAttemptAt = "pending", a.cause.Error(), now.Add(notify.Backoff(e.Attempts))
		}
		emails[i] = e
	}
	lost := make([]bool, len(done))
	record := func(tx Tx) error {
		// Delivered emails are recorded together, by lease; others one by one.
		delivered := map[string][]int64{}
		at := map[string][]int{}
		for i, e := range emails {
			if e.Status == "delivered" {
				l := done[i].lease
				delivered[l], at[l] = append(delivered[l], e.ID), append(at[l], i)
				continue
			}
			err := tx.FinishEmail(fctx, e, done[i].lease)
			lost[i] = usher.ErrorCode(err) == usher.ECONFLICT // another worker took it over; its outcome wins
			if err != nil && !lost[i] {
				return err
			}
		}
		for l, ids := range delivered {
			recorded, err := tx.FinishDelivered(fctx, l, ids, now)
			if err != nil {
				return err
			}
			for _, i := range at[l] {
				lost[i] = !slices.Contains(recorded, emails[i].ID)
			}
		}
		return nil
	}
	err := s.store.Write(fctx, func(tx Tx) error {
		if err := record(tx); err != nil || then == nil {
			return err
		}
		return then(tx)
	})
	if err != nil && then != nil {
		if err2 := s.store.Write(fctx, record); err2 != nil {
			return errors.Join(err, fmt.Errorf("record reclaim emails: %w", err2))
		}
	} else if err != nil {
		return fmt.Errorf("record reclaim emails: %w", err)
	}
	for i, e := range emails {
		log := done[i].log
		switch {
		case lost[i]:
			log.WarnContext(fctx, "reclaim email lease lost before the outcome was recorded")
			continue
		case e.Status == "delivered":
			log.InfoContext(fctx, "reclaim email delivered")
		case e.Status == "failed":
			log.ErrorContext(fctx, "reclaim email failed for good", slog.String("error", e.LastError))
		default:
			log.WarnContext(fctx, "reclaim email attempt failed; will retry", slog.String("error", e.LastError))
		}
		if st := s.stats.Emails[e.Kind]; st != nil {
			switch e.Status {
			case "delivered":
				st.Sent.Add(1)
			case "failed":
				st.Failed.Add(1)
			default:
				st.Retried.Add(1)
			}
		}
	}
	return err
}

// evidenceOf is the snapshot of a run's plan: every seat it was about, with
// what it did or would do with each.
func evidenceOf(pl Plan, r *Run, p Policy) *usage.Snapshot {
	seats := make([]usage.SnapshotSeat, 0, len(pl.Items))
	for _, it := range pl.Items {
		seats = append(seats, usage.SnapshotSeat{UserID: it.UserID, SubscriptionID: it.SubscriptionID, Email: it.Email,
			AssignedAt: it.AssignedAt, LastUsedAt: it.LastUsedAt, Inactivity: it.Inactivity, Action: string(it.Action)})
	}
	return usage.NewSnapshot(usage.SnapshotReclaim, r.ID, r.AccountID, p.Range, pl.At, seats)
}
