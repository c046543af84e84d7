package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/usher"
)

// Single sign-on in the console. The sign-in page learns which account's
// provider to offer from /signin?account=ID (the link admins hand out),
// from the account remembered after an earlier single sign-on in this
// browser, or by asking for the work email (/signin/sso). The state of a
// sign-in in progress is kept by the sso service in the database; the
// browser holds it in a short-lived cookie too, so only the browser that
// started a sign-in can finish it.

const (
	ssoSettingsPath = "/settings/sso"
	// stateCookie binds a sign-in in progress to this browser. It is
	// SameSite=Lax: the provider's redirect back is a top-level GET, which
	// carries Lax cookies.
	stateCookie = "usher_sso_state"
	// accountCookie remembers the account of the last single sign-on, so
	// the sign-in page offers its provider straight away. It is no secret.
	accountCookie = "usher_sso_account"
)

func (s *server) ssoRoutes(mux *http.ServeMux) {
	if s.sso == nil {
		return
	}
	mux.HandleFunc("GET /signin/sso", s.ssoFind)
	mux.HandleFunc("GET /signin/oidc", s.ssoStart)
	mux.HandleFunc("GET "+sso.CallbackPath, s.ssoCallback)
	mux.HandleFunc("GET "+ssoSettingsPath, s.signedIn(s.ssoSettingsPage))
	mux.HandleFunc("POST "+ssoSettingsPath, s.signedIn(s.saveSSOSettings))
	mux.HandleFunc("POST "+ssoSettingsPath+"/off", s.signedIn(s.turnOffSSO))
}

// ssoOffer is the single sign-on part of the sign-in page.
type ssoOffer struct {
	Provider *sso.Provider // the account's provider, when the page knows it
	StartURL string        // the "Sign in with …" link
	Enabled  bool          // the server does single sign-on at all
}

// ssoOfferFor works out which provider the sign-in page offers: the
// ?account= one, else the one remembered in this browser.
func (s *server) ssoOfferFor(r *http.Request, next, hint string) ssoOffer {
	if s.sso == nil {
		return ssoOffer{}
	}
	off := ssoOffer{Enabled: true}
	id, err := strconv.ParseInt(r.URL.Query().Get("account"), 10, 64)
	if err != nil {
		c, cerr := r.Cookie(accountCookie)
		if cerr != nil {
			return off
		}
		if id, err = strconv.ParseInt(c.Value, 10, 64); err != nil {
			return off
		}
	}
	return s.offerOf(r, id, next, hint)
}

func (s *server) offerOf(r *http.Request, accountID int64, next, hint string) ssoOffer {
	off := ssoOffer{Enabled: s.sso != nil}
	if s.sso == nil || accountID <= 0 {
		return off
	}
	p, err := s.sso.ProviderOf(r.Context(), accountID)
	if err != nil {
		return off
	}
	q := url.Values{"account": {strconv.FormatInt(accountID, 10)}}
	if next != "" {
		q.Set("next", next)
	}
	if hint != "" {
		q.Set("hint", hint)
	}
	off.Provider, off.StartURL = &p, "/signin/oidc?"+q.Encode()
	return off
}

// ssoFind finds the account of a work email and shows its provider.
func (s *server) ssoFind(w http.ResponseWriter, r *http.Request) {
	email, next := r.URL.Query().Get("email"), localPath(r.URL.Query().Get("next"))
	p, err := s.sso.ProviderForEmail(r.Context(), email)
	if err != nil {
		s.signInFailed(w, r, err, signInPage{Email: email, Next: next, SSO: ssoOffer{Enabled: true}})
		return
	}
	s.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Data: signInPage{
		Email: email, Next: next, SSO: s.offerOf(r, p.AccountID, next, email)}})
}

// signInFailed shows the sign-in page again with err, or an error page
// for internal errors.
func (s *server) signInFailed(w http.ResponseWriter, r *http.Request, err error, data signInPage) {
	status := errorStatus(usher.ErrorCode(err))
	if status == http.StatusInternalServerError {
		s.renderError(w, r, nil, err)
		return
	}
	s.render(w, r, status, "signin", page{Title: "Sign in", Errors: errorLines(err), Data: data})
}

func (s *server) ssoStart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	next := localPath(q.Get("next"))
	id, err := strconv.ParseInt(q.Get("account"), 10, 64)
	if err != nil || id <= 0 {
		s.signInFailed(w, r, (&usher.Problems{{Field: "account", Reason: "must be an account id"}}).Err(), signInPage{Next: next, SSO: ssoOffer{Enabled: true}})
		return
	}
	start, err := s.sso.Begin(r.Context(), id, next, q.Get("hint"))
	if err != nil {
		s.signInFailed(w, r, err, signInPage{Next: next, SSO: s.offerOf(r, id, next, "")})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: stateCookie, Value: start.State, Path: "/signin/oidc", MaxAge: int(sso.DefaultLoginTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r),
	})
	http.Redirect(w, r, start.URL, http.StatusSeeOther)
}

