package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// tokenRequest is the body of POST /tokens.
type tokenRequest struct {
	Name          string           `json:"name"`
	Scope         usher.TokenScope `json:"scope"`
	ExpiresAt     *time.Time       `json:"expires_at"`
	ExpiresInDays *int             `json:"expires_in_days"`
}

// tokenResponse is the only time a token's secret is shown.
type tokenResponse struct {
	Secret string `json:"token"`
	usher.Token
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	var in tokenRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, plain, err := s.access.CreateToken(r.Context(), actorFrom(r.Context()), access.TokenInput{
		Name: in.Name, Scope: in.Scope, ExpiresAt: in.ExpiresAt, ExpiresInDays: in.ExpiresInDays})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/tokens/%d", t.ID))
	s.writeJSON(w, r, http.StatusCreated, tokenResponse{Secret: plain, Token: t})
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) {
	tokens, err := s.access.ListTokens(r.Context(), actorFrom(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, access.Page[usher.Token]{Items: orEmpty(tokens)})
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "token")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.access.RevokeToken(r.Context(), actorFrom(r.Context()), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
