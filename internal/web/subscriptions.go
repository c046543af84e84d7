package web

import (
	"net/http"
	"strconv"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// subscriptionResponse is a subscription as the API shows it, with the seats
// still available spelled out.
type subscriptionResponse struct {
	usher.Subscription
	SeatsAvailable int `json:"seats_available"`
}

func subscriptionJSON(sub usher.Subscription) subscriptionResponse {
	sub.Benefits = orEmpty(sub.Benefits)
	sub.Product.Services = orEmpty(sub.Product.Services)
	return subscriptionResponse{Subscription: sub, SeatsAvailable: sub.SeatsAvailable()}
}

func (s *server) listProducts(w http.ResponseWriter, r *http.Request) {
	products, err := s.access.ListProducts(r.Context(), actorFrom(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i := range products {
		products[i].Services = orEmpty(products[i].Services)
	}
	// The catalog is small and shared by every account, so it is one page.
	s.writeJSON(w, r, http.StatusOK, access.Page[usher.Product]{Items: orEmpty(products)})
}

func (s *server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.ListSubscriptions(r.Context(), actorFrom(r.Context()), cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := access.Page[subscriptionResponse]{Items: make([]subscriptionResponse, len(page.Items)), NextCursor: page.NextCursor}
	for i, sub := range page.Items {
		out.Items[i] = subscriptionJSON(sub)
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

// newSubscriptionRequest reads the term dates as strings, shadowing the
// embedded usher.Date fields: usher.Date's own decoding error does not say
// which field it was, and a bad date should be a 422 naming it.
type newSubscriptionRequest struct {
	access.NewSubscription
	TermStart *string `json:"term_start"`
	TermEnd   *string `json:"term_end"`
}

func (s *server) createSubscription(w http.ResponseWriter, r *http.Request) {
	var in newSubscriptionRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var dates usher.Problems
	in.NewSubscription.TermStart = parseDate(&dates, "term_start", in.TermStart)
	in.NewSubscription.TermEnd = parseDate(&dates, "term_end", in.TermEnd)
	sub, err := s.access.CreateSubscription(r.Context(), actorFrom(r.Context()), in.NewSubscription)
	if err != nil {
		s.writeError(w, r, withFieldReasons(err, dates))
		return
	}
	w.Header().Set("Location", "/api/v1/subscriptions/"+strconv.FormatInt(sub.ID, 10))
	s.writeJSON(w, r, http.StatusCreated, subscriptionJSON(sub))
}

// parseDate reads an optional YYYY-MM-DD date. A bad one is left zero, which
// the domain refuses as missing; withFieldReasons then puts the real reason.
func parseDate(p *usher.Problems, field string, raw *string) usher.Date {
	if raw == nil || *raw == "" {
		return usher.Date{}
	}
	d, err := usher.ParseDate(*raw)
	if err != nil {
		p.Addf(field, "%q is not a date in the form YYYY-MM-DD", *raw)
	}
	return d
}

// withFieldReasons replaces the domain's reason for a field with the edge's
// when the edge knows better why the field is wrong, keeping every other
// problem the domain found, so the answer still lists them all at once.
func withFieldReasons(err error, edge usher.Problems) error {
	if len(edge) == 0 || usher.ErrorCode(err) != usher.EINVALID {
		return err
	}
	fields := usher.ErrorFields(err)
	out := make(usher.Problems, 0, len(fields))
	for _, f := range fields {
		for _, e := range edge {
			if e.Field == f.Field {
				f.Reason = e.Reason
			}
		}
		out = append(out, f)
	}
	return out.Err()
}

func (s *server) getSubscription(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "subscription")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sub, err := s.access.Subscription(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, subscriptionJSON(sub))
}

func (s *server) updateSubscription(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "subscription")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in subscriptionPatchRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var dates usher.Problems
	in.SubscriptionPatch.TermStart = parseOptionalDate(&dates, "term_start", in.TermStart)
	in.SubscriptionPatch.TermEnd = parseOptionalDate(&dates, "term_end", in.TermEnd)
	sub, err := s.access.UpdateSubscription(r.Context(), actorFrom(r.Context()), id, in.SubscriptionPatch)
	if err != nil {
		s.writeError(w, r, withFieldReasons(err, dates))
		return
	}
	s.writeJSON(w, r, http.StatusOK, subscriptionJSON(sub))
}

// subscriptionPatchRequest reads the term dates as strings, as
// newSubscriptionRequest does, so a bad date is a 422 naming its field.
type subscriptionPatchRequest struct {
	access.SubscriptionPatch
	TermStart *string `json:"term_start"`
	TermEnd   *string `json:"term_end"`
}

// parseOptionalDate is parseDate for a field that may be absent (nil stays
// nil); a present but bad date becomes a zero date, which the domain
// refuses, naming the field.
func parseOptionalDate(p *usher.Problems, field string, raw *string) *usher.Date {
	if raw == nil {
		return nil
	}
	d := parseDate(p, field, raw)
	return &d
}
