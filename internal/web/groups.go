package web

import (
	"net/http"
	"strconv"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

func (s *server) listGroups(w http.ResponseWriter, r *http.Request) {
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.ListGroups(r.Context(), actorFrom(r.Context()), r.URL.Query().Get("q"), cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

func (s *server) createGroup(w http.ResponseWriter, r *http.Request) {
	var in access.GroupInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.access.CreateGroup(r.Context(), actorFrom(r.Context()), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/groups/"+strconv.FormatInt(g.ID, 10))
	s.writeGroup(w, r, http.StatusCreated, g.ID)
}

// writeGroup answers with the group as GET /groups/{id} shows it.
func (s *server) writeGroup(w http.ResponseWriter, r *http.Request, status int, id int64) {
	g, err := s.access.Group(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, status, g)
}

func (s *server) getGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeGroup(w, r, http.StatusOK, id)
}

func (s *server) updateGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in access.GroupInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.access.UpdateGroup(r.Context(), actorFrom(r.Context()), id, in); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeGroup(w, r, http.StatusOK, id)
}

func (s *server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.access.DeleteGroup(r.Context(), actorFrom(r.Context()), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listGroupMembers(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.GroupMembers(r.Context(), actorFrom(r.Context()), id, cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

// addMembersRequest is the body of POST /groups/{id}/members.
type addMembersRequest struct {
	UserIDs []int64 `json:"user_ids"`
}

func (s *server) addGroupMembers(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in addMembersRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.access.AddMembers(r.Context(), actorFrom(r.Context()), id, in.UserIDs)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}

func (s *server) removeGroupMember(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	userID, err := pathID(r, "user_id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.access.RemoveMembers(r.Context(), actorFrom(r.Context()), id, []int64{userID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res.Removed == 0 {
		s.writeError(w, r, usher.Errorf(usher.ENOTFOUND, "user %d is not a member of group %d", userID, id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) assignGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	subID, err := pathID(r, "subscription_id", "subscription")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in access.GroupAssignmentInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.access.AssignGroup(r.Context(), actorFrom(r.Context()), id, subID, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, g)
}

func (s *server) unassignGroup(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	subID, err := pathID(r, "subscription_id", "subscription")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.access.UnassignGroup(r.Context(), actorFrom(r.Context()), id, subID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// includeMember ends an exclusion made by unassigning a group-held seat.
func (s *server) includeMember(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "group")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	subID, err := pathID(r, "subscription_id", "subscription")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	userID, err := pathID(r, "user_id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.access.IncludeMember(r.Context(), actorFrom(r.Context()), id, subID, userID); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) subscriptionWaiting(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "subscription")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ws, err := s.access.Waiting(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Waiting lists are bounded by the members of the subscription's groups.
	s.writeJSON(w, r, http.StatusOK, access.Page[usher.Waiter]{Items: ws})
}
