package reclaim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

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
// for owner (a name unique to this process). It answers how many runs it
// finished and emails it delivered. Without a mailer it does nothing: a
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
	for range max {
		if ctx.Err() != nil {
			break
		}
		ok, err := s.sendOne(ctx, owner)
		if err != nil {
			errs = append(errs, err)
		}
		if !ok {
			break
		}
		done++
	}
	return done, errors.Join(errs...)
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

// execute carries out a run: the policy's plan, person by person, each in
// one transaction that plans that person again and does what it says, then
// one digest per admin. Every step is idempotent, so a run taken over from
// a worker that died picks up where it stopped: warned seats have open
// warnings, reclaimed seats are gone, and emails are unique per run, kind
// and person.
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
		pl, err = s.plan(ctx, tx, p, acct, s.now(), 0)
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
	for _, it := range pl.Items {
		if !slices.Contains(order, it.UserID) {
			order = append(order, it.UserID)
		}
	}
	for _, uid := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.store.Write(ctx, func(tx Tx) error { return s.carryOut(ctx, tx, p, acct, r, uid) })
		if err != nil {
			return fmt.Errorf("user %d: %w", uid, err)
		}
	}
	return s.digest(ctx, p, acct, r)
}

// carryOut plans one person again in tx and does what the plan says for
// them: warn, reclaim (all of their seats or none), or close warnings.
func (s *Service) carryOut(ctx context.Context, tx Tx, p Policy, acct usher.Account, r *Run, userID int64) error {
	now := s.now()
	pl, err := s.plan(ctx, tx, p, acct, now, userID)
	if err != nil {
		return err
	}
	u, err := tx.UserByID(ctx, acct.ID, userID)
	if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
		return err
	}
	sys := usher.System(acct.ID)
	sys.Email = "reclaim policy " + p.Name
	var warned, reclaimed []MessageSeat
	var reclaimSubs []int64
	var reclaimWarnings []int64
	for _, it := range pl.Items {
		switch it.Action {
		case ActWarn:
			token, hash := newToken()
			w := Warning{AccountID: acct.ID, PolicyID: p.ID, RunID: r.ID, UserID: it.UserID, SubscriptionID: it.SubscriptionID,
				Inactivity: it.Inactivity, LastUsedAt: it.LastUsedAt, WarnedAt: now, ReclaimAt: it.ReclaimAt.UTC(), TokenHash: hash, Outcome: OutcomeOpen}
			made, err := tx.InsertWarning(ctx, &w)
			if err != nil {
				return err
			}
			if !made {
				continue
			}
			r.Warned++
			warned = append(warned, seatOf(it, s.cfg.BaseURL+KeepPath+token))
			e := usher.AuditEntry{AccountID: acct.ID, ActorEmail: sys.Email, Action: "reclaim.warn", TargetUserID: u.ID, TargetEmail: u.Email,
				SubscriptionID: it.SubscriptionID, At: now}
			if err := e.SetChange(nil, map[string]any{"policy_id": p.ID, "policy": p.Name, "warning_id": w.ID, "reclaim_at": w.ReclaimAt, "inactivity": it.Inactivity}); err != nil {
				return err
			}
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
				r.Kept++
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
		r.Reclaimed += len(reclaimSubs)
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
		if _, err := s.enqueue(ctx, tx, r, kind, u.ID, m); err != nil {
			return err
		}
	}
	return nil
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

// sendOne claims one due email and sends it; it reports whether it claimed one.
func (s *Service) sendOne(ctx context.Context, owner string) (bool, error) {
	now, lease := s.now(), s.lease(owner)
	var e Email
	var ok bool
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		e, ok, err = tx.ClaimEmail(ctx, now, lease, now.Add(s.cfg.Lease))
		return err
	})
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("claim reclaim email: %w", err)
		}
		return false, err
	}
	log := s.log.With(slog.Int64("email_id", e.ID), slog.String("kind", string(e.Kind)), slog.Int64("user_id", e.UserID), slog.String("message_id", e.MessageID))
	var cause error
	if e.Attempts > s.cfg.MaxAttempts {
		cause = fmt.Errorf("gave up after %d attempts", s.cfg.MaxAttempts)
	} else {
		m := e.Payload
		m.MessageID, m.Date = e.MessageID, s.now()
		sendCtx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
		cause = s.mailer.SendReclaim(sendCtx, m)
		cancel()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now = s.now()
	e.LeaseOwner, e.LeaseUntil = "", time.Time{}
	switch {
	case cause == nil:
		e.Status, e.DeliveredAt, e.LastError = "delivered", now, ""
		log.InfoContext(fctx, "reclaim email delivered")
	case e.Attempts >= s.cfg.MaxAttempts:
		e.Status, e.LastError = "failed", cause.Error()
		log.ErrorContext(fctx, "reclaim email failed for good", slog.String("error", e.LastError))
	default:
		e.Status, e.LastError, e.NextAttemptAt = "pending", cause.Error(), now.Add(notify.Backoff(e.Attempts))
		log.WarnContext(fctx, "reclaim email attempt failed; will retry", slog.String("error", e.LastError))
	}
	err = s.store.Write(fctx, func(tx Tx) error { return tx.FinishEmail(fctx, e, lease) })
	if usher.ErrorCode(err) == usher.ECONFLICT {
		return true, nil
	}
	if st := s.stats.Emails[e.Kind]; err == nil && st != nil {
		switch e.Status {
		case "delivered":
			st.Sent.Add(1)
		case "failed":
			st.Failed.Add(1)
		default:
			st.Retried.Add(1)
		}
	}
	return true, err
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
