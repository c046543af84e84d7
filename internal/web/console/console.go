// Package console is Usher's admin console: server-rendered pages
// (html/template) with embedded CSS and a few lines of JavaScript that the
// pages work without. Every page asks the same services the REST API uses
// (access, usage, notify); the console decides nothing itself and only
// hides controls the services say a person cannot use.
package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/auth"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

//go:embed templates/*.html templates/parts/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Config holds what the console depends on.
type Config struct {
	Access *access.Service
	Auth   *auth.Service
	// Usage answers the Usage Report; nil leaves the report out.
	Usage *usage.Service
	// Notify keeps usage notification settings; nil leaves the Usage
	// Notifications page out.
	Notify *notify.Service
	// Reclaim serves the Keep my seat links and the Reclaim pages; nil
	// leaves them out.
	Reclaim *reclaim.Service
	// SSO runs single sign-on with OpenID Connect; nil leaves it out.
	SSO    *sso.Service
	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // the clock of date pickers; nil = time.Now
	// SecureCookies marks the session cookie Secure even on plain HTTP
	// requests, for servers behind a proxy that ends TLS (a https base URL).
	// Requests that arrive over TLS get Secure cookies anyway. It also
	// makes https the only scheme the cross-site check accepts.
	SecureCookies bool
	// TrustedProxies may name the client (X-Forwarded-For), for the
	// per-client sign-in limit, and its scheme (X-Forwarded-Proto).
	TrustedProxies web.TrustedProxies
}

// cookieName is the session cookie. It holds a random token whose hash the
// database keeps; it means nothing without the database.
const cookieName = "usher_session"

type server struct {
	access  *access.Service
	auth    *auth.Service
	usage   *usage.Service
	notify  *notify.Service
	sso     *sso.Service
	reclaim *reclaim.Service
	log     *slog.Logger
	now     func() time.Time
	secure  bool
	proxy   web.TrustedProxies
	pages   map[string]*template.Template
}

// New returns the console's handler, to be mounted at "/". State-changing
// requests from other origins are refused (see crossSite); the session
// cookie is SameSite=Lax on top of that.
func New(cfg Config) (http.Handler, error) {
	s := &server{access: cfg.Access, auth: cfg.Auth, usage: cfg.Usage, notify: cfg.Notify, sso: cfg.SSO, reclaim: cfg.Reclaim, log: cfg.Logger, now: cfg.Now,
		secure: cfg.SecureCookies, proxy: cfg.TrustedProxies}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	s.routes(mux)
	inner := s.text(mux)
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.crossSite(r) {
			s.renderStatus(w, r, http.StatusForbidden, nil, "Request refused",
				"This request came from another site, so it was refused. Nothing was changed.")
			return
		}
		inner.ServeHTTP(w, r)
	})
	return s.headers(guarded), nil
}

// crossSite reports whether a state-changing request came from another
// origin. Browsers say so in Sec-Fetch-Site, which compares scheme, host
// and port. Older ones send only Origin, which must then match this
// server's scheme as well as its host: http.CrossOriginProtection compares
// the host alone, so a page on http://host could post to https://host.
// Requests with neither header come from no browser and carry no cookie a
// browser was tricked into sending.
func (s *server) crossSite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	o, err := url.Parse(origin)
	return err != nil || o.Host != r.Host || o.Scheme != s.scheme(r)
}

// scheme is how browsers reach the console: https when the public URL is
// https, whatever hop ended TLS.
func (s *server) scheme(r *http.Request) string {
	if s.secure {
		return "https"
	}
	return s.proxy.Scheme(r)

}

// maxForm bounds a console form body.
const maxForm = 1 << 20

