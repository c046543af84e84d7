package console

import (
	"net/http"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

type subscriptionsPage struct {
	Rows      []subscriptionRow
	CanCreate bool // "Add a contract"
}

type subscriptionRow struct {
	usher.Subscription
	// CanRelease offers "Release my seat": the viewer holds a seat here and
	// may change this contract's seats.
	CanRelease bool
	// Waiting counts the people waiting for a seat.
	Waiting int
	// CanEdit offers "Change" (seats, term and price).
	CanEdit bool
}

// subscriptionsPageLimit shows every contract an account plausibly has on
// one page; contracts are few compared with users.
const subscriptionsPageLimit = access.MaxLimit

func (s *server) subscriptions(w http.ResponseWriter, r *http.Request, v viewer) {
	list, err := s.access.ListSubscriptions(r.Context(), v.Actor, "", subscriptionsPageLimit)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	own, err := s.access.Access(r.Context(), v.Actor, v.Actor.UserID)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	mine := map[int64]bool{}
	for _, e := range own.Subscriptions {
		if e.Assigned && e.Editable {
			mine[e.Subscription.ID] = true
		}
	}
	waiting, err := s.access.WaitingCounts(r.Context(), v.Actor)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	p := page{Title: "Subscriptions"}
	data := subscriptionsPage{CanCreate: access.Can(v.Actor, access.CreateSubscription, 0)}
	for _, sub := range list.Items {
		data.Rows = append(data.Rows, subscriptionRow{Subscription: sub, CanRelease: mine[sub.ID], Waiting: waiting[sub.ID],
			CanEdit: access.Can(v.Actor, access.EditSubscription, sub.ID)})
	}
	p.Data = data
	s.render(w, r, http.StatusOK, "subscriptions", p)
}

// releaseSeat gives up the viewer's own seat of one contract.
func (s *server) releaseSeat(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	_, err := s.access.Unassign(r.Context(), v.Actor, []access.UnassignItem{{UserID: v.Actor.UserID, SubscriptionID: id}})
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	msg := "Your seat has been released."
	if sub, err := s.access.Subscription(r.Context(), v.Actor, id); err == nil {
		msg = "Your seat on contract " + sub.ContractNumber + " has been released."
	}
	s.redirectWith(w, r, v, "/subscriptions", msg)
}