func (s *server) ssoCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cb := sso.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
	if c, err := r.Cookie(stateCookie); err == nil {
		cb.BrowserState = c.Value
	}
	// The cookie has done its work whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/signin/oidc", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r)})
	res, err := s.sso.Finish(r.Context(), cb)
	if err == nil {
		var token string
		token, sess, serr := s.auth.StartSession(r.Context(), res.AccountID, res.User.ID)
		if serr == nil {
			s.setSessionCookie(w, r, token, sess)
			http.SetCookie(w, &http.Cookie{Name: accountCookie, Value: strconv.FormatInt(res.AccountID, 10), Path: "/signin",
				MaxAge: int((365 * 24 * time.Hour).Seconds()), HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r)})
			next := res.Next
			if next == "" {
				next = "/"
			}
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		err = serr
	}
	s.signInFailed(w, r, err, signInPage{Next: res.Next, SSO: s.offerOf(r, res.AccountID, res.Next, "")})
}

// ---- the settings page (primary admins) ----

type ssoSettingsPage struct {
	Set         bool // single sign-on is set up
	Settings    sso.Settings
	Domains     string // the allowed domains, comma separated, as the field shows them
	RedirectURL string
	SignInURL   string
	SecretSet   bool // a client secret is stored, so the field may stay empty
}

func (s *server) ssoSettingsPage(w http.ResponseWriter, r *http.Request, v viewer) {
	st, err := s.sso.Settings(r.Context(), v.Actor)
	set := err == nil
	if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
		s.renderError(w, r, &v, err)
		return
	}
	p := page{Title: "Single sign-on", Data: s.ssoPageData(v, st, set)}
	s.render(w, r, http.StatusOK, "sso", p)
}

func (s *server) ssoPageData(v viewer, st sso.Settings, set bool) ssoSettingsPage {
	return ssoSettingsPage{Set: set, Settings: st, Domains: strings.Join(st.AllowedDomains, ", "), SecretSet: set,
		RedirectURL: s.sso.RedirectURL(), SignInURL: s.sso.SignInURL(v.Actor.AccountID)}
}

// splitDomains reads a list typed with commas, spaces or new lines.
func splitDomains(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' || r == ';' })
}

func (s *server) saveSSOSettings(w http.ResponseWriter, r *http.Request, v viewer) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, &v, "Bad request", "The form could not be read.")
		return
	}
	f := r.PostForm
	in := sso.Input{
		ProviderName: f.Get("provider_name"), Issuer: f.Get("issuer"), ClientID: f.Get("client_id"),
		ClientSecret: f.Get("client_secret"), AllowedDomains: splitDomains(f.Get("allowed_domains")),
		CreateUsers: f.Get("create_users") == "on", RequireSSO: f.Get("require_sso") == "on",
	}
	_, created, err := s.sso.Set(r.Context(), v.Actor, in)
	if err != nil {
		if usher.ErrorCode(err) != usher.EINVALID {
			s.renderError(w, r, &v, err)
			return
		}
		prev, perr := s.sso.Settings(r.Context(), v.Actor)
		data := s.ssoPageData(v, sso.Settings{ProviderName: in.ProviderName, Issuer: in.Issuer, ClientID: in.ClientID,
			AllowedDomains: in.AllowedDomains, CreateUsers: in.CreateUsers, RequireSSO: in.RequireSSO}, perr == nil)
		data.Settings.CreatedAt = prev.CreatedAt
		s.render(w, r, http.StatusUnprocessableEntity, "sso", page{Title: "Single sign-on", Errors: errorLines(err),
			ErrorsTitle: "Nothing was saved:", Data: data})
		return
	}
	msg := "Your changes have been saved."
	if created {
		msg = "Single sign-on has been set up."
	}
	s.redirectWith(w, r, v, ssoSettingsPath, msg)
}

func (s *server) turnOffSSO(w http.ResponseWriter, r *http.Request, v viewer) {
	if err := s.sso.TurnOff(r.Context(), v.Actor); err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	s.redirectWith(w, r, v, ssoSettingsPath, "Single sign-on has been turned off. Everyone signs in with a password again.")
}

// canManageSSO is whether the navigation offers the settings page.
func (s *server) canManageSSO(v viewer) bool {
	return s.sso != nil && access.Can(v.Actor, access.ManageSSO, 0)
}

// ssoOfferAfterPassword is the offer shown when a password sign-in was
// refused: when single sign-on is required, the provider of the person's
// account, found by their email.
func (s *server) ssoOfferAfterPassword(r *http.Request, err error, next, email string) ssoOffer {
	off := s.ssoOfferFor(r, next, email)
	if off.Provider != nil || s.sso == nil || usher.ErrorCode(err) != usher.EFORBIDDEN {
		return off
	}
	p, perr := s.sso.ProviderForEmail(r.Context(), email)
	if perr != nil {
		return off
	}
	return s.offerOf(r, p.AccountID, next, email)
}