// text refuses, with 400 naming the field, a request whose query parameters
// or form fields break the text rules of usher.TextProblem, before any page
// or the database sees them. Passwords are only held to valid UTF-8 without
// NUL: they are never shown or stored as text, and refusing a character a
// password already holds would lock its owner out.
func (s *server) text(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, formLimit(r.URL.Path))
			if err := r.ParseForm(); err != nil {
				s.renderStatus(w, r, http.StatusBadRequest, nil, "Bad request", "The form could not be read.")
				return
			}
		}
		fields := url.Values{}
		for name, vs := range r.URL.Query() {
			fields[name] = vs
		}
		var msgs []string
		for name, vs := range r.PostForm {
			if !strings.Contains(name, "password") {
				fields[name] = vs
				continue
			}
			for _, v := range vs {
				if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
					msgs = append(msgs, name+" is not valid UTF-8 text without NUL characters")
					break
				}
			}
		}
		for _, f := range usher.ErrorFields(web.CheckQueryText(fields)) {
			msgs = append(msgs, f.Field+" "+f.Reason)
		}
		if len(msgs) > 0 {
			s.renderStatus(w, r, http.StatusBadRequest, nil, "Bad request",
				"Nothing was done: "+strings.Join(msgs, "; ")+".")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) routes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "favicon.svg")
	})

	mux.HandleFunc("GET /{$}", s.signedIn(s.home))
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signIn)
	mux.HandleFunc("POST /signout", s.signOut)
	mux.HandleFunc("GET /set-password", s.setPasswordPage)
	mux.HandleFunc("POST /set-password", s.setPassword)

	if s.reclaim != nil {
		mux.HandleFunc("GET /keep/{token}", s.keepPage)
		mux.HandleFunc("POST /keep/{token}", s.keep)
		mux.HandleFunc("GET /reclaims", s.signedIn(s.reclaimHistory))
		mux.HandleFunc("GET /reclaim-policies", s.signedIn(s.policies))
		mux.HandleFunc("GET /reclaim-policies/{id}/preview", s.signedIn(s.preview))
		mux.HandleFunc("GET /reclaim-policies/new", s.signedIn(s.newPolicy))
		mux.HandleFunc("POST /reclaim-policies", s.signedIn(s.savePolicy))
		mux.HandleFunc("GET /reclaim-policies/{id}", s.signedIn(s.policyPage))
		mux.HandleFunc("POST /reclaim-policies/{id}", s.signedIn(s.savePolicy))
		mux.HandleFunc("POST /reclaim-policies/{id}/delete", s.signedIn(s.deletePolicy))
		mux.HandleFunc("POST /reclaims/{id}/undo", s.signedIn(s.undoReclaim))
	}
	mux.HandleFunc("GET /users", s.signedIn(s.users))
	mux.HandleFunc("POST /users", s.signedIn(s.createUser))
	mux.HandleFunc("GET /users.csv", s.signedIn(s.usersCSV))
	mux.HandleFunc("POST /users/disable", s.signedIn(s.disableUsers))
	mux.HandleFunc("GET /users/{id}", s.signedIn(s.person))
	mux.HandleFunc("POST /users/{id}", s.signedIn(s.updateUser))
	mux.HandleFunc("POST /users/{id}/delete", s.signedIn(s.deleteUser))
	mux.HandleFunc("POST /users/{id}/roles", s.signedIn(s.grantRole))
	mux.HandleFunc("POST /users/{id}/roles/remove", s.signedIn(s.revokeRole))
	mux.HandleFunc("GET /users/{id}/access", s.signedIn(s.accessPage))
	mux.HandleFunc("POST /users/{id}/access", s.signedIn(s.saveAccess))
	mux.HandleFunc("GET /subscriptions", s.signedIn(s.subscriptions))
	mux.HandleFunc("POST /subscriptions/{id}/release", s.signedIn(s.releaseSeat))
	mux.HandleFunc("GET /subscriptions/new", s.signedIn(s.newContractPage))
	mux.HandleFunc("POST /subscriptions", s.signedIn(s.createContract))
	mux.HandleFunc("GET /subscriptions/{id}/edit", s.signedIn(s.editContractPage))
	mux.HandleFunc("POST /subscriptions/{id}", s.signedIn(s.updateContract))
	mux.HandleFunc("GET /audit-log", s.signedIn(s.auditLog))
	mux.HandleFunc("GET "+tokensPath, s.signedIn(s.tokensPage))
	mux.HandleFunc("POST "+tokensPath, s.signedIn(s.createToken))
	mux.HandleFunc("GET "+tokensPath+"/{id}/revoke", s.signedIn(s.confirmRevokeToken))
	mux.HandleFunc("POST "+tokensPath+"/{id}/revoke", s.signedIn(s.revokeToken))
	if s.usage != nil {
		mux.HandleFunc("GET "+reportPath, s.signedIn(s.usageReport))
		mux.HandleFunc("POST "+reportPath+"/unassign", s.signedIn(s.unassign))
	}
	if s.notify != nil {
		mux.HandleFunc("GET "+notificationsPath, s.signedIn(s.notificationsPage))
		mux.HandleFunc("POST "+notificationsPath, s.signedIn(s.saveNotifications))
		mux.HandleFunc("POST "+notificationsPath+"/{state}", s.signedIn(s.switchNotifications))
	}

	s.ssoRoutes(mux)
	s.groupRoutes(mux)
	s.importRoutes(mux)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.renderStatus(w, r, http.StatusNotFound, nil, "Page not found", "There is no page at this address.")
	})
}

