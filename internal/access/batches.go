package access

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// UndoWindow is how long a reclaim batch can be undone.
const UndoWindow = 30 * 24 * time.Hour

// ReclaimSeats takes whole seats of the given subscriptions from one user,
// with their services and benefits, inside the caller's transaction, and
// adds what it removed to batch. Reclaim runs call it so that a person's
// seats go all together or not at all, audited like any unassign.
func (s *Service) ReclaimSeats(ctx context.Context, tx Tx, a usher.Actor, userID int64, subscriptionIDs []int64, batch *usher.ReclaimBatch) error {
	// Locks in the one global order, as Unassign takes them.
	if err := tx.LockSeats(ctx, a.AccountID, subscriptionIDs, []int64{userID}); err != nil {
		return err
	}
	u, held, benefits, err := s.holdings(ctx, tx, a.AccountID, userID)
	if err != nil {
		return err
	}
	var freed []seatKey
	for _, id := range subscriptionIDs {
		as, ok := held[id]
		if !ok {
			return usher.Errorf(usher.ECONFLICT, "%s holds no seat of subscription %d any more", u.Email, id)
		}
		sub, err := tx.SubscriptionByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		// Every source of the seat goes, as in Unassign: the direct one,
		// and each group's by an exclusion.
		if err := s.takeSeat(ctx, tx, a, u, as); err != nil {
			return err
		}
		freed = append(freed, seatKey{u.ID, id})
		batch.Items = append(batch.Items, usher.BatchItem{UserID: u.ID, Email: u.Email, SubscriptionID: id, Seat: true,
			Services: orEmpty(slices.Clone(as.Services)), Benefits: orEmpty(slices.Clone(benefits[id])), AssignedAt: as.AssignedAt, Price: sub.Price})
	}
	if _, err := s.settle(ctx, tx, a, freed); err != nil {
		return err
	}
	// A taken seat takes its benefits with it.
	after, err := tx.BenefitsOfUser(ctx, a.AccountID, u.ID)
	if err != nil {
		return err
	}
	for _, k := range freed {
		if len(after[k.sub]) > 0 {
			if err := s.setBenefits(ctx, tx, a, u, k.sub, after[k.sub], nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// Batches lists reclaim batches, newest first (admins).
func (s *Service) Batches(ctx context.Context, a usher.Actor, cursor string, limit int) (Page[usher.ReclaimBatch], error) {
	out := Page[usher.ReclaimBatch]{Items: []usher.ReclaimBatch{}}
	var p usher.Problems
	limit = checkLimit(&p, limit)
	var before int64
	if err := s.cursors.Decode(ctx, &p, CursorReclaims, a.AccountID, cursor, &before); err != nil {
		return out, err
	}
	if err := p.Err(); err != nil {
		return out, err
	}
	if !Can(a, ViewReclaim, 0) {
		return out, forbidden("see the reclaim history")
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		bs, err := tx.ListBatches(ctx, a.AccountID, before, limit+1)
		if err != nil {
			return err
		}
		if len(bs) > limit {
			bs = bs[:limit]
			if out.NextCursor, err = s.cursors.Encode(ctx, CursorReclaims, a.AccountID, bs[limit-1].ID); err != nil {
				return err
			}
		}
		for i := range bs {
			bs[i].Saved = usher.SavedOf(bs[i].Items)
		}
		out.Items = append(out.Items, bs...)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("reclaim history: %w", err)
	}
	return out, nil
}

// Batch returns one reclaim batch. Admins see every batch; others only the
// batches they made.
func (s *Service) Batch(ctx context.Context, a usher.Actor, id int64) (usher.ReclaimBatch, error) {
	var b usher.ReclaimBatch
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		b, err = tx.BatchByID(ctx, a.AccountID, id)
		return err
	})
	if err == nil && !Can(a, ViewReclaim, 0) && b.ActorID != a.UserID {
		err = usher.Errorf(usher.ENOTFOUND, "reclaim %d not found", id)
	}
	if err != nil {
		return b, fmt.Errorf("reclaim %d: %w", id, err)
	}
	b.Saved = usher.SavedOf(b.Items)
	return b, nil
}

// UndoResult says, person by person, what an undo restored and what it
// could not.
type UndoResult struct {
	BatchID  int64         `json:"batch_id"`
	Restored []UndoOutcome `json:"restored"`
	Failed   []UndoOutcome `json:"not_restored"`
}

// UndoOutcome is one person's part of an undo.
type UndoOutcome struct {
	UserID int64             `json:"user_id"`
	Email  string            `json:"email"`
	Items  []usher.BatchItem `json:"items"`
	Reason string            `json:"reason,omitempty"` // why nothing of this person's could be restored
}

// Undo restores what a reclaim batch removed, within UndoWindow: each
// person's seats, services and benefits together or not at all, where seats
// are still free. What cannot be restored is listed person by person with
// the reason. A batch is undone once; the undo needs the right to change
// seats of every subscription in it.
//
// Each person's part commits together with its outcome, so an undo that
// stopped half-way (the process died, the request was cancelled) is
// finished by undoing again: that restores only the people not done yet,
// never anyone twice, and answers for everyone in the batch.
func (s *Service) Undo(ctx context.Context, a usher.Actor, id int64) (UndoResult, error) {
	res := UndoResult{BatchID: id, Restored: []UndoOutcome{}, Failed: []UndoOutcome{}}
	var b usher.ReclaimBatch
	err := s.store.Write(ctx, func(tx Tx) (err error) {
		if b, err = tx.BatchByID(ctx, a.AccountID, id); err != nil {
			return err
		}
		for _, it := range b.Items {
			if !Can(a, ManageSeats, it.SubscriptionID) {
				return forbidden("undo a reclaim of seats you may not change")
			}
		}
		if !b.UndoneAt.IsZero() {
			if !b.UndoUnfinished {
				return usher.Errorf(usher.ECONFLICT, "reclaim %d was undone already", id)
			}
			return nil // finish it: the window was checked when it started
		}
		now := s.Now()
		if now.Sub(b.CreatedAt) > UndoWindow {
			return usher.Errorf(usher.ECONFLICT, "reclaim %d is older than %d days and can no longer be undone", id, int(UndoWindow.Hours()/24))
		}
		ok, err := tx.MarkBatchUndone(ctx, a.AccountID, id, now, a.Email)
		if err != nil {
			return err
		}
		if !ok {
			return usher.Errorf(usher.ECONFLICT, "reclaim %d was undone already", id)
		}
		e := usher.AuditEntry{AccountID: a.AccountID, ActorID: a.UserID, ActorEmail: a.Email, Action: "reclaim.undo", At: now}
		if err := e.SetChange(nil, map[string]any{"batch_id": id, "source": b.Source, "policy_id": b.PolicyID}); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, &e)
	})
	if err != nil {
		return res, fmt.Errorf("undo reclaim %d: %w", id, err)
	}
	// Person by person, in the order removed: one transaction each, so one
	// person whose seat is gone does not keep the others from theirs.
	order, byUser := itemsByUser(b.Items, func(it usher.BatchItem) bool { return it.Undo == "" })
	for _, uid := range order {
		items := byUser[uid]
		err := s.store.Write(ctx, func(tx Tx) error {
			// The outcome first: it takes this person's rows, so a second
			// undo of the batch waits here and then finds them done.
			ok, err := tx.SetUndoOutcome(ctx, id, uid, usher.UndoRestored, "")
			if err != nil || !ok {
				return err
			}
			return s.restore(ctx, tx, a, uid, items)
		})
		if err == nil {
			continue
		}
		if usher.ErrorCode(err) == usher.EINTERNAL {
			return res, fmt.Errorf("undo reclaim %d: restore %s: %w", id, items[0].Email, err)
		}
		reason := usher.ErrorMessage(err)
		err = s.store.Write(ctx, func(tx Tx) error {
			_, err := tx.SetUndoOutcome(ctx, id, uid, usher.UndoNotRestored, reason)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("undo reclaim %d: %w", id, err)
		}
	}
	// The answer is read back, so it covers people an earlier undo of the
	// batch restored before it stopped.
	err = s.store.Read(ctx, func(tx Tx) (err error) {
		b, err = tx.BatchByID(ctx, a.AccountID, id)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("undo reclaim %d: %w", id, err)
	}
	order, byUser = itemsByUser(b.Items, func(usher.BatchItem) bool { return true })
	for _, uid := range order {
		items := byUser[uid]
		out := UndoOutcome{UserID: uid, Email: items[0].Email, Items: items}
		switch items[0].Undo {
		case usher.UndoRestored:
			res.Restored = append(res.Restored, out)
		case usher.UndoNotRestored:
			out.Reason = items[0].UndoReason
			res.Failed = append(res.Failed, out)
		}
	}
	return res, nil
}

// itemsByUser groups the items that keep holds by user, users in the order
// of their first item.
func itemsByUser(items []usher.BatchItem, keep func(usher.BatchItem) bool) ([]int64, map[int64][]usher.BatchItem) {
	var order []int64
	byUser := map[int64][]usher.BatchItem{}
	for _, it := range items {
		if !keep(it) {
			continue
		}
		if _, ok := byUser[it.UserID]; !ok {
			order = append(order, it.UserID)
		}
		byUser[it.UserID] = append(byUser[it.UserID], it)
	}
	return order, byUser
}

// restore gives one person back what the batch took from them.
func (s *Service) restore(ctx context.Context, tx Tx, a usher.Actor, userID int64, items []usher.BatchItem) error {
	subIDs := make([]int64, len(items))
	for i, it := range items {
		subIDs[i] = it.SubscriptionID
	}
	if err := tx.LockUser(ctx, a.AccountID, userID); err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
		return err
	}
	if err := tx.LockSeats(ctx, a.AccountID, subIDs, []int64{userID}); err != nil {
		return err
	}
	u, held, benefits, err := s.holdings(ctx, tx, a.AccountID, userID)
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		return usher.Errorf(usher.ECONFLICT, "the user was deleted")
	} else if err != nil {
		return err
	}
	if u.Status != usher.UserActive {
		return usher.Errorf(usher.ECONFLICT, "%s is disabled", u.Email)
	}
	for _, it := range items {
		sub, err := tx.SubscriptionByID(ctx, a.AccountID, it.SubscriptionID)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			return usher.Errorf(usher.ECONFLICT, "subscription %d no longer exists", it.SubscriptionID)
		} else if err != nil {
			return err
		}
		as, has := held[sub.ID]
		var services []string
		for _, c := range it.Services {
			if sub.Product.HasService(c) {
				services = append(services, c)
			}
		}
		switch {
		case it.Seat && has:
			// Seated again meanwhile: give back the services it lacks.
			want := union(as.Services, services)
			if !sameSet(want, as.Services) {
				if err := tx.SetAssignmentServices(ctx, a.AccountID, u.ID, sub.ID, want); err != nil {
					return err
				}
				if err := s.audit(ctx, tx, a, "services.set", u, sub.ID, orEmpty(as.Services), want); err != nil {
					return err
				}
			}
		case it.Seat:
			err := s.assignSeat(ctx, tx, a, u, sub, services)
			if usher.ErrorCode(err) == usher.ENOSEATS {
				return usher.Errorf(usher.ENOSEATS, "no seat of contract %s is free", sub.ContractNumber)
			} else if err != nil {
				return err
			}
		case len(services) > 0 && !has:
			return usher.Errorf(usher.ECONFLICT, "%s no longer holds a seat of contract %s for its services", u.Email, sub.ContractNumber)
		case len(services) > 0:
			want := union(as.Services, services)
			if err := tx.SetAssignmentServices(ctx, a.AccountID, u.ID, sub.ID, want); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, a, "services.set", u, sub.ID, orEmpty(as.Services), want); err != nil {
				return err
			}
		}
		var codes []string
		for _, c := range it.Benefits {
			if sub.HasBenefit(c) {
				codes = append(codes, c)
			}
		}
		if want := union(benefits[sub.ID], codes); !sameSet(want, benefits[sub.ID]) {
			if err := s.setBenefits(ctx, tx, a, u, sub.ID, benefits[sub.ID], want); err != nil {
				return err
			}
		}
	}
	return nil
}
