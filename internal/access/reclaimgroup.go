package access

import (
	"context"
	"fmt"
	"slices"

	"github.com/usherhq/usher/internal/usher"
)

// PersonSeats is one person's part of ReclaimGroup: the subscriptions
// whose seats they give back, and the batch that records them.
type PersonSeats struct {
	UserID          int64
	SubscriptionIDs []int64
	Batch           *usher.ReclaimBatch
}

// ReclaimGroup is ReclaimSeats for several people in tx, with the same
// outcome: each person's seats freed with their services and benefits,
// the same audit entries, the same items added to each person's batch
// (which the caller stores). Seats that reach their holder only directly,
// the usual case, are read, deleted, released and audited with a few
// statements for everyone (GroupTx); a person with a seat that a group
// gives goes through ReclaimSeats, as exclusions and settling decide there.
// Any failure fails the whole call: the transaction must then roll back,
// and the caller may go person by person to find whose part failed.
func (s *Service) ReclaimGroup(ctx context.Context, tx Tx, a usher.Actor, people []PersonSeats) error {
	var subs, users []int64
	for _, p := range people {
		if len(p.SubscriptionIDs) > 0 {
			subs, users = append(subs, p.SubscriptionIDs...), append(users, p.UserID)
		}
	}
	if len(users) == 0 {
		return nil
	}
	// Locks in the one global order, as Unassign takes them.
	if err := tx.LockSeats(ctx, a.AccountID, subs, users); err != nil {
		return err
	}
	us, err := tx.UsersByIDs(ctx, a.AccountID, users)
	if err != nil {
		return err
	}
	held, err := tx.AssignmentsOfUsers(ctx, a.AccountID, users)
	if err != nil {
		return err
	}
	benefits, err := tx.BenefitsOfUsers(ctx, a.AccountID, users)
	if err != nil {
		return err
	}
	subscriptions := map[int64]usher.Subscription{}
	for _, id := range sortedUnique(subs) {
		if subscriptions[id], err = tx.SubscriptionByID(ctx, a.AccountID, id); err != nil {
			return err
		}
	}
	// What each person holds of what they give back; seats a group gives
	// are not for the set-based path.
	type seat struct {
		person int
		as     usher.Assignment
	}
	var simple []seat
	var candidates []SeatRef
	viaGroups := map[int64]bool{} // people who go through ReclaimSeats
	for i, p := range people {
		if len(p.SubscriptionIDs) == 0 {
			continue
		}
		u, ok := us[p.UserID]
		if !ok {
			return usher.Errorf(usher.ENOTFOUND, "user %d not found", p.UserID)
		}
		for _, id := range p.SubscriptionIDs {
			j := slices.IndexFunc(held[u.ID], func(as usher.Assignment) bool { return as.SubscriptionID == id })
			if j < 0 {
				return usher.Errorf(usher.ECONFLICT, "%s holds no seat of subscription %d any more", u.Email, id)
			}
			as := held[u.ID][j]
			if len(as.Groups) > 0 {
				viaGroups[u.ID] = true
			}
			simple = append(simple, seat{i, as})
			// An active user whose groups give the subscription keeps
			// the seat through them once the direct source goes (settle).
			if u.Status == usher.UserActive {
				candidates = append(candidates, SeatRef{u.ID, id})
			}
		}
	}
	granted, err := tx.GroupGrantedSeats(ctx, a.AccountID, candidates)
	if err != nil {
		return err
	}
	for _, k := range granted {
		viaGroups[k.UserID] = true
	}
	simple = slices.DeleteFunc(simple, func(x seat) bool { return viaGroups[x.as.UserID] })

	// The direct seats: every one is freed, as settle frees a seat with no
	// source left (its audit shows the seat as settle reads it, after
	// takeSeat cleared its direct source), and a taken seat takes its
	// benefits with it.
	var gone, cleared []SeatRef
	released := map[int64]int{}
	var audits, benefitAudits []usher.AuditEntry
	for _, x := range simple {
		p, u, as := people[x.person], us[x.as.UserID], x.as
		sub := subscriptions[as.SubscriptionID]
		had := benefits[u.ID][as.SubscriptionID]
		p.Batch.Items = append(p.Batch.Items, usher.BatchItem{UserID: u.ID, Email: u.Email, SubscriptionID: as.SubscriptionID, Seat: true,
			Services: orEmpty(slices.Clone(as.Services)), Benefits: orEmpty(slices.Clone(had)), AssignedAt: as.AssignedAt, Price: sub.Price})
		k := SeatRef{u.ID, as.SubscriptionID}
		gone, released[as.SubscriptionID] = append(gone, k), released[as.SubscriptionID]+1
		before := as
		before.Direct = false
		e, err := s.auditEntry(a, "seat.unassign", u, as.SubscriptionID, before, nil)
		if err != nil {
			return err
		}
		audits = append(audits, e)
		if len(had) > 0 {
			cleared = append(cleared, k)
			e, err := s.auditEntry(a, "benefits.set", u, as.SubscriptionID, orEmpty(had), orEmpty(nil))
			if err != nil {
				return err
			}
			benefitAudits = append(benefitAudits, e)
		}
	}
	if err := tx.DeleteSeats(ctx, a.AccountID, gone); err != nil {
		return err
	}
	if err := tx.ReleaseSeats(ctx, a.AccountID, released); err != nil {
		return err
	}
	if err := tx.ClearBenefits(ctx, a.AccountID, cleared); err != nil {
		return err
	}
	if err := tx.InsertAudits(ctx, append(audits, benefitAudits...)); err != nil {
		return err
	}
	// Freed seats go to the subscriptions' waiters, oldest first.
	freedSubs := make([]int64, 0, len(released))
	for id := range released {
		freedSubs = append(freedSubs, id)
	}
	slices.Sort(freedSubs)
	for _, id := range freedSubs {
		if err := s.seatWaiters(ctx, tx, a, id); err != nil {
			return err
		}
	}
	// The others, one by one, as ReclaimSeats does it.
	for _, p := range people {
		if viaGroups[p.UserID] && len(p.SubscriptionIDs) > 0 {
			if err := s.ReclaimSeats(ctx, tx, a, p.UserID, p.SubscriptionIDs, p.Batch); err != nil {
				return fmt.Errorf("user %d: %w", p.UserID, err)
			}
		}
	}
	return nil
}
