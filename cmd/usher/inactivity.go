package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// newInactivity returns what counts inactive users for notification emails.
//
// The real one is the usage service, whose storage (db.Usage) is not part
// of this build yet. Once it is, this function becomes
//
//	return usage.New(db.Usage(), usage.Config{Now: now})
//
// and seatInactivity below can go. Until then no usage is ever recorded, so
// a seat's latest activity is its assignment: seatInactivity applies the
// same rule (usage.SeatStatus) with no last use, which is what the usage
// service answers for an account that has sent no usage.
func newInactivity(db *store.DB, now func() time.Time) notify.Inactivity {
	return seatInactivity{seats: access.New(db.Access(), now), now: now}
}

// seatHolders is what seatInactivity reads: the account's users and the
// seats each one holds. *access.Service implements it.
type seatHolders interface {
	Account(ctx context.Context, a usher.Actor) (usher.Account, error)
	ListUsers(ctx context.Context, a usher.Actor, q, cursor string, limit int) (access.Page[usher.User], error)
	Access(ctx context.Context, a usher.Actor, userID int64) (access.UserAccess, error)
}

// seatInactivity counts inactive seats from assignments alone. It reads one
// user at a time, which is fine for the accounts of a single team; the
// usage service answers from one query.
type seatInactivity struct {
	seats seatHolders
	now   func() time.Time
}

// InactiveSummary implements notify.Inactivity.
func (s seatInactivity) InactiveSummary(ctx context.Context, accountID int64, r usage.Range, firstUsers int) (usage.InactiveSummary, error) {
	out := usage.InactiveSummary{Range: r, ByProduct: []usage.ProductSummary{}, FirstUsers: []usher.User{}}
	system := usher.System(accountID)
	acct, err := s.seats.Account(ctx, system)
	if err != nil {
		return out, fmt.Errorf("inactive summary of account %d: %w", accountID, err)
	}
	loc := acct.Location()
	cutoff := r.Cutoff(usage.DayOf(s.now(), loc))
	products := map[string]*usage.ProductSummary{}
	cursor := ""
	for {
		page, err := s.seats.ListUsers(ctx, system, "", cursor, access.MaxLimit)
		if err != nil {
			return out, fmt.Errorf("inactive summary of account %d: %w", accountID, err)
		}
		for _, u := range page.Items { // by name, as the Usage Report lists them
			held, err := s.seats.Access(ctx, system, u.ID)
			if err != nil {
				return out, fmt.Errorf("inactive summary of account %d: user %d: %w", accountID, u.ID, err)
			}
			inactive := false
			seen := map[string]bool{} // products this user counts in already
			for _, sub := range held.Subscriptions {
				if !sub.Assigned || sub.AssignedAt == nil {
					continue
				}
				if usage.SeatStatus(sub.Subscription.Plan, usage.DayOf(*sub.AssignedAt, loc), nil, cutoff) != usage.StatusInactive {
					continue
				}
				p := products[sub.Subscription.Product.Code]
				if p == nil {
					p = &usage.ProductSummary{Product: sub.Subscription.Product.Code, ProductName: sub.Subscription.Product.Name}
					products[p.Product] = p
				}
				p.InactiveSeats++
				if !seen[p.Product] { // two contracts of one product: one user
					seen[p.Product] = true
					p.InactiveUsers++
				}
				out.InactiveSeats++
				inactive = true
			}
			if inactive {
				out.InactiveUsers++
				if len(out.FirstUsers) < firstUsers {
					out.FirstUsers = append(out.FirstUsers, usher.User{ID: u.ID, Name: u.Name, Email: u.Email})
				}
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	for _, p := range products {
		out.ByProduct = append(out.ByProduct, *p)
	}
	slices.SortFunc(out.ByProduct, func(a, b usage.ProductSummary) int {
		return cmp.Or(cmp.Compare(a.ProductName, b.ProductName), cmp.Compare(a.Product, b.Product))
	})
	return out, nil
}
