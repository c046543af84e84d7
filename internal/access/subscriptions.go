package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// ListProducts returns the catalog. Anyone signed in may read it.
func (s *Service) ListProducts(ctx context.Context, a usher.Actor) ([]usher.Product, error) {
	var out []usher.Product
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.ListProducts(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return out, nil
}

// NewSubscription is the input of CreateSubscription.
type NewSubscription struct {
	Product           string     `json:"product"` // product code
	Plan              usher.Plan `json:"plan"`
	Seats             *int       `json:"seats"`
	ContractNumber    string     `json:"contract_number"`
	TermStart         usher.Date `json:"term_start"`
	TermEnd           usher.Date `json:"term_end"`
	Benefits          []string   `json:"benefits"`
	ContractManagerID int64      `json:"contract_manager_id"`
	// AssignManagerSeat gives the contract manager a seat; nil means yes.
	AssignManagerSeat *bool `json:"assign_manager_seat"`
	// PricePerSeatYear ("1200.00") and Currency ("EUR") go together; both
	// empty for no price.
	PricePerSeatYear string `json:"price_per_seat_year"`
	Currency         string `json:"currency"`
}

// parsePrice validates a price and its currency; both empty is no price.
func parsePrice(p *usher.Problems, amount, currency string) *usher.Price {
	amount, currency = strings.TrimSpace(amount), strings.ToUpper(strings.TrimSpace(currency))
	if amount == "" && currency == "" {
		return nil
	}
	cents, err := usher.ParseAmount(amount)
	if err != nil {
		p.Add("price_per_seat_year", "must be an amount such as 1200.50 (at most two decimals), with currency")
	}
	if !usher.ValidCurrency(currency) {
		p.Add("currency", "must be an ISO 4217 code such as EUR or USD, with price_per_seat_year")
	}
	return &usher.Price{Cents: cents, Currency: currency}
}

// SubscriptionPatch is the input of UpdateSubscription; nil fields stay
// as they are. The price per seat per year and its currency go together;
// both "" remove the price.
type SubscriptionPatch struct {
	Seats            *int        `json:"seats"`
	TermStart        *usher.Date `json:"term_start"`
	TermEnd          *usher.Date `json:"term_end"`
	PricePerSeatYear *string     `json:"price_per_seat_year"`
	Currency         *string     `json:"currency"`
}

// maxHoldersNamed bounds how many seat holders a refusal to lower seats
// names.
const maxHoldersNamed = 10

// UpdateSubscription changes a contract's seats, term or price. Seats
// never drop below those in use: lowering them further is refused, naming
// who holds the seats that must be unassigned first, the longest inactive
// first. More seats go to the subscription's waiters at once.
func (s *Service) UpdateSubscription(ctx context.Context, a usher.Actor, id int64, in SubscriptionPatch) (usher.Subscription, error) {
	var p usher.Problems
	if in.Seats == nil && in.TermStart == nil && in.TermEnd == nil && in.PricePerSeatYear == nil && in.Currency == nil {
		p.Add("seats", "nothing to change: give seats, term_start, term_end, or price_per_seat_year with currency")
	}
	if (in.PricePerSeatYear == nil) != (in.Currency == nil) {
		p.Add("price_per_seat_year", "and currency are required together (both \"\" to remove the price)")
	}
	if in.Seats != nil && (*in.Seats < 1 || *in.Seats > MaxSeats) {
		p.Addf("seats", "must be between 1 and %d", MaxSeats)
	}
	if in.TermStart != nil && in.TermStart.IsZero() {
		p.Add("term_start", "is required (YYYY-MM-DD)")
	}
	if in.TermEnd != nil && in.TermEnd.IsZero() {
		p.Add("term_end", "is required (YYYY-MM-DD)")
	}
	var price *usher.Price
	if in.PricePerSeatYear != nil && in.Currency != nil {
		price = parsePrice(&p, *in.PricePerSeatYear, *in.Currency)
	}
	if err := p.Err(); err != nil {
		return usher.Subscription{}, err
	}
	if !Can(a, ViewSubscription, id) {
		return usher.Subscription{}, usher.Errorf(usher.ENOTFOUND, "subscription %d not found", id)
	}
	if !Can(a, EditSubscription, id) {
		return usher.Subscription{}, forbidden("change subscriptions")
	}
	var out usher.Subscription
	err := s.store.Write(ctx, func(tx Tx) error {
		if err := tx.LockSubscriptions(ctx, a.AccountID, []int64{id}); err != nil {
			return err
		}
		before, err := tx.SubscriptionByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		out = before
		if in.Seats != nil || in.TermStart != nil || in.TermEnd != nil {
			if err := s.changeTerms(ctx, tx, a, before, in, &out); err != nil {
				return err
			}
		}
		if in.PricePerSeatYear != nil {
			if err := tx.SetSubscriptionPrice(ctx, a.AccountID, id, price); err != nil {
				return err
			}
			out.Price = price
			if err := s.audit(ctx, tx, a, "subscription.price", usher.User{}, id, before.Price, price); err != nil {
				return err
			}
		}
		if out.Seats > before.Seats {
			if err := s.seatWaiters(ctx, tx, a, id); err != nil {
				return err
			}
			// Waiters seated just now count as used.
			if out, err = tx.SubscriptionByID(ctx, a.AccountID, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return usher.Subscription{}, fmt.Errorf("update subscription %d: %w", id, err)
	}
	return out, nil
}

// subscriptionTerms is what subscription.update records before and after.
type subscriptionTerms struct {
	Seats     int        `json:"seats"`
	TermStart usher.Date `json:"term_start"`
	TermEnd   usher.Date `json:"term_end"`
}

// changeTerms applies the seats and term of in to before, into out.
func (s *Service) changeTerms(ctx context.Context, tx Tx, a usher.Actor, before usher.Subscription, in SubscriptionPatch, out *usher.Subscription) error {
	if in.Seats != nil {
		out.Seats = *in.Seats
	}
	if in.TermStart != nil {
		out.TermStart = *in.TermStart
	}
	if in.TermEnd != nil {
		out.TermEnd = *in.TermEnd
	}
	if !out.TermEnd.After(out.TermStart.Time) {
		return (&usher.Problems{{Field: "term_end", Reason: "must be after term_start (" + out.TermStart.String() + ")"}}).Err()
	}
	ok, err := tx.SetSubscriptionTerms(ctx, a.AccountID, before.ID, out.Seats, out.TermStart, out.TermEnd)
	if err != nil {
		return err
	}
	if !ok {
		cur, err := tx.SubscriptionByID(ctx, a.AccountID, before.ID)
		if err != nil {
			return err
		}
		return s.tooFewSeats(ctx, tx, a, cur, out.Seats)
	}
	was := subscriptionTerms{before.Seats, before.TermStart, before.TermEnd}
	now := subscriptionTerms{out.Seats, out.TermStart, out.TermEnd}
	if was == now {
		return nil
	}
	return s.audit(ctx, tx, a, "subscription.update", usher.User{}, before.ID, was, now)
}

// tooFewSeats refuses seats below those in use of sub, naming who must be
// unassigned first: the longest inactive holders, as many as must go.
func (s *Service) tooFewSeats(ctx context.Context, tx Tx, a usher.Actor, sub usher.Subscription, seats int) error {
	excess := sub.SeatsUsed - seats
	holders, err := tx.SeatHolders(ctx, a.AccountID, sub.ID, min(excess, maxHoldersNamed))
	if err != nil {
		return err
	}
	names := make([]string, len(holders))
	for i, h := range holders {
		names[i] = h.User.Email + " (" + h.lastUseText() + ")"
	}
	whom := "unassign " + countOf(excess, "seat") + " first"
	if len(holders) > 0 {
		whom += ", the longest inactive being " + strings.Join(names, ", ")
		if excess > len(holders) {
			whom += ", …"
		}
	}
	return (&usher.Problems{{Field: "seats", Reason: fmt.Sprintf("cannot be %d while %s in use: %s", seats, countOf(sub.SeatsUsed, "seat")+plural(sub.SeatsUsed, " is", " are"), whom)}}).Err()
}

// lastUseText says when the holder last used the product, for messages.
func (h SeatHolder) lastUseText() string {
	if h.LastUsed == nil {
		return "never used since assigned on " + h.AssignedAt.UTC().Format(time.DateOnly)
	}
	return "last used on " + h.LastUsed.String()
}

// SeatHoldersToFree lists at most limit holders of the subscription's
// seats, the longest inactive first: whom to unassign before lowering its
// seats.
func (s *Service) SeatHoldersToFree(ctx context.Context, a usher.Actor, id int64, limit int) ([]SeatHolder, error) {
	if !Can(a, ViewSubscription, id) {
		return nil, usher.Errorf(usher.ENOTFOUND, "subscription %d not found", id)
	}
	var out []SeatHolder
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.SeatHolders(ctx, a.AccountID, id, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("seat holders of subscription %d: %w", id, err)
	}
	return out, nil
}

func countOf(n int, word string) string {
	return fmt.Sprintf("%d %s", n, plural(n, word, word+"s"))
}

// MaxSeats bounds a subscription's seat count.
const MaxSeats = 1_000_000

// CreateSubscription records a contract. Its contract manager gets the role
// and, unless told otherwise, one of its seats.
func (s *Service) CreateSubscription(ctx context.Context, a usher.Actor, in NewSubscription) (usher.Subscription, error) {
	var p usher.Problems
	if in.Product == "" {
		p.Add("product", "is required (a product code from GET /api/v1/products)")
	} else {
		usher.CheckText(&p, "product", in.Product, 1, 0)
	}
	if !in.Plan.Valid() {
		p.Add("plan", "must be one of standard, premium, basic")
	}
	if in.Seats == nil {
		p.Add("seats", "is required")
	} else if *in.Seats < 1 || *in.Seats > MaxSeats {
		p.Addf("seats", "must be between 1 and %d", MaxSeats)
	}
	in.ContractNumber = strings.TrimSpace(in.ContractNumber)
	usher.CheckText(&p, "contract_number", in.ContractNumber, 1, 64)
	if in.TermStart.IsZero() {
		p.Add("term_start", "is required (YYYY-MM-DD)")
	}
	if in.TermEnd.IsZero() {
		p.Add("term_end", "is required (YYYY-MM-DD)")
	} else if !in.TermStart.IsZero() && !in.TermEnd.After(in.TermStart.Time) {
		p.Add("term_end", "must be after term_start")
	}
	seen := map[string]bool{}
	for i, b := range in.Benefits {
		switch {
		case !usher.ValidBenefit(b):
			p.Addf(fmt.Sprintf("benefits[%d]", i), "%q is not a benefit; known: %s", b, benefitCodes())
		case seen[b]:
			p.Addf(fmt.Sprintf("benefits[%d]", i), "%q is listed twice", b)
		}
		seen[b] = true
	}
	if in.ContractManagerID <= 0 {
		p.Add("contract_manager_id", "is required: the user who manages this contract")
	}
	price := parsePrice(&p, in.PricePerSeatYear, in.Currency)
	if err := p.Err(); err != nil {
		return usher.Subscription{}, err
	}
	if !Can(a, CreateSubscription, 0) {
		return usher.Subscription{}, forbidden("create subscriptions")
	}
	sub := usher.Subscription{
		AccountID: a.AccountID, Plan: in.Plan, Seats: *in.Seats, ContractNumber: in.ContractNumber,
		TermStart: in.TermStart, TermEnd: in.TermEnd, Benefits: slices.Clone(in.Benefits), Price: price, CreatedAt: s.Now(),
	}
	if sub.Benefits == nil {
		sub.Benefits = []string{}
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		prod, err := tx.ProductByCode(ctx, in.Product)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			return (&usher.Problems{{Field: "product", Reason: fmt.Sprintf("%q is not a product code", in.Product)}}).Err()
		} else if err != nil {
			return err
		}
		sub.Product = prod
		mgr, err := tx.UserByID(ctx, a.AccountID, in.ContractManagerID)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			return (&usher.Problems{{Field: "contract_manager_id", Reason: "no such user in this account"}}).Err()
		} else if err != nil {
			return err
		}
		if err := tx.CreateSubscription(ctx, &sub); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "subscription.create", usher.User{}, sub.ID, nil, sub); err != nil {
			return err
		}
		g := usher.RoleGrant{UserID: mgr.ID, Role: usher.RoleContractManager, SubscriptionID: sub.ID}
		if err := tx.GrantRole(ctx, a.AccountID, g); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "role.grant", mgr, sub.ID, nil, g); err != nil {
			return err
		}
		if in.AssignManagerSeat == nil || *in.AssignManagerSeat {
			if mgr.Status != usher.UserActive {
				return usher.Errorf(usher.ECONFLICT, "contract manager %s is disabled and cannot take a seat", mgr.Email)
			}
			if err := s.assignSeat(ctx, tx, a, mgr, sub, nil); err != nil {
				return err
			}
			sub.SeatsUsed = 1
		}
		return nil
	})
	if err != nil {
		return usher.Subscription{}, fmt.Errorf("create subscription: %w", err)
	}
	return sub, nil
}

