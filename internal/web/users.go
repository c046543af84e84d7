package web

import (
	"encoding/csv"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

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
	w.Header().Add("Vary", "Accept")
	q := UserQueryOf(r.URL.Query())
	if wantsCSV(r) {
		if err := WriteUsersCSV(w, r, s.access, actorFrom(r.Context()), q, s.log); err != nil {
			s.writeError(w, r, err)
		}
		return
	}
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.access.FindUsers(r.Context(), actorFrom(r.Context()), q, cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, list)
}

// UserQueryOf reads the users list's search, filters and sort from a query
// string, for the API and the console alike; the access service checks them.
func UserQueryOf(v url.Values) access.UserQuery {
	return access.UserQuery{
		Q: v.Get("q"), Product: v.Get("product"), Role: usher.Role(v.Get("role")),
		Status: usher.UserStatus(v.Get("status")), Sort: v.Get("sort"),
	}
}

// usersCSVHeader names the users export's columns.
var usersCSVHeader = []string{"id", "name", "email", "status", "created_at"}

// WriteUsersCSV streams every user q selects, in its order, to w as a CSV
// attachment, a page of the list at a time. Like WriteReportCSV it returns
// an error only while nothing has been written; a failure later cuts the
// connection, so a short file never looks complete.
func WriteUsersCSV(w http.ResponseWriter, r *http.Request, acc *access.Service, a usher.Actor, q access.UserQuery, log *slog.Logger) error {
	extendDeadlines(w)
	cw := csv.NewWriter(w)
	started := false
	head := func() error {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="users.csv"`)
		w.WriteHeader(http.StatusOK)
		started = true
		return cw.Write(usersCSVHeader)
	}
	// csv.Writer writes through a small buffer, so rows reach the client
	// as they are made and memory stays flat however many users there are.
	row := func(u usher.User) error {
		return cw.Write([]string{strconv.FormatInt(u.ID, 10), csvCell(u.Name), csvCell(u.Email), string(u.Status), u.CreatedAt.UTC().Format(time.RFC3339)})
	}
	err := acc.EachUser(r.Context(), a, q, head, row)
	if err == nil {
		cw.Flush()
		err = cw.Error()
	}
	if err == nil || !started {
		return err
	}
	if r.Context().Err() == nil && log != nil {
		log.ErrorContext(r.Context(), "users export failed", slog.Any("err", err))
	}
	panic(http.ErrAbortHandler)
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
