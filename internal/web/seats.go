package web

import (
	"net/http"
	"strings"

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
	s.writeAccess(w, r, http.StatusOK, ua)
}

// getAccessByToken is getAccess behind bearer in one read of the database:
// the token, its holder and the view (access.Service.AccessByToken), with
// the same checks in the same order. A request it cannot answer so (no
// bearer token, a bad id or query) goes to slow, the same handler behind
// bearer, so its error is the same as on every other route.
func (s *server) getAccessByToken(slow http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		id, err := pathID(r, "id", "user")
		if !ok || err != nil || CheckQueryText(r.URL.Query()) != nil {
			slow(w, r)
			return
		}
		a, ua, authErr, err := s.access.AccessByToken(r.Context(), token, id)
		if r, ok = s.admit(w, r, a, authErr); !ok {
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeAccess(w, r, http.StatusOK, ua)
	}
}

// writeAccess answers with a user's access and its version as the ETag,
// which If-Match on the writes below names.
func (s *server) writeAccess(w http.ResponseWriter, r *http.Request, status int, ua access.UserAccess) {
	w.Header().Set("ETag", `"`+ua.Version+`"`)
	s.writeJSON(w, r, status, accessJSON(ua))
}

// ifMatch reads If-Match as the versions the change requires: nil when
// the header is absent or "*" (any version of an existing user will do).
// Weak or unquoted tags are kept as they are, so they match no version and
// the change is refused (If-Match compares strongly).
func ifMatch(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("If-Match") {
		for _, tag := range strings.Split(h, ",") {
			tag = strings.TrimSpace(tag)
			switch {
			case tag == "":
			case tag == "*":
				return nil
			case len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"':
				out = append(out, tag[1:len(tag)-1])
			default:
				out = append(out, tag)
			}
		}
	}
	return out
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
	ua, err := s.access.SetAccess(r.Context(), actorFrom(r.Context()), id, *in.Subscriptions, ifMatch(r)...)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAccess(w, r, http.StatusOK, ua)
}

// addSeat gives a user one seat, keeping the rest of their access.
func (s *server) addSeat(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in access.SeatChange
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	ua, err := s.access.AddSeat(r.Context(), actorFrom(r.Context()), id, in, ifMatch(r)...)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAccess(w, r, http.StatusCreated, ua)
}

// removeSeat takes one seat of a user, with its services and benefits.
func (s *server) removeSeat(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	subID, err := pathID(r, "subscription_id", "subscription")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ua, err := s.access.RemoveSeat(r.Context(), actorFrom(r.Context()), id, subID, ifMatch(r)...)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAccess(w, r, http.StatusOK, ua)
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
