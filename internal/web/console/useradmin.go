package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// Users admin: add, edit, disable, delete and roles, through the same
// access service and permission matrix as the REST API. Each action
// answers with a redirect and a message in the session, or the page again
// with what was wrong.

// roleChoice is one entry of the person page's "Grant a role" list: a role,
// and the contract for per-contract roles, as "role" or "role:subID".
type roleChoice struct{ Value, Label string }

// roleHeld is a role the person holds, with what removing it sends.
type roleHeld struct {
	Label, Role string // Role as roleChoice.Value
}

// readForm reads a small form, answering a bad request itself.
func (s *server) readForm(w http.ResponseWriter, r *http.Request, v viewer) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, &v, "Bad request", "The form could not be read.")
		return false
	}
	return true
}

// actionError shows why an action was refused: input problems on the page
// they came from, anything else on a page of its own.
func (s *server) actionError(w http.ResponseWriter, r *http.Request, v viewer, err error) {
	if usher.ErrorCode(err) != usher.EINVALID && usher.ErrorCode(err) != usher.ECONFLICT {
		s.renderError(w, r, &v, err)
		return
	}
	s.render(w, r, errorStatus(usher.ErrorCode(err)), "status", page{Title: "Nothing was changed", ErrorsTitle: "Nothing was changed:",
		Errors: errorLines(err), Data: statusPage{Heading: "Nothing was changed", Text: "Go back and correct the form."}})
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request, v viewer) {
	if !s.readForm(w, r, v) {
		return
	}
	email, name := strings.TrimSpace(r.PostForm.Get("email")), strings.TrimSpace(r.PostForm.Get("name"))
	u, err := s.access.CreateUser(r.Context(), v.Actor, access.UserInput{Email: &email, Name: &name})
	if err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, fmt.Sprintf("/users/%d", u.ID), displayName(u)+" has been added.")
}

func (s *server) updateUser(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	in := access.UserInput{}
	if r.PostForm.Has("email") {
		e := strings.TrimSpace(r.PostForm.Get("email"))
		in.Email = &e
	}
	if r.PostForm.Has("name") {
		n := strings.TrimSpace(r.PostForm.Get("name"))
		in.Name = &n
	}
	if r.PostForm.Has("reclaim_exempt_shown") {
		// An unticked box is not sent: the hidden field says the form had it.
		exempt := r.PostForm.Get("reclaim_exempt") != ""
		in.ReclaimExempt = &exempt
	}
	msg := "Your changes have been saved."
	if st := r.PostForm.Get("status"); st != "" {
		status := usher.UserStatus(st)
		in.Status = &status
		msg = "The user has been disabled: they can no longer sign in."
		if status == usher.UserActive {
			msg = "The user has been enabled."
		}
	}
	if _, err := s.access.UpdateUser(r.Context(), v.Actor, id, in); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, fmt.Sprintf("/users/%d", id), msg)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	u, err := s.access.User(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	if err := s.access.DeleteUser(r.Context(), v.Actor, id); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, "/users", displayName(u.User)+" has been deleted, with their seats.")
}

// roleGrant reads "role" or "role:subscriptionID".
func roleGrant(userID int64, raw string) usher.RoleGrant {
	role, sub, _ := strings.Cut(raw, ":")
	g := usher.RoleGrant{UserID: userID, Role: usher.Role(role)}
	g.SubscriptionID, _ = strconv.ParseInt(sub, 10, 64)
	return g
}

func (s *server) grantRole(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	g := roleGrant(id, r.PostForm.Get("role"))
	if err := s.access.GrantRole(r.Context(), v.Actor, g); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, fmt.Sprintf("/users/%d", id), roleName(g.Role)+" role granted.")
}

func (s *server) revokeRole(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	g := roleGrant(id, r.PostForm.Get("role"))
	if err := s.access.RevokeRole(r.Context(), v.Actor, g); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, fmt.Sprintf("/users/%d", id), roleName(g.Role)+" role removed.")
}

// roleChoices lists the roles the viewer may grant, per contract where the
// role is.
func roleChoices(v viewer, subs []usher.Subscription) []roleChoice {
	var out []roleChoice
	for _, role := range []usher.Role{usher.RolePrimaryAdmin, usher.RoleSecondaryAdmin} {
		if access.Can(v.Actor, grantActionOf(role), 0) {
			out = append(out, roleChoice{Value: string(role), Label: roleName(role)})
		}
	}
	for _, role := range []usher.Role{usher.RoleContractManager, usher.RoleSoftwareCoordinator} {
		for _, sub := range subs {
			if access.Can(v.Actor, grantActionOf(role), sub.ID) {
				out = append(out, roleChoice{Value: fmt.Sprintf("%s:%d", role, sub.ID), Label: roleName(role) + " of " + sub.Product.Name + " " + sub.ContractNumber})
			}
		}
	}
	return out
}

// grantActionOf is the permission granting role needs, as the access
// service checks it.
func grantActionOf(role usher.Role) access.Action {
	switch role {
	case usher.RolePrimaryAdmin:
		return access.GrantPrimaryAdmin
	case usher.RoleSecondaryAdmin:
		return access.GrantAdmin
	case usher.RoleContractManager:
		return access.GrantManager
	default:
		return access.AppointCoordinator
	}
}
