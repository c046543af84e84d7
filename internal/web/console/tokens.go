package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

const tokensPath = "/tokens"

type tokenRow struct {
	usher.Token
	Created, LastUsed, Expires string
	Mine                       bool
}

type tokensPage struct {
	Tokens    []tokenRow
	AllOfThem bool // the viewer sees every token of the account
	Scopes    []option
	Expiries  []option
	Name      string
}

type tokenCreatedPage struct {
	Token  usher.Token
	Secret string
	Expiry string
}

// tokenExpiries are the lifetimes the form offers, in days; "" never ends.
var tokenExpiries = []option{{"30", "30 days", false}, {"90", "90 days", true}, {"365", "1 year", false}, {"", "Never", false}}

var scopeLabels = map[usher.TokenScope]string{
	usher.ScopeFull:   "Full: everything you may do",
	usher.ScopeRead:   "Read: look, never change",
	usher.ScopeIngest: "Ingest: send usage events only",
	usher.ScopeSCIM:   "SCIM: user provisioning only",
}

func (s *server) tokensPage(w http.ResponseWriter, r *http.Request, v viewer) {
	msg, err := s.takeFlash(r)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	s.renderTokens(w, r, v, http.StatusOK, msg, nil, "", "", "90")
}

func (s *server) renderTokens(w http.ResponseWriter, r *http.Request, v viewer, status int, msg string, errs []string, name string, scope usher.TokenScope, days string) {
	tokens, err := s.access.ListTokens(r.Context(), v.Actor)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	loc := v.Account.Location()
	d := tokensPage{AllOfThem: access.Can(v.Actor, access.ViewTokens, 0), Name: name}
	for _, t := range tokens {
		d.Tokens = append(d.Tokens, tokenRow{Token: t, Mine: t.UserID == v.Actor.UserID,
			Created: usher.HumanTime(t.CreatedAt, loc), LastUsed: when(t.LastUsedAt, loc, "Never"), Expires: when(t.ExpiresAt, loc, "Never")})
	}
	if scope == "" {
		scope = usher.ScopeFull
	}
	for _, sc := range usher.TokenScopes {
		// Offer only the scopes the viewer may hold; the service decides.
		if sc == usher.ScopeIngest && !access.Can(v.Actor, access.IngestUsage, 0) || sc == usher.ScopeSCIM && !access.Can(v.Actor, access.ManageUsers, 0) {
			continue
		}
		d.Scopes = append(d.Scopes, option{string(sc), scopeLabels[sc], sc == scope})
	}
	for _, e := range tokenExpiries {
		e.Selected = e.Value == days
		d.Expiries = append(d.Expiries, e)
	}
	s.render(w, r, status, "tokens", page{Title: "API tokens", Message: msg, Errors: errs, ErrorsTitle: "No token was made:", Data: d})
}

func when(t *time.Time, loc *time.Location, none string) string {
	if t == nil {
		return none
	}
	return usher.HumanTime(*t, loc)
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, v viewer) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, &v, "Bad request", "The form could not be read.")
		return
	}
	name, scope, days := r.PostForm.Get("name"), usher.TokenScope(r.PostForm.Get("scope")), r.PostForm.Get("expires_in_days")
	in := access.TokenInput{Name: name, Scope: scope}
	if days != "" {
		n, err := strconv.Atoi(days)
		if err != nil {
			n = -1 // the service names the field
		}
		in.ExpiresInDays = &n
	}
	t, secret, err := s.access.CreateToken(r.Context(), v.Actor, in)
	if err != nil {
		if status := errorStatus(usher.ErrorCode(err)); status != http.StatusInternalServerError {
			s.renderTokens(w, r, v, status, "", errorLines(err), name, scope, days)
			return
		}
		s.renderError(w, r, &v, err)
		return
	}
	// The secret goes in this page only: never in a URL, a redirect or a
	// message kept in the session.
	s.render(w, r, http.StatusCreated, "token_created", page{Title: "API token created",
		Data: tokenCreatedPage{Token: t, Secret: secret, Expiry: when(t.ExpiresAt, v.Account.Location(), "never")}})
}

// tokenOf finds a token the viewer may revoke, from the path.
func (s *server) tokenOf(r *http.Request, v viewer) (usher.Token, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return usher.Token{}, usher.Errorf(usher.ENOTFOUND, "token %q not found", r.PathValue("id"))
	}
	tokens, err := s.access.ListTokens(r.Context(), v.Actor)
	if err != nil {
		return usher.Token{}, err
	}
	for _, t := range tokens {
		if t.ID == id {
			return t, nil
		}
	}
	return usher.Token{}, usher.Errorf(usher.ENOTFOUND, "token %d not found", id)
}

func (s *server) confirmRevokeToken(w http.ResponseWriter, r *http.Request, v viewer) {
	t, err := s.tokenOf(r, v)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	s.render(w, r, http.StatusOK, "token_revoke", page{Title: "Revoke API token", Data: t})
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, v viewer) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderError(w, r, &v, usher.Errorf(usher.ENOTFOUND, "token %q not found", r.PathValue("id")))
		return
	}
	t, err := s.access.RevokeToken(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	if err := s.setFlash(r, "The token “"+t.Name+"” has been revoked. Requests with it are refused from now on."); err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	http.Redirect(w, r, tokensPath, http.StatusSeeOther)
}

// setFlash keeps a message for the session's next page; takeFlash reads
// it once. Messages live in the session, never in URLs, where they could be
// forged into a link or linger in the history.
func (s *server) setFlash(r *http.Request, msg string) error {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil // no session, no next page to show it on
	}
	return s.auth.SetFlash(r.Context(), c.Value, msg)
}

func (s *server) takeFlash(r *http.Request) (string, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", nil
	}
	return s.auth.TakeFlash(r.Context(), c.Value)
}