// headers keeps pages out of shared caches and other sites' frames, and
// allows only the console's own scripts and styles.
func (s *server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-cache")
		} else {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// ---- sessions ----

type viewerKey struct{}

// viewer is the signed-in person as pages need them.
type viewer struct {
	Actor   usher.Actor
	Account usher.Account
	token   string       // the session cookie's
	session auth.Session // as read for this request
}

// signedIn loads the session's actor, or sends the browser to sign in and
// come back.
func (s *server) signedIn(h func(http.ResponseWriter, *http.Request, viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := s.viewer(r)
		if err != nil {
			if usher.ErrorCode(err) != usher.EUNAUTHORIZED {
				s.renderError(w, r, nil, err)
				return
			}
			if r.Method != http.MethodGet {
				// A form posted after the session ended: its data is lost,
				// so say why rather than silently redirecting.
				s.renderStatus(w, r, http.StatusUnauthorized, nil, "Signed out",
					"Your session has ended, so nothing was saved. Sign in and try again.")
				return
			}
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		web.NoteActor(r.Context(), v.Actor.AccountID, v.Actor.UserID)
		h(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)), v)
	}
}

func (s *server) viewer(r *http.Request) (viewer, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return viewer{}, usher.Errorf(usher.EUNAUTHORIZED, "not signed in")
	}
	sess, err := s.auth.Session(r.Context(), c.Value)
	if err != nil {
		return viewer{}, err
	}
	a, err := s.access.ActorFor(r.Context(), sess.AccountID, sess.UserID)
	if err != nil {
		return viewer{}, err
	}
	acct, err := s.access.Account(r.Context(), a)
	if err != nil {
		return viewer{}, err
	}
	return viewer{Actor: a, Account: acct, token: c.Value, session: sess}, nil
}

// redirectWith sends the browser to path after an action, with msg kept in
// the session for that page to show once. Messages never travel in the
// address: a hand-made link must not make a page claim what nobody did.
func (s *server) redirectWith(w http.ResponseWriter, r *http.Request, v viewer, path, msg string) {
	if err := s.auth.SetFlash(r.Context(), v.token, msg); err != nil {
		// The action is done; only its message is lost.
		s.log.WarnContext(r.Context(), "keep message in session", slog.Any("err", err))
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

func (s *server) secureRequest(r *http.Request) bool {
	return s.scheme(r) == "https"
}

// setSessionCookie hands the browser the session's token. Its lifetime is
// the session's, so the browser forgets it when the server would refuse it.
func (s *server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, sess auth.Session) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: token, Path: "/", Expires: sess.ExpiresAt, MaxAge: int(sess.ExpiresAt.Sub(sess.CreatedAt).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r),
	})
}

func (s *server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r),
	})
}

// home is the dashboard for those who see contracts; others go to the
// first page they may use.
func (s *server) home(w http.ResponseWriter, r *http.Request, v viewer) {
	if access.CanAny(v.Actor, access.ViewSubscription) {
		s.dashboard(w, r, v)
		return
	}
	http.Redirect(w, r, s.firstPage(v), http.StatusSeeOther)
}

// firstPage is where a person lands after signing in: the first page of the
// navigation they may use, or their own access.
func (s *server) firstPage(v viewer) string {
	for _, n := range s.navFor(v, "") {
		return n.Href
	}
	return "/users/" + strconv.FormatInt(v.Actor.UserID, 10) + "/access"
}

// ---- navigation ----

type navItem struct {
	Label   string
	Href    string
	Current bool
}

// navFor lists the pages the viewer may open. The Usage Report and Usage
// Notifications follow Subscriptions when the server offers them.
func (s *server) navFor(v viewer, current string) []navItem {
	a := v.Actor
	var out []navItem
	add := func(label, href string, ok bool) {
		if ok {
			out = append(out, navItem{Label: label, Href: href, Current: href == current})
		}
	}
	add("Dashboard", "/", access.CanAny(a, access.ViewSubscription))
	add("Users", "/users", access.CanAny(a, access.ViewUsers))
	add("Groups", "/groups", access.CanAny(a, access.ViewUsers))
	add("Subscriptions", "/subscriptions", access.CanAny(a, access.ViewSubscription))
	add("Usage Report", reportPath, s.usage != nil && access.CanAny(a, access.ViewReports))
	add("Usage Notifications", notificationsPath, s.notify != nil && access.Can(a, access.ManageNotification, 0))
	add("Reclaim policies", "/reclaim-policies", s.reclaim != nil && access.Can(a, access.ViewReclaim, 0))
	add("Reclaim history", "/reclaims", s.reclaim != nil && access.Can(a, access.ViewReclaim, 0))
	add("Audit log", "/audit-log", access.Can(a, access.ViewAudit, 0))
	add("Single sign-on", ssoSettingsPath, s.canManageSSO(v))
	add("My access", "/users/"+strconv.FormatInt(a.UserID, 10)+"/access", true)
	add("API tokens", tokensPath, true)
	return out
}

// ---- rendering ----

