package access_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

// TestAccessViewFoldsEveryPart reads a view with every part the statement
// folds (decision 0040): a direct seat with services, benefits and a
// priced subscription with benefits of its own, a seat through a group
// with its name, a waiting list, a subscription the user holds nothing
// of. The GET's read with the token gives the same view as Access, and
// products come with their services whether the catalog is cold or not.
func TestAccessViewFoldsEveryPart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		plain := f.users(t, "holder", 1)[0]
		full := f.subscription(t, f.primary, "C-3", "draftpro", usher.PlanBasic, 1, plain) // its manager holds the one seat
		price, currency := "123.45", "EUR"
		_, err := f.svc.UpdateSubscription(ctx, f.primary, f.sub1.ID, access.SubscriptionPatch{PricePerSeatYear: &price, Currency: &currency})
		must(t, err)
		_, err = f.svc.SetAccess(ctx, f.primary, f.target.ID, []access.AccessChange{
			{SubscriptionID: f.sub1.ID, Assigned: true, Services: []string{"rendering", "cloud_storage"}, Benefits: []string{"web_support"}},
		})
		must(t, err)
		g := f.group(t, f.primary, "Design")
		for _, sub := range []int64{f.sub2.ID, full.ID} {
			_, err := f.svc.AssignGroup(ctx, f.primary, g.ID, sub, access.GroupAssignmentInput{Services: []string{"cloud_storage"}})
			must(t, err)
		}
		_, err = f.svc.AddMembers(ctx, f.primary, g.ID, []int64{f.target.ID})
		must(t, err)

		_, token, err := f.svc.CreateToken(ctx, f.primary, access.TokenInput{Name: "view"})
		must(t, err)
		_, byToken, authErr, err := f.svc.AccessByToken(ctx, token, f.target.ID)
		must(t, authErr)
		must(t, err)
		ua, err := f.svc.Access(ctx, f.primary, f.target.ID)
		must(t, err)
		if !reflect.DeepEqual(ua, byToken) {
			t.Fatalf("Access and AccessByToken differ:\n%+v\n%+v", ua, byToken)
		}

		if len(ua.Subscriptions) != 3 {
			t.Fatalf("got %d subscriptions, want 3: %+v", len(ua.Subscriptions), ua.Subscriptions)
		}
		for i, e := range ua.Subscriptions {
			if i > 0 && e.Subscription.ID <= ua.Subscriptions[i-1].Subscription.ID {
				t.Fatalf("subscriptions not in id order: %+v", ua.Subscriptions)
			}
			p, err := f.svc.Subscription(ctx, f.primary, e.Subscription.ID)
			must(t, err)
			if len(e.Subscription.Product.Services) == 0 || !reflect.DeepEqual(e.Subscription.Product, p.Product) {
				t.Fatalf("product of subscription %d: got %+v, want %+v", e.Subscription.ID, e.Subscription.Product, p.Product)
			}
		}
		one := entry(t, ua, f.sub1.ID)
		s := one.Subscription
		if !one.Assigned || !slices.Equal(one.Services, []string{"cloud_storage", "rendering"}) || !slices.Equal(one.Benefits, []string{"web_support"}) ||
			len(one.Sources) != 1 || !one.Sources[0].Direct || one.Waiting {
			t.Fatalf("direct seat: %+v", one)
		}
		if s.Price == nil || *s.Price != (usher.Price{Cents: 12345, Currency: "EUR"}) || !slices.Equal(s.Benefits, []string{"phone_support", "web_support"}) ||
			s.ContractNumber != "C-1" || s.Plan != usher.PlanStandard || s.Seats != 10 || s.SeatsUsed != 2 || s.TermStart.String() != "2026-01-01" {
			t.Fatalf("subscription 1: %+v", s)
		}
		two := entry(t, ua, f.sub2.ID)
		if !two.Assigned || len(two.Sources) != 1 || two.Sources[0].GroupID != g.ID || two.Sources[0].GroupName != "Design" ||
			!slices.Equal(two.Services, []string{"cloud_storage"}) || two.Subscription.Price != nil {
			t.Fatalf("seat through the group: %+v", two)
		}
		if e := entry(t, ua, full.ID); e.Assigned || !e.Waiting || len(e.Sources) != 0 || len(e.Services) != 0 {
			t.Fatalf("waiting: %+v", e)
		}

		// A user of another account, and one that does not exist, are not
		// found; the token's own user is.
		if _, _, authErr, err := f.svc.AccessByToken(ctx, token, f.otherUser.ID); authErr != nil || usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("other account's user: %v, %v", authErr, err)
		}
		if _, _, authErr, err := f.svc.AccessByToken(ctx, token, 1<<40); authErr != nil || usher.ErrorCode(err) != usher.ENOTFOUND {
			t.Fatalf("no such user: %v, %v", authErr, err)
		}
	})
}