func benefitCodes() string {
	codes := make([]string, len(usher.Benefits))
	for i, b := range usher.Benefits {
		codes[i] = b.Code
	}
	return strings.Join(codes, ", ")
}

// VisibleSubscriptions returns the ids the actor may see with action, or nil
// when they may see all of them.
func VisibleSubscriptions(a usher.Actor, action Action) []int64 {
	if allSubscriptions(a, action) {
		return nil
	}
	ids := []int64{}
	for _, g := range a.Grants {
		if g.Role.PerSubscription() && matrix[g.Role][action] && !slices.Contains(ids, g.SubscriptionID) {
			ids = append(ids, g.SubscriptionID)
		}
	}
	return ids
}

// ListSubscriptions returns the subscriptions the actor may see, ordered by id.
func (s *Service) ListSubscriptions(ctx context.Context, a usher.Actor, cursor string, limit int) (Page[usher.Subscription], error) {
	var out Page[usher.Subscription]
	var p usher.Problems
	limit = checkLimit(&p, limit)
	var after int64
	if err := s.cursors.Decode(ctx, &p, CursorSubscriptions, a.AccountID, cursor, &after); err != nil {
		return out, fmt.Errorf("list subscriptions: %w", err)
	}
	if err := p.Err(); err != nil {
		return out, err
	}
	if !CanAny(a, ViewSubscription) {
		return out, forbidden("list subscriptions")
	}
	err := s.store.Read(ctx, func(tx Tx) error {
		subs, err := tx.ListSubscriptions(ctx, a.AccountID, SubscriptionFilter{IDs: VisibleSubscriptions(a, ViewSubscription), AfterID: after, Limit: limit + 1})
		if err != nil {
			return err
		}
		if len(subs) > limit {
			subs = subs[:limit]
			if out.NextCursor, err = s.cursors.Encode(ctx, CursorSubscriptions, a.AccountID, subs[limit-1].ID); err != nil {
				return err
			}
		}
		out.Items = subs
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("list subscriptions: %w", err)
	}
	if out.Items == nil {
		out.Items = []usher.Subscription{}
	}
	return out, nil
}

// Subscription returns one subscription the actor may see.
func (s *Service) Subscription(ctx context.Context, a usher.Actor, id int64) (usher.Subscription, error) {
	if !Can(a, ViewSubscription, id) {
		return usher.Subscription{}, usher.Errorf(usher.ENOTFOUND, "subscription %d not found", id)
	}
	var out usher.Subscription
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.SubscriptionByID(ctx, a.AccountID, id)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("get subscription %d: %w", id, err)
	}
	return out, nil
}

// SubscriptionByContract finds a subscription the actor may see by its
// contract number, for the command line and imports.
func (s *Service) SubscriptionByContract(ctx context.Context, a usher.Actor, number string) (usher.Subscription, error) {
	var out usher.Subscription
	err := s.store.Read(ctx, func(tx Tx) error {
		subs, err := tx.ListSubscriptions(ctx, a.AccountID, SubscriptionFilter{IDs: VisibleSubscriptions(a, ViewSubscription), Limit: MaxSubscriptionsPerAccount})
		if err != nil {
			return err
		}
		for _, sub := range subs {
			if strings.EqualFold(sub.ContractNumber, strings.TrimSpace(number)) {
				out = sub
				return nil
			}
		}
		return usher.Errorf(usher.ENOTFOUND, "no contract numbered %s", number)
	})
	return out, err
}
