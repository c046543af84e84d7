package web

import (
	"net/http"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// tokenRequest is the body of POST /tokens.
type tokenRequest struct {
	Name  string           `json:"name"`
	Scope usher.TokenScope `json:"scope"`
}

// tokenResponse is the only time a token's secret is shown.
type tokenResponse struct {
	Token     string           `json:"token"`
	ID        int64            `json:"id"`
	Name      string           `json:"name"`
	Scope     usher.TokenScope `json:"scope"`
	CreatedAt time.Time        `json:"created_at"`
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	var in tokenRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, plain, err := s.access.CreateToken(r.Context(), actorFrom(r.Context()), in.Name, in.Scope)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, tokenResponse{Token: plain, ID: t.ID, Name: t.Name, Scope: t.Scope, CreatedAt: t.CreatedAt})
}

func (s *server) auditLog(w http.ResponseWriter, r *http.Request) {
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	userID := queryID(&p, r, "user_id")
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.AuditLog(r.Context(), actorFrom(r.Context()), userID, r.URL.Query().Get("action"), cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

func (s *server) getAccount(w http.ResponseWriter, r *http.Request) {
	acct, err := s.access.Account(r.Context(), actorFrom(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, acct)
}

func (s *server) updateAccount(w http.ResponseWriter, r *http.Request) {
	var in access.AccountSettings
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	acct, err := s.access.UpdateAccount(r.Context(), actorFrom(r.Context()), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, acct)
}
