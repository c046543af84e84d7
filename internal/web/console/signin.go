package console

import (
	"net/http"
	"strconv"

	"github.com/usherhq/usher/internal/usher"
)

type signInPage struct {
	Email string
	Next  string
	SSO   ssoOffer // single sign-on, see sso.go
	// Account names the account to sign in to, for an email that is a
	// user in several (/signin?account=ID); 0 means the first.
	Account int64
}

// accountParam reads the optional account id; anything else is ignored.
func accountParam(v string) int64 {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
}

// signedOutCookie tells the sign-in page, once, that the browser has just
// signed out.
const signedOutCookie = "usher_signed_out"

func (s *server) signInPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	if v, err := s.viewer(r); err == nil {
		if next == "" {
			next = s.firstPage(v)
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	p := page{Title: "Sign in", Data: signInPage{Next: next, SSO: s.ssoOfferFor(r, next, ""), Account: accountParam(r.URL.Query().Get("account"))}}
	// Signed out, there is no session to carry the message: a short-lived
	// cookie does, read once.
	if c, err := r.Cookie(signedOutCookie); err == nil && c.Value == "1" {
		p.Message = "You have signed out."
		http.SetCookie(w, &http.Cookie{Name: signedOutCookie, Path: "/signin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r)})
	}
	s.render(w, r, http.StatusOK, "signin", p)
}

func (s *server) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, nil, "Bad request", "The form could not be read.")
		return
	}
	email, next, acct := r.PostForm.Get("email"), localPath(r.PostForm.Get("next")), accountParam(r.PostForm.Get("account"))
	token, sess, err := s.auth.SignInTo(r.Context(), acct, email, r.PostForm.Get("password"), s.proxy.ClientAddress(r))
	if err != nil {
		status := errorStatus(usher.ErrorCode(err))
		if status == http.StatusInternalServerError {
			s.renderError(w, r, nil, err)
			return
		}
		s.render(w, r, status, "signin", page{Title: "Sign in", Errors: errorLines(err),
			Data: signInPage{Email: email, Next: next, SSO: s.ssoOfferAfterPassword(r, err, next, email), Account: acct}})
		return
	}
	s.setSessionCookie(w, r, token, sess)
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if err := s.auth.SignOut(r.Context(), c.Value); err != nil {
			s.renderError(w, r, nil, err)
			return
		}
	}
	s.clearSessionCookie(w, r)
	http.SetCookie(w, &http.Cookie{Name: signedOutCookie, Value: "1", Path: "/signin", MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r)})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

type setPasswordPage struct {
	Token string
	User  usher.User
}

func (s *server) setPasswordPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	u, err := s.auth.PasswordLinkUser(r.Context(), token)
	if err != nil {
		s.renderError(w, r, nil, err)
		return
	}
	s.render(w, r, http.StatusOK, "setpassword", page{Title: "Set your password", Data: setPasswordPage{Token: token, User: u}})
}

func (s *server) setPassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, nil, "Bad request", "The form could not be read.")
		return
	}
	token := r.PostForm.Get("token")
	u, err := s.auth.PasswordLinkUser(r.Context(), token)
	if err != nil {
		s.renderError(w, r, nil, err)
		return
	}
	// Typing the password twice is the form's business, not a rule of
	// passwords, so it is checked here.
	if r.PostForm.Get("password") != r.PostForm.Get("repeat") {
		s.render(w, r, http.StatusUnprocessableEntity, "setpassword", page{Title: "Set your password",
			Errors: []string{"repeat: does not match the password"}, Data: setPasswordPage{Token: token, User: u}})
		return
	}
	plain, sess, err := s.auth.UsePasswordLink(r.Context(), token, r.PostForm.Get("password"))
	if err != nil {
		if usher.ErrorCode(err) == usher.EINVALID {
			s.render(w, r, http.StatusUnprocessableEntity, "setpassword", page{Title: "Set your password",
				Errors: errorLines(err), Data: setPasswordPage{Token: token, User: u}})
			return
		}
		s.renderError(w, r, nil, err)
		return
	}
	s.setSessionCookie(w, r, plain, sess)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