// page is what every template gets: the layout's parts and the page's data.
type page struct {
	Title   string
	Viewer  *viewer
	Nav     []navItem
	Message string // a success message, shown in a status region
	// UndoBatch, when not 0, puts an Undo button for that reclaim batch
	// beside the message.
	UndoBatch int64
	Errors    []string // problems, shown in an alert region
	// ErrorsTitle introduces Errors, e.g. to say that nothing was saved.
	ErrorsTitle string
	Data        any
}

var funcs = template.FuncMap{
	"benefitName": usher.BenefitName,
	// plural picks the word for n: {{plural .N "seat" "seats"}}.
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"planName": planName,
	"cents":    usher.FormatCents,
}

func planName(p usher.Plan) string {
	if p == "" {
		return ""
	}
	return strings.ToUpper(string(p[:1])) + string(p[1:])
}

// parsePages parses each page template with the layout, so every page
// defines its own "content" block.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		// parts/ holds blocks that several pages show.
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/parts/*.html", n)
		if err != nil {
			return nil, err
		}
		out[base] = t
	}
	return out, nil
}

// render writes a page. It renders into a buffer first, so a template error
// becomes a clean 500 instead of half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if v, ok := r.Context().Value(viewerKey{}).(viewer); ok && p.Viewer == nil {
		p.Viewer = &v
	}
	if p.Viewer != nil && p.Nav == nil {
		p.Nav = s.navFor(*p.Viewer, r.URL.Path)
	}
	if p.Viewer != nil && p.Viewer.session.Flash != "" && r.Method == http.MethodGet {
		msg, err := s.auth.TakeFlash(r.Context(), p.Viewer.token)
		if err != nil {
			s.log.WarnContext(r.Context(), "read message from session", slog.Any("err", err))
		}
		if p.Message == "" {
			p.Message, p.UndoBatch = splitUndo(msg)
		}
	}
	var buf bytes.Buffer
	t, ok := s.pages[name]
	if !ok {
		s.log.ErrorContext(r.Context(), "no such page template", slog.String("page", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, p); err != nil {
		s.log.ErrorContext(r.Context(), "render page", slog.String("page", name), slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// statusPage is the data of the "status" page: a heading and a sentence.
type statusPage struct{ Heading, Text string }

func (s *server) renderStatus(w http.ResponseWriter, r *http.Request, status int, v *viewer, heading, text string) {
	s.render(w, r, status, "status", page{Title: heading, Viewer: v, Data: statusPage{heading, text}})
}

// errorStatus maps an error code to an HTTP status; the REST API's mapping,
// minus what pages never answer.
func errorStatus(code string) int {
	switch code {
	case usher.EINVALID:
		return http.StatusUnprocessableEntity
	case usher.ENOSEATS, usher.ECONFLICT:
		return http.StatusConflict
	case usher.EPRECONDITION:
		return http.StatusPreconditionFailed
	case usher.EFORBIDDEN:
		return http.StatusForbidden
	case usher.ENOTFOUND:
		return http.StatusNotFound
	case usher.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case usher.ERATELIMITED:
		return http.StatusTooManyRequests
	case usher.EUNAVAILABLE:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// renderError shows err on a page of its own. Internal errors are logged
// and shown only as "internal error".
func (s *server) renderError(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	status := errorStatus(usher.ErrorCode(err))
	heading := http.StatusText(status)
	text := errorText(err)
	if status == http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "internal error", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		heading, text = "Something went wrong", "An internal error stopped this page. It has been logged; try again in a moment."
	}
	s.renderStatus(w, r, status, v, heading, text)
}

// errorText is an error as one sentence for a page, with every field's reason.
func errorText(err error) string {
	msg := usher.ErrorMessage(err)
	if msg == "" {
		return "internal error"
	}
	return upperFirst(msg) + "."
}

// errorLines lists a domain error's problems, one per field, for a form.
func errorLines(err error) []string {
	fields := usher.ErrorFields(err)
	if len(fields) == 0 {
		return []string{errorText(err)}
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Field + ": " + f.Reason
	}
	return out
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// localPath returns next if it is a path on this site, else "". It keeps
// the sign-in redirect from sending people to another site.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return next
}

// undoMark joins a message kept in the session to the reclaim batch its page
// offers to undo: the session keeps one line of text, and the batch's id
// must not come from the address, where anyone could put one.
const undoMark = "\nundo:"

// withUndo is msg with an Undo button for batch.
func withUndo(msg string, batch int64) string {
	if batch <= 0 {
		return msg
	}
	return msg + undoMark + strconv.FormatInt(batch, 10)
}

// splitUndo undoes withUndo.
func splitUndo(msg string) (string, int64) {
	text, id, ok := strings.Cut(msg, undoMark)
	if !ok {
		return msg, 0
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return text, 0
	}
	return text, n
}
