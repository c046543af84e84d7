package web

import (
	"net/http"
	"strconv"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// meResponse is who the caller is.
type meResponse struct {
	User    usher.User        `json:"user"`
	Roles   []usher.RoleGrant `json:"roles"`
	Account usher.Account     `json:"account"`
	Scope   usher.TokenScope  `json:"scope"`
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	a := actorFrom(r.Context())
	u, err := s.access.User(r.Context(), a, a.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	acct, err := s.access.Account(r.Context(), a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, meResponse{User: u.User, Roles: orEmpty(u.Roles), Account: acct, Scope: a.Scope})
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) {
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.ListUsers(r.Context(), actorFrom(r.Context()), r.URL.Query().Get("q"), cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request) {
	var in access.UserInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.access.CreateUser(r.Context(), actorFrom(r.Context()), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+strconv.FormatInt(u.ID, 10))
	s.writeJSON(w, r, http.StatusCreated, access.UserWithRoles{User: u, Roles: []usher.RoleGrant{}})
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeUser(w, r, id)
}

// writeUser answers with the user and their roles, as GET /users/{id} does.
func (s *server) writeUser(w http.ResponseWriter, r *http.Request, id int64) {
	u, err := s.access.User(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u.Roles = orEmpty(u.Roles)
	s.writeJSON(w, r, http.StatusOK, u)
}

func (s *server) updateUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in access.UserInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.access.UpdateUser(r.Context(), actorFrom(r.Context()), id, in); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeUser(w, r, id)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.access.DeleteUser(r.Context(), actorFrom(r.Context()), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// roleRequest is the body of POST and DELETE /users/{id}/roles.
type roleRequest struct {
	Role           usher.Role `json:"role"`
	SubscriptionID int64      `json:"subscription_id"`
}

func (s *server) grantRole(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in roleRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	g := usher.RoleGrant{UserID: id, Role: in.Role, SubscriptionID: in.SubscriptionID}
	if err := s.access.GrantRole(r.Context(), actorFrom(r.Context()), g); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, g)
}

// revokeRole takes the grant from a JSON body or, since some clients cannot
// send a body with DELETE, from the query parameters role and subscription_id.
func (s *server) revokeRole(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "user")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in roleRequest
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
		if err := s.decodeJSON(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	} else {
		var p usher.Problems
		in.Role = usher.Role(r.URL.Query().Get("role"))
		in.SubscriptionID = queryID(&p, r, "subscription_id")
		if err := p.Err(); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	g := usher.RoleGrant{UserID: id, Role: in.Role, SubscriptionID: in.SubscriptionID}
	if err := s.access.RevokeRole(r.Context(), actorFrom(r.Context()), g); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// orEmpty makes a nil slice encode as [] rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
