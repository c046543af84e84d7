package scim

import (
	"net/http"
	"strconv"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

func userID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usher.Errorf(usher.ENOTFOUND, "user %q not found", r.PathValue("id"))
	}
	return id, nil
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) {
	start, count, err := paging(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := userMatch(r.URL.Query().Get("filter"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	users, total, err := s.access.ProvisionedUsers(r.Context(), actorFrom(r.Context()), m, start-1, count)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	base := s.baseURL(r)
	out := listResponse{Schemas: []string{msgList}, TotalResults: total, StartIndex: start, ItemsPerPage: len(users), Resources: make([]any, len(users))}
	for i, u := range users {
		out.Resources[i] = userResource(u, base)
	}
	s.write(w, r, http.StatusOK, out)
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) {
	id, err := userID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.access.ProvisionedUser(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeUser(w, r, http.StatusOK, u)
}

func (s *server) writeUser(w http.ResponseWriter, r *http.Request, status int, u access.ProvisionedUser) {
	res := userResource(u, s.baseURL(r))
	if status == http.StatusCreated {
		w.Header().Set("Location", res["meta"].(map[string]any)["location"].(string))
	}
	s.write(w, r, status, res)
}

// readUser reads a User resource from the body.
func (s *server) readUser(w http.ResponseWriter, r *http.Request) (access.Identity, error) {
	body, err := s.decode(w, r)
	if err != nil {
		return access.Identity{}, err
	}
	return identityOf(normalize(body).(map[string]any))
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request) {
	in, err := s.readUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.access.ProvisionUser(r.Context(), actorFrom(r.Context()), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeUser(w, r, http.StatusCreated, u)
}

// replaceUser is PUT: the body is the whole user (Okta sends it so).
func (s *server) replaceUser(w http.ResponseWriter, r *http.Request) {
	id, err := userID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := s.readUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.access.UpdateProvisionedUser(r.Context(), actorFrom(r.Context()), id, func(access.ProvisionedUser) (access.Identity, error) {
		return in, nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeUser(w, r, http.StatusOK, u)
}

// patchUser applies the operations to the stored user, inside the access
// service's transaction, and stores the result as a PUT would.
func (s *server) patchUser(w http.ResponseWriter, r *http.Request) {
	id, err := userID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.decode(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := patchOps(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	base := s.baseURL(r)
	u, err := s.access.UpdateProvisionedUser(r.Context(), actorFrom(r.Context()), id, func(cur access.ProvisionedUser) (access.Identity, error) {
		res := userResource(cur, base)
		if err := applyPatch(res, ops); err != nil {
			return access.Identity{}, err
		}
		return identityOf(res)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeUser(w, r, http.StatusOK, u)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, err := userID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.access.DeleteProvisionedUser(r.Context(), actorFrom(r.Context()), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
