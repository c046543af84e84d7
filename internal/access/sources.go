package access

import (
	"context"
	"slices"

	"github.com/usherhq/usher/internal/usher"
)

// A seat reaches its holder directly (assigned to them), through groups
// (their group was assigned the subscription), or both; the person still
// holds one seat. settle brings the stored seats and waiting lists in line
// with those sources after any change of them:
//
//   - a seat with no source left is freed, and the subscription's oldest
//     waiters are seated;
//   - an active user whose groups give a subscription gets a seat if one is
//     free, else waits at the end of its list;
//   - a disabled user holds no seat and waits for none.
//
// Callers lock the subscriptions first (LockSubscriptions), so two
// transactions never decide on one waiting list at once.

// seatKey names one user's place on one subscription.
type seatKey struct{ user, sub int64 }

// outcome is what settling one seatKey did.
type outcome int

const (
	unchanged outcome = iota
	seated            // the user got a seat
	waiting           // the user waits (still or now)
	freed             // the user's seat was freed
)

// sourcesView is how audit entries show a seat's sources.
type sourcesView struct {
	Direct bool    `json:"direct"`
	Groups []int64 `json:"groups"`
}

// settle settles every key and then seats waiters of every subscription
// that freed a seat. It returns what happened to each key.
func (s *Service) settle(ctx context.Context, tx Tx, a usher.Actor, keys []seatKey) (map[seatKey]outcome, error) {
	out := make(map[seatKey]outcome, len(keys))
	var freedSubs []int64
	for _, k := range keys {
		if _, done := out[k]; done {
			continue
		}
		o, err := s.settleOne(ctx, tx, a, k)
		if err != nil {
			return nil, err
		}
		out[k] = o
		if o == freed && !slices.Contains(freedSubs, k.sub) {
			freedSubs = append(freedSubs, k.sub)
		}
	}
	slices.Sort(freedSubs)
	for _, sub := range freedSubs {
		if err := s.seatWaiters(ctx, tx, a, sub); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// seatWaiters gives free seats of the subscription to its waiters, oldest first.
func (s *Service) seatWaiters(ctx context.Context, tx Tx, a usher.Actor, subID int64) error {
	for {
		userID, err := tx.NextWaiter(ctx, a.AccountID, subID)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		o, err := s.settleOne(ctx, tx, a, seatKey{userID, subID})
		if err != nil {
			return err
		}
		// Seated: try the next one. Still waiting: no seat is left.
		// Anything else took them off the list; the next may fit.
		if o == waiting {
			return nil
		}
	}
}

// settleOne brings one user's seat of one subscription in line with its sources.
func (s *Service) settleOne(ctx context.Context, tx Tx, a usher.Actor, k seatKey) (outcome, error) {
	u, err := tx.UserByID(ctx, a.AccountID, k.user)
	if err != nil {
		return unchanged, err
	}
	seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, k.user)
	if err != nil {
		return unchanged, err
	}
	var as usher.Assignment
	has := false
	for _, x := range seats {
		if x.SubscriptionID == k.sub {
			as, has = x, true
		}
	}
	var grants []usher.GroupAssignment
	if u.Status == usher.UserActive {
		if grants, err = tx.GroupGrantsFor(ctx, a.AccountID, k.user, k.sub); err != nil {
			return unchanged, err
		}
	}
	groups := make([]int64, len(grants))
	for i, g := range grants {
		groups[i] = g.GroupID
	}
	direct := has && as.Direct && u.Status == usher.UserActive

	if !has {
		if len(grants) == 0 {
			left, err := tx.DeleteWaiter(ctx, a.AccountID, k.sub, k.user)
			if err != nil {
				return unchanged, err
			}
			if left {
				if err := s.audit(ctx, tx, a, "seat.wait.end", u, k.sub, nil, nil); err != nil {
					return unchanged, err
				}
			}
			return unchanged, nil
		}
		err := tx.ReserveSeat(ctx, a.AccountID, k.sub)
		if usher.ErrorCode(err) == usher.ENOSEATS {
			added, err := tx.AddWaiter(ctx, a.AccountID, k.sub, k.user, s.Now())
			if err != nil {
				return unchanged, err
			}
			if added {
				if err := s.audit(ctx, tx, a, "seat.wait", u, k.sub, nil, sourcesView{Groups: groups}); err != nil {
					return unchanged, err
				}
			}
			return waiting, nil
		} else if err != nil {
			return unchanged, err
		}
		if _, err := tx.DeleteWaiter(ctx, a.AccountID, k.sub, k.user); err != nil {
			return unchanged, err
		}
		services, benefits := grantsUnion(grants)
		as = usher.Assignment{AccountID: a.AccountID, UserID: u.ID, SubscriptionID: k.sub, Services: services, AssignedAt: s.Now(), Groups: groups}
		if err := tx.InsertAssignment(ctx, as); err != nil {
			return unchanged, err
		}
		if err := s.audit(ctx, tx, a, "seat.assign", u, k.sub, nil, as); err != nil {
			return unchanged, err
		}
		if err := s.addBenefits(ctx, tx, a, u, k.sub, benefits); err != nil {
			return unchanged, err
		}
		return seated, nil
	}

	// The user holds a seat: nobody waits for what they hold.
	if _, err := tx.DeleteWaiter(ctx, a.AccountID, k.sub, k.user); err != nil {
		return unchanged, err
	}
	lost := slices.DeleteFunc(slices.Clone(as.Groups), func(g int64) bool { return slices.Contains(groups, g) })
	if !direct && len(groups) == 0 {
		if err := tx.DeleteAssignment(ctx, a.AccountID, u.ID, k.sub); err != nil {
			return unchanged, err
		}
		if err := tx.ReleaseSeat(ctx, a.AccountID, k.sub); err != nil {
			return unchanged, err
		}
		if err := s.audit(ctx, tx, a, "seat.unassign", u, k.sub, as, nil); err != nil {
			return unchanged, err
		}
		if err := s.dropGroupBenefits(ctx, tx, a, u, k.sub, lost, nil); err != nil {
			return unchanged, err
		}
		return freed, nil
	}
	if direct == as.Direct && slices.Equal(groups, as.Groups) {
		return unchanged, nil
	}
	if err := tx.SetSeatSources(ctx, a.AccountID, u.ID, k.sub, direct, groups); err != nil {
		return unchanged, err
	}
	if err := s.audit(ctx, tx, a, "seat.sources", u, k.sub, sourcesView{as.Direct, orNone(as.Groups)}, sourcesView{direct, groups}); err != nil {
		return unchanged, err
	}
	// Services and benefits follow the groups: a group that joins adds its
	// own; one that leaves takes away what no remaining source gives. A
	// direct seat keeps its services, which its assigner chose.
	gained := make([]usher.GroupAssignment, 0, len(grants))
	for _, g := range grants {
		if !slices.Contains(as.Groups, g.GroupID) {
			gained = append(gained, g)
		}
	}
	services := slices.Clone(as.Services)
	if direct {
		add, _ := grantsUnion(gained)
		services = union(services, add)
	} else {
		services, _ = grantsUnion(grants)
	}
	if !sameSet(services, as.Services) {
		if err := tx.SetAssignmentServices(ctx, a.AccountID, u.ID, k.sub, services); err != nil {
			return unchanged, err
		}
		if err := s.audit(ctx, tx, a, "services.set", u, k.sub, orEmpty(as.Services), services); err != nil {
			return unchanged, err
		}
	}
	_, add := grantsUnion(gained)
	if err := s.addBenefits(ctx, tx, a, u, k.sub, add); err != nil {
		return unchanged, err
	}
	if !direct && len(lost) > 0 {
		if err := s.dropGroupBenefits(ctx, tx, a, u, k.sub, lost, grants); err != nil {
			return unchanged, err
		}
	}
	return unchanged, nil
}

// grantsUnion returns every service and benefit the assignments give.
func grantsUnion(grants []usher.GroupAssignment) (services, benefits []string) {
	services, benefits = []string{}, []string{}
	for _, g := range grants {
		services = union(services, g.Services)
		benefits = union(benefits, g.Benefits)
	}
	return services, benefits
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	if out == nil {
		out = []string{}
	}
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

func orNone(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// addBenefits grants the user benefits of a subscription they lack.
func (s *Service) addBenefits(ctx context.Context, tx Tx, a usher.Actor, u usher.User, subID int64, codes []string) error {
	if len(codes) == 0 {
		return nil
	}
	all, err := tx.BenefitsOfUser(ctx, a.AccountID, u.ID)
	if err != nil {
		return err
	}
	after := union(all[subID], codes)
	if sameSet(after, all[subID]) {
		return nil
	}
	return s.setBenefits(ctx, tx, a, u, subID, all[subID], after)
}

// dropGroupBenefits takes away the benefits that the lost groups gave and
// none of the remaining grants gives.
func (s *Service) dropGroupBenefits(ctx context.Context, tx Tx, a usher.Actor, u usher.User, subID int64, lost []int64, remaining []usher.GroupAssignment) error {
	if len(lost) == 0 {
		return nil
	}
	var gone []string
	for _, gid := range lost {
		gas, err := tx.GroupAssignments(ctx, a.AccountID, gid)
		if err != nil {
			return err
		}
		for _, ga := range gas {
			if ga.SubscriptionID == subID {
				gone = union(gone, ga.Benefits)
			}
		}
	}
	_, keep := grantsUnion(remaining)
	all, err := tx.BenefitsOfUser(ctx, a.AccountID, u.ID)
	if err != nil {
		return err
	}
	before := all[subID]
	after := slices.DeleteFunc(slices.Clone(before), func(c string) bool { return slices.Contains(gone, c) && !slices.Contains(keep, c) })
	if len(after) == len(before) {
		return nil
	}
	return s.setBenefits(ctx, tx, a, u, subID, before, after)
}

// takeSeat removes every source of the user's seat: the direct one, and
// each group's by excluding the user from that group's assignment (audited
// as group.exclude, undone by IncludeMember). The seat is then freed by
// settle.
func (s *Service) takeSeat(ctx context.Context, tx Tx, a usher.Actor, u usher.User, as usher.Assignment) error {
	for _, gid := range as.Groups {
		e := usher.GroupExclusion{AccountID: a.AccountID, GroupID: gid, SubscriptionID: as.SubscriptionID, UserID: u.ID, Email: u.Email, CreatedAt: s.Now()}
		added, err := tx.InsertExclusion(ctx, e)
		if err != nil {
			return err
		}
		if added {
			if err := s.audit(ctx, tx, a, "group.exclude", u, as.SubscriptionID, nil, e); err != nil {
				return err
			}
		}
	}
	if as.Direct {
		if err := tx.SetSeatSources(ctx, a.AccountID, u.ID, as.SubscriptionID, false, as.Groups); err != nil {
			return err
		}
	}
	return nil
}

// lockSeatsOf locks the subscriptions a user holds or waits for, with extra.
func lockSeatsOf(ctx context.Context, tx Tx, a usher.Actor, userID int64, extra ...int64) ([]int64, error) {
	seats, err := tx.AssignmentsOfUser(ctx, a.AccountID, userID)
	if err != nil {
		return nil, err
	}
	waits, err := tx.Waiters(ctx, a.AccountID, WaiterFilter{UserID: userID})
	if err != nil {
		return nil, err
	}
	ids := slices.Clone(extra)
	for _, as := range seats {
		ids = append(ids, as.SubscriptionID)
	}
	for _, w := range waits {
		ids = append(ids, w.SubscriptionID)
	}
	ids = sortedUnique(ids)
	if err := tx.LockSubscriptions(ctx, a.AccountID, ids); err != nil {
		return nil, err
	}
	return ids, nil
}

func sortedUnique(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// keysFor pairs one user with subscriptions.
func keysFor(userID int64, subs []int64) []seatKey {
	out := make([]seatKey, len(subs))
	for i, id := range subs {
		out[i] = seatKey{userID, id}
	}
	return out
}
