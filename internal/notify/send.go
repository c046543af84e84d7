package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Composer is a Mailer that renders a message ahead of its delivery, so
// that a worker renders its next email while the current one is on the
// wire; mail.SMTP implements it.
type Composer interface {
	Compose(m Message) (Composed, error)
}

// Composed is an email rendered and ready to deliver once.
type Composed interface {
	Deliver(ctx context.Context) error
}

// SendDue claims at most max due runs for owner (a name unique to this
// process, such as host:pid), sends them, Workers at a time, and records
// each outcome. It answers how many were delivered. A failed send is
// retried after Backoff, with the same Message-ID, until MaxAttempts.
// Without a mailer it sends nothing and leaves runs pending.
//
// Workers preparers get emails ready (claim the runs, read what the emails
// need, count the inactive users, render) while Workers senders have
// emails on the wire, so that database time hides behind SMTP time. The
// transaction that claims runs also records the outcomes of the sends that
// ended since the last claim. A preparer claims a few runs at a time
// (batch) and hands them to the first free senders, so a run waits for a
// few sends at most. A run is sent only while its lease outlasts a whole
// send (SendTimeout), and otherwise handed back untouched; an outcome
// whose lease could run out before the next claim is recorded at once by
// its sender. Past its lease, another replica would take a run over from
// a live worker and send it again.
//
// When ctx ends (the server is stopping), no further run is claimed; a
// prepared run not yet sent is handed back untouched, and a send in
// progress may finish within Config.StopGrace. One still going then is cut
// short and its claim released, without counting as an attempt, so
// another replica (or the next start) takes it at once instead of waiting
// for the lease to expire.
func (s *Service) SendDue(ctx context.Context, owner string, max int) (int, error) {
	if s.mailer == nil || max <= 0 {
		return 0, nil
	}
	// Sends outlive ctx by at most StopGrace.
	sendCtx, cutSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cutSends()
	returned := make(chan struct{})
	defer close(returned)
	context.AfterFunc(ctx, func() {
		t := time.NewTimer(s.cfg.StopGrace)
		defer t.Stop()
		select {
		case <-returned:
		case <-t.C:
			cutSends()
		}
	})
	var (
		preparers, senders sync.WaitGroup
		mu                 sync.Mutex
		errs               []error
		unrecorded         []*outcome // ended, not recorded yet; mu guards both
		preparing          atomic.Int64
		delivered          atomic.Int64
		left               atomic.Int64 // claims this call may still make
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	take := func() []*outcome {
		mu.Lock()
		defer mu.Unlock()
		os := unrecorded
		unrecorded = nil
		return os
	}
	putBack := func(os []*outcome) {
		mu.Lock()
		unrecorded = append(unrecorded, os...)
		mu.Unlock()
	}
	left.Store(int64(max))
	workers := min(s.cfg.Workers, max)
	ready := make(chan *prepared)
	preparing.Store(int64(workers))
	var (
		posMu  sync.Mutex
		pos    Position // past the last run claimed by this call
		resets int      // times pos went back to the start; posMu guards both
	)
	for range workers {
		preparers.Go(func() {
			defer preparing.Add(-1)
			for ctx.Err() == nil {
				n := reserve(&left, s.batch())
				if n == 0 {
					return
				}
				posMu.Lock()
				after, seen := pos, resets
				posMu.Unlock()
				known := take()
				if slices.ContainsFunc(known, func(o *outcome) bool { return o.handBack }) {
					after = Position{} // pending again once recorded, behind pos
				}
				ps, last, known, err := s.prepareNext(sendCtx, owner, known, n, after)
				putBack(known)
				if err != nil {
					if sendCtx.Err() == nil {
						fail(fmt.Errorf("claim due notifications: %w", err))
					}
					return
				}
				posMu.Lock()
				if resets == seen {
					pos = pos.Past(last.At, last.ID)
				}
				posMu.Unlock()
				if len(ps) == 0 {
					return
				}
				if len(ps) < n {
					left.Add(int64(n - len(ps))) // not claimed: another preparer may
				}
				for i, p := range ps {
					select {
					case ready <- p:
						continue
					case <-ctx.Done():
					}
					for _, p := range ps[i:] {
						putBack([]*outcome{p.handBack()}) // never sent
					}
					return
				}
			}
		})
	}
	for range workers {
		senders.Go(func() {
			for p := range ready {
				var o *outcome
				if ctx.Err() != nil || !s.leaseOutlastsSend(p) {
					o = p.handBack() // not started: back as it was claimed
				} else if o = s.deliver(sendCtx, ctx, p); o.cause == nil {
					delivered.Add(1)
				}
				putBack([]*outcome{o})
				if preparing.Load() == 0 || !s.claimRecordsInTime(o) {
					// No claim is coming to record it with, or none sure to
					// come before its lease runs out: record it now.
					if os := take(); len(os) > 0 {
						if err := s.finish(sendCtx, os, nil); err != nil {
							putBack(os)
							fail(err)
						}
					}
				}
				if o.handBack {
					// Pending again behind the claims' position: the next
					// claims start over, so this call still sends it. Only
					// now, once it may be recorded: a claim from the start
					// made while it was still leased would pass it, and
					// move the position past it again.
					posMu.Lock()
					pos, resets = Position{}, resets+1
					posMu.Unlock()
				}
			}
		})
	}
	preparers.Wait()
	close(ready)
	senders.Wait()
	if os := take(); len(os) > 0 {
		if err := s.finish(sendCtx, os, nil); err != nil {
			fail(err)
		}
	}
	return int(delivered.Load()), errors.Join(errs...)
}

// claimed is a run just leased, with what its email needs, read in the
// claim's transaction.
type claimed struct {
	run   *Run // nil: nothing due
	st    Setting
	acct  usher.Account
	to    usher.User
	ok    bool   // to is still an active primary admin
	abort string // why the run must not be sent, if it must not
	// counted: sum (and evidence, if any) were read in the claim's
	// transaction.
	counted  bool
	sum      usage.InactiveSummary
	evidence *usage.Snapshot
}

// countError is a count that failed inside a claim's transaction, which it
// rolled back: the claim is made again and the count apart, so that a
// failing count becomes a failed attempt with its backoff.
type countError struct{ err error }

func (e countError) Error() string { return "count inactive users: " + e.err.Error() }
func (e countError) Unwrap() error { return e.err }

// prepared is a claimed run made ready to send: its email composed, or
// the outcome it has without sending (o).
type prepared struct {
	claimed Run // the run as claimed, to hand back untouched
	counted Run // the run with the counts and evidence of its email
	lease   string
	log     *slog.Logger
	o       *outcome // set: record it, send nothing
	msg     Message
	email   Composed // nil: the mailer renders msg as it sends
}

// handBack is the outcome of a prepared run that was never sent: pending
// again as it was before its claim, the claim not counted as an attempt.
func (p *prepared) handBack() *outcome {
	return &outcome{r: p.claimed, lease: p.lease, log: p.log, handBack: true}
}

// leaseOutlastsSend reports whether p's lease still covers a whole send
// starting now, so no other worker can take the run over mid-send.
func (s *Service) leaseOutlastsSend(p *prepared) bool {
	return p.o != nil || s.now().Add(s.cfg.SendTimeout).Before(p.claimed.LeaseUntil)
}

// claimRecordsInTime reports whether o can wait for the next claim to be
// recorded: a preparer claims again once it has handed its runs to the
// senders, each within about a send, so the next claim may come batch sends
// from now. Past its lease another replica could take the run over and
// send it again.
func (s *Service) claimRecordsInTime(o *outcome) bool {
	return s.now().Add(time.Duration(s.batch()+1) * s.cfg.SendTimeout).Before(o.r.LeaseUntil)
}

// prepareNext records the outcomes known so far and claims at most n due
// runs past after in one transaction, then makes their emails ready to
// send. It answers the runs to send (none when nothing is due), the
// position of the last run it claimed (zero if none), and the outcomes
// still to record: none unless the transaction failed.
//
// ctx is SendDue's sendCtx, which outlives a stop by StopGrace: a claim
// begun before the stop commits or rolls back whole, never cut off at its
// commit, so a run claimed is known to be claimed and can be handed back.
func (s *Service) prepareNext(ctx context.Context, owner string, known []*outcome, n int, after Position) ([]*prepared, Position, []*outcome, error) {
	countApart := false
	var last Position
	for {
		now := s.now()
		lease := fmt.Sprintf("%s#%d", owner, s.claims.Add(1))
		var cs []claimed
		err := s.finish(ctx, known, func(tx Tx) (err error) {
			cs, err = s.claim(ctx, tx, now, lease, n, after, !countApart)
			return err
		})
		if _, ok := errors.AsType[countError](err); ok && !countApart {
			countApart = true // nothing was recorded: claim again
			continue
		}
		if err != nil {
			return nil, last, known, err
		}
		countApart = false
		known = nil
		if len(cs) == 0 {
			return nil, last, nil, nil
		}

		var ps []*prepared
		for _, c := range cs {
			last = last.Past(c.run.NextAttemptAt, c.run.ID)
			p := s.prepare(ctx, c, lease)
			if p.o == nil {
				ps = append(ps, p)
				continue
			}
			// Nothing to send (the run is aborted, or its count failed): record
			// that with the next claim.
			known = append(known, p.o)
		}
		if len(ps) > 0 || len(cs) < n {
			return ps, last, known, nil
		}
		after = after.Past(last.At, last.ID)
	}
}

// batch is how many runs one claim leases: a few, so that one transaction
// (and on PostgreSQL one commit) serves several emails, but few enough
// that the last of them is still leased when its turn to be sent comes. A
// preparer claims its next runs as soon as a sender has taken the last of
// its previous ones, and hands them to the senders one after another, each
// as soon as a sender is free: the last waits for about batch sends (the
// one in progress, then the others of its batch) before its own, so
// batch+2 sends of SendTimeout must fit in the lease, the claim's own time
// included. A run whose lease would still run out before its send ends is
// handed back unsent (leaseOutlastsSend); a lease thus never has to be
// renewed.
func (s *Service) batch() int {
	return max(1, min(claimBatch, int(s.cfg.Lease/s.cfg.SendTimeout)-2))
}

// claimBatch is the most runs one claim leases.
const claimBatch = 4

// reserve takes at most n from left, which counts the claims a SendDue may
// still make, and answers how many it took.
func reserve(left *atomic.Int64, n int) int {
	for {
		l := left.Load()
		if l <= 0 {
			return 0
		}
		take := min(l, int64(n))
		if left.CompareAndSwap(l, l-take) {
			return int(take)
		}
	}
}

// claim leases at most n due runs past after to lease and reads, for each,
// its setting, account and recipient, and when count is true and the run
// is to be sent, counts its inactive users.
func (s *Service) claim(ctx context.Context, tx Tx, now time.Time, lease string, n int, after Position, count bool) ([]claimed, error) {
	runs, err := tx.ClaimRunsAfter(ctx, now, lease, now.Add(s.cfg.Lease), n, after)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	keys := make([]UserKey, len(runs))
	for i, r := range runs {
		keys[i] = UserKey{r.AccountID, r.UserID}
	}
	to, err := tx.Addressees(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]claimed, len(runs))
	for i, r := range runs {
		a, ok := to[UserKey{r.AccountID, r.UserID}]
		if out[i], err = s.read(ctx, tx, now, &runs[i], a, ok, count); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// read reads what the email of the claimed run r needs, as claim says,
// given its addressee a (found: r's setting exists).
func (s *Service) read(ctx context.Context, tx Tx, now time.Time, r *Run, a Addressee, found bool, count bool) (claimed, error) {
	c := claimed{run: r}
	if r.Attempts > s.cfg.MaxAttempts {
		return c, nil // prepare gives up on it
	}
	if !found {
		c.abort = "usage notifications were removed before this email went out"
		return c, nil
	}
	c.st, c.acct = a.Setting, a.Account
	c.to, c.ok = a.User, eligible(r.AccountID, a.User, a.Grants)
	if !c.ok || !c.st.Enabled || !count {
		return c, nil
	}
	ev, ok := s.inactivity.(TxEvidence)
	utx, isUsage := tx.(usage.Tx)
	if !ok || !isUsage {
		return c, nil
	}
	sum, seats, err := ev.InactiveEvidenceIn(ctx, utx, r.AccountID, r.Range, s.cfg.FirstUsers)
	if err != nil {
		return c, countError{err}
	}
	c.counted, c.sum = true, sum
	if sum.InactiveSeats > 0 {
		c.evidence = usage.NewSnapshot(usage.SnapshotNotification, r.ID, r.AccountID, r.Range, now, seats)
	}
	return c, nil
}

// outcome is one attempt at a run, to be recorded by finish: delivered
// when cause is nil.
type outcome struct {
	r     Run
	lease string
	log   *slog.Logger
	cause error
	final bool
	stop  bool // the server was stopping when the attempt failed
	// handBack: the run was claimed but never sent; it goes back as it was.
	handBack bool
}

// prepare makes a claimed run ready to send: it counts the inactive users
// and composes the email. A run that must not be sent, or whose count
// failed, comes back with its outcome instead.
func (s *Service) prepare(ctx context.Context, c claimed, lease string) *prepared {
	r := *c.run
	log := s.log.With(slog.Int64("run_id", r.ID), slog.Int64("account_id", r.AccountID), slog.Int64("user_id", r.UserID),
		slog.Time("scheduled_for", r.ScheduledFor), slog.Int("attempt", r.Attempts), slog.String("message_id", r.MessageID))
	p := &prepared{claimed: r, lease: lease, log: log}
	o := &outcome{r: r, lease: lease, log: log}
	failed := func(cause error, final bool) *prepared {
		o.cause, o.final = cause, final
		p.o = o
		return p
	}
	if r.Attempts > s.cfg.MaxAttempts {
		// Only a worker that died mid-send claims a run this often.
		return failed(fmt.Errorf("gave up after %d attempts", s.cfg.MaxAttempts), true)
	}
	abort := c.abort
	switch {
	case abort == "" && !c.st.Enabled:
		abort = "usage notifications were turned off before this email went out"
	case abort == "" && !c.ok:
		abort = "the recipient is no longer an active primary admin"
	}
	if abort != "" {
		return failed(errors.New(abort), true)
	}
	p.counted = r
	sum, err := c.sum, error(nil)
	if c.counted {
		p.counted.Evidence = c.evidence
	} else if sum, err = s.summarize(ctx, &p.counted); err != nil {
		return failed(fmt.Errorf("count inactive users: %w", err), false)
	}
	p.counted.InactiveUsers, p.counted.InactiveSeats = sum.InactiveUsers, sum.InactiveSeats
	p.msg = Message{
		MessageID: r.MessageID, From: s.cfg.From, To: c.to, Account: c.acct, Date: s.now(), ScheduledFor: r.ScheduledFor,
		Summary: sum, SettingsURL: s.cfg.BaseURL + SettingsPath,
	}
	if sum.InactiveUsers > 0 {
		p.msg.ReportURL = s.ReportURL(r.Range)
		if p.counted.Evidence != nil {
			p.msg.ReportURL = s.SnapshotURL(p.counted.Evidence.ID)
		}
	}
	if cm, ok := s.mailer.(Composer); ok {
		if p.email, err = cm.Compose(p.msg); err != nil {
			return failed(fmt.Errorf("send: %w", err), false)
		}
	}
	return p
}

// deliver makes one attempt at a prepared run and returns its outcome,
// which the caller records. stop ends when the server is stopping: a
// failure after that releases the run instead of counting an attempt.
func (s *Service) deliver(ctx, stop context.Context, p *prepared) *outcome {
	o := &outcome{r: p.counted, lease: p.lease, log: p.log}
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	var err error
	if p.email != nil {
		err = p.email.Deliver(sendCtx)
	} else {
		err = s.mailer.Send(sendCtx, p.msg)
	}
	cancel()
	if err != nil {
		o.cause, o.stop = fmt.Errorf("send: %w", err), stop.Err() != nil
	}
	return o
}

// finish records the outcomes os under their runs' leases, if any, then
// runs then (if not nil) in the same transaction. Each outcome is
// delivered when its cause is nil, failed for good when final or out of
// attempts, else pending again after Backoff; a run handed back unsent is
// pending again as it was claimed.
//
// A failure while stopping releases the run instead: pending, due now, and
// the attempt not counted, since the failure is ours and not the mail
// server's.
func (s *Service) finish(ctx context.Context, os []*outcome, then func(Tx) error) error {
	if len(os) == 0 {
		return s.store.Write(ctx, then)
	}
	// The outcomes must be recorded even when ctx ends mid-send, or the runs
	// would be sent again after their leases expire. With then, ctx bounds
	// then's work; outcomes that fail to be recorded with it are recorded
	// alone later.
	rctx := ctx
	if then == nil {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
	}
	now := s.now()
	runs := make([]Run, len(os))
	counters := make([]*atomic.Int64, len(os))
	for i, o := range os {
		runs[i], counters[i] = s.settle(rctx, o, now)
	}
	var lost []string
	err := s.store.Write(rctx, func(tx Tx) error {
		lost = make([]string, len(os))
		for i, o := range os {
			switch err := tx.FinishRun(rctx, runs[i], o.lease); usher.ErrorCode(err) {
			case usher.ECONFLICT:
				// Our lease expired and another worker took the run; its
				// outcome wins.
				lost[i] = "usage notification lease lost before the outcome was recorded"
			case usher.ENOTFOUND:
				lost[i] = "usage notification run deleted (with its account) before the outcome was recorded"
			default:
				if err != nil {
					return err
				}
				if err := recordEvidence(rctx, tx, runs[i]); err != nil {
					return err
				}
			}
		}
		if then == nil {
			return nil
		}
		return then(tx)
	})
	if err != nil {
		if len(os) == 1 {
			return fmt.Errorf("record run %d: %w", runs[0].ID, err)
		}
		return fmt.Errorf("record runs %d and %d more: %w", runs[0].ID, len(os)-1, err)
	}
	for i, o := range os {
		if lost[i] != "" {
			o.log.WarnContext(rctx, lost[i])
		} else if counters[i] != nil {
			counters[i].Add(1)
		}
	}
	return nil
}

// settle turns an outcome into the run to record at now, logs it, and
// answers the counter it adds to once recorded (nil for none).
func (s *Service) settle(ctx context.Context, o *outcome, now time.Time) (Run, *atomic.Int64) {
	r, log := o.r, o.log
	r.LeaseOwner, r.LeaseUntil, r.UpdatedAt = "", time.Time{}, now
	switch {
	case o.handBack:
		// As before its claim: the same status, due time and last error.
		r.Status, r.Attempts = StatusPending, max(r.Attempts-1, 0)
		log.DebugContext(ctx, "usage notification handed back unsent")
		return r, nil
	case o.cause == nil:
		r.Status, r.DeliveredAt, r.LastError = StatusDelivered, now, ""
		log.InfoContext(ctx, "usage notification delivered", slog.Int("inactive_users", r.InactiveUsers))
		return r, &s.stats.Sent
	case o.stop && !o.final:
		r.Status, r.LastError, r.NextAttemptAt = StatusPending, "released at shutdown: "+o.cause.Error(), now
		r.Attempts = max(r.Attempts-1, 0)
		log.InfoContext(ctx, "usage notification released at shutdown for another worker", slog.String("error", o.cause.Error()))
		return r, &s.stats.Released
	case o.final || r.Attempts >= s.cfg.MaxAttempts:
		r.Status, r.LastError = StatusFailed, o.cause.Error()
		log.ErrorContext(ctx, "usage notification failed for good", slog.String("error", r.LastError))
		return r, &s.stats.Failed
	default:
		r.Status, r.LastError, r.NextAttemptAt = StatusPending, o.cause.Error(), now.Add(Backoff(r.Attempts))
		log.WarnContext(ctx, "usage notification attempt failed; will retry", slog.String("error", r.LastError), slog.Time("next_attempt_at", r.NextAttemptAt))
		return r, &s.stats.Retried
	}
}
