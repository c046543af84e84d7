package web

import (
	"net/http"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// accessResponse is access.UserAccess with subscriptions rendered as the
// subscription endpoints render them.
type accessResponse struct {
	User          usher.User                   `json:"user"`
	Subscriptions []subscriptionAccessResponse `json:"subscriptions"`
}

type subscriptionAccessResponse struct {
	access.SubscriptionAccess
	Subscription subscriptionResponse `json:"subscription"` // shadows the embedded one
}

func accessJSON(ua access.UserAccess) accessResponse {
	out := accessResponse{User: ua.User, Subscriptions: make([]subscriptionAccessResponse, len(ua.Subscriptions))}
	for i, e := range ua.Subscriptions {
		e.Services, e.Benefits = orEmpty(e.Services), orEmpty(e.Benefits)
		out.Subscriptions[i] = subscriptionAccessResponse{SubscriptionAccess: e, Subscription: subscriptionJSON(e.Subscription)}
	}
	return out
}

func (s *server) getAccess(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ua, err := s.access.Access(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, accessJSON(ua))
}

// setAccessRequest is the body of PUT /users/{id}/access. Subscriptions is a
// pointer so a body without it is refused rather than read as "remove
// everything": a PUT that clears access must say so with [].
type setAccessRequest struct {
	Subscriptions *[]access.AccessChange `json:"subscriptions"`
}

func (s *server) setAccess(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in setAccessRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Subscriptions == nil {
		s.writeError(w, r, (&usher.Problems{{Field: "subscriptions", Reason: "is required; send [] to remove all access you manage"}}).Err())
		return
	}
	ua, err := s.access.SetAccess(r.Context(), actorFrom(r.Context()), id, *in.Subscriptions)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, accessJSON(ua))
}

// unassignRequest is the body of POST /unassign.
type unassignRequest struct {
	Items []access.UnassignItem `json:"items"`
}

func (s *server) unassign(w http.ResponseWriter, r *http.Request) {
	var in unassignRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.access.Unassign(r.Context(), actorFrom(r.Context()), in.Items)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}
