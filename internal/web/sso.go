package web

import (
	"net/http"

	"github.com/usherhq/usher/internal/sso"
)

// ssoView is an account's single sign-on settings as the API shows them:
// the client secret only as "set", with the URLs to register and hand out.
type ssoView struct {
	sso.Settings
	ClientSecret string `json:"client_secret"` // always "set": the secret is never shown
	RedirectURL  string `json:"redirect_url"`
	SignInURL    string `json:"sign_in_url"`
}

// ssoChange answers PUT and DELETE: what the call changed and a sentence.
type ssoChange struct {
	*ssoView
	Change  string `json:"change"` // "turned_on", "edited" or "turned_off"
	Message string `json:"message"`
}

// ssoRequest is the body of PUT. The client secret may be left out when
// editing, to keep the stored one.
type ssoRequest struct {
	ProviderName   string   `json:"provider_name"`
	Issuer         string   `json:"issuer"`
	ClientID       string   `json:"client_id"`
	ClientSecret   string   `json:"client_secret"`
	AllowedDomains []string `json:"allowed_domains"`
	CreateUsers    bool     `json:"create_users"`
	RequireSSO     bool     `json:"require_sso"`
}

func (s *server) ssoView(st sso.Settings) *ssoView {
	return &ssoView{Settings: st, ClientSecret: "set", RedirectURL: s.sso.RedirectURL(), SignInURL: s.sso.SignInURL(st.AccountID)}
}

func (s *server) getSSO(w http.ResponseWriter, r *http.Request) {
	st, err := s.sso.Settings(r.Context(), actorFrom(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.ssoView(st))
}

func (s *server) setSSO(w http.ResponseWriter, r *http.Request) {
	var in ssoRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, created, err := s.sso.Set(r.Context(), actorFrom(r.Context()), sso.Input{
		ProviderName: in.ProviderName, Issuer: in.Issuer, ClientID: in.ClientID, ClientSecret: in.ClientSecret,
		AllowedDomains: in.AllowedDomains, CreateUsers: in.CreateUsers, RequireSSO: in.RequireSSO,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := ssoChange{ssoView: s.ssoView(st), Change: "edited", Message: "Your changes have been saved."}
	if created {
		out.Change, out.Message = "turned_on", "Single sign-on has been set up."
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

func (s *server) turnOffSSO(w http.ResponseWriter, r *http.Request) {
	if err := s.sso.TurnOff(r.Context(), actorFrom(r.Context())); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, ssoChange{Change: "turned_off",
		Message: "Single sign-on has been turned off. Everyone signs in with a password again."})
}
