// Package sso holds single sign-on to the console with OpenID Connect: each
// account's settings (issuer, client, allowed email domains, creating users
// just in time, requiring single sign-on) and the sign-in itself, an
// authorization code flow with PKCE, state and nonce whose ID token is
// verified against the issuer's published keys.
//
// The sign-in ends in a user of the account; starting the console session
// is the auth service's business.
package sso

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// CallbackPath is where the identity provider sends the browser back, below
// the server's base URL. It is the redirect URI to register with the provider.
const CallbackPath = "/signin/oidc/callback"

// Settings are an account's single sign-on settings.
type Settings struct {
	AccountID int64 `json:"-"`
	// ProviderName is shown on the sign-in button: "Sign in with Okta".
	ProviderName string `json:"provider_name"`
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	// ClientSecret is stored and sent to the provider's token endpoint; it
	// is never shown again.
	ClientSecret string `json:"-"`
	// AllowedDomains limits sign-in to emails of these domains; empty
	// allows any email the provider vouches for.
	AllowedDomains []string `json:"allowed_domains"`
	// CreateUsers creates a user at their first sign-in; otherwise only
	// existing users may sign in.
	CreateUsers bool `json:"create_users"`
	// RequireSSO turns password sign-in off for everyone but primary admins.
	RequireSSO bool      `json:"require_sso"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Input is what an admin sets. ClientSecret may be left empty when editing,
// to keep the stored one.
type Input struct {
	ProviderName   string
	Issuer         string
	ClientID       string
	ClientSecret   string
	AllowedDomains []string
	CreateUsers    bool
	RequireSSO     bool
}

// Config tunes the service; zero fields take defaults.
type Config struct {
	// BaseURL is where browsers reach Usher, e.g. https://usher.example.com;
	// the redirect URI is BaseURL + CallbackPath.
	BaseURL string
	Now     func() time.Time
	Logger  *slog.Logger
	// HTTPClient talks to identity providers (discovery, keys, tokens).
	HTTPClient *http.Client
	// LoginTTL is how long a started sign-in may take at the provider.
	LoginTTL time.Duration
}

// DefaultLoginTTL gives a person time to type a password and answer a
// second factor at the provider, and no more.
const DefaultLoginTTL = 10 * time.Minute

// Service manages the settings and runs sign-ins.
type Service struct {
	store Store
	cfg   Config
	log   *slog.Logger

	mu        sync.Mutex
	providers map[string]cachedProvider // by issuer
}

// New returns a Service on store.
func New(store Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = DefaultLoginTTL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Service{store: store, cfg: cfg, log: cfg.Logger, providers: map[string]cachedProvider{}}
}

// RedirectURL is the redirect URI to register with the identity provider.
func (s *Service) RedirectURL() string { return s.cfg.BaseURL + CallbackPath }

// SignInURL is the sign-in page that offers the account's provider: the
// link to hand to the account's people.
func (s *Service) SignInURL(accountID int64) string {
	return fmt.Sprintf("%s/signin?account=%d", s.cfg.BaseURL, accountID)
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func forbidden() error {
	return usher.Errorf(usher.EFORBIDDEN, "only primary admins can set up single sign-on")
}

// Settings returns the account's settings; usher.ENOTFOUND when single
// sign-on is not set up.
func (s *Service) Settings(ctx context.Context, a usher.Actor) (Settings, error) {
	if !access.Can(a, access.ManageSSO, 0) {
		return Settings{}, forbidden()
	}
	var out Settings
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = settingsOf(ctx, tx, a.AccountID)
		return err
	})
	if err != nil {
		return Settings{}, fmt.Errorf("single sign-on settings: %w", err)
	}
	return out, nil
}

func settingsOf(ctx context.Context, tx Tx, accountID int64) (Settings, error) {
	st, err := tx.SSOSettings(ctx, accountID)
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		return Settings{}, usher.Errorf(usher.ENOTFOUND, "single sign-on is not set up")
	}
	return st, err
}

// Limits of the settings' text fields.
const (
	maxName   = 100
	maxURL    = 2000
	maxClient = 255
	maxSecret = 2000
	maxDomain = 253
	// maxDomains bounds the allowed domains of one account.
	maxDomains = 100
)

// auditView is what the audit log keeps of settings: never the secret.
type auditView struct {
	Settings
	ClientSecret string `json:"client_secret"`
}

// Set turns single sign-on on or replaces its settings, and reports whether
// this call turned it on.
func (s *Service) Set(ctx context.Context, a usher.Actor, in Input) (Settings, bool, error) {
	if !access.Can(a, access.ManageSSO, 0) {
		return Settings{}, false, forbidden()
	}
	var out Settings
	var created bool
	err := s.store.Write(ctx, func(tx Tx) error {
		prev, err := tx.SSOSettings(ctx, a.AccountID)
		exists := err == nil
		if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
			return err
		}
		next, err := validate(in, exists)
		if err != nil {
			return err
		}
		now := s.now()
		next.AccountID, next.CreatedAt, next.UpdatedAt = a.AccountID, now, now
		if exists {
			next.CreatedAt = prev.CreatedAt
			if next.ClientSecret == "" {
				next.ClientSecret = prev.ClientSecret
			}
		}
		if err := tx.PutSSOSettings(ctx, next); err != nil {
			return err
		}
		e := usher.AuditEntry{AccountID: a.AccountID, ActorID: a.UserID, ActorEmail: a.Email, Action: "sso.set", At: now}
		var before any
		if exists {
			before = auditView{prev, "set"}
		}
		secret := "set"
		if exists && in.ClientSecret != "" {
			secret = "changed"
		}
		if err := e.SetChange(before, auditView{next, secret}); err != nil {
			return err
		}
		out, created = next, !exists
		return tx.InsertAudit(ctx, &e)
	})
	if err != nil {
		return Settings{}, false, fmt.Errorf("set single sign-on: %w", err)
	}
	return out, created, nil
}

// TurnOff removes the account's settings: password sign-in works for
// everyone again.
func (s *Service) TurnOff(ctx context.Context, a usher.Actor) error {
	if !access.Can(a, access.ManageSSO, 0) {
		return forbidden()
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		prev, err := settingsOf(ctx, tx, a.AccountID)
		if err != nil {
			return err
		}
		if err := tx.DeleteSSOSettings(ctx, a.AccountID); err != nil {
			return err
		}
		e := usher.AuditEntry{AccountID: a.AccountID, ActorID: a.UserID, ActorEmail: a.Email, Action: "sso.off", At: s.now()}
		if err := e.SetChange(auditView{prev, "set"}, nil); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, &e)
	})
	if err != nil {
		return fmt.Errorf("turn off single sign-on: %w", err)
	}
	return nil
}

// validate checks every field at once and returns the settings to store.
func validate(in Input, editing bool) (Settings, error) {
	var p usher.Problems
	out := Settings{
		ProviderName: strings.TrimSpace(in.ProviderName), Issuer: strings.TrimSpace(in.Issuer),
		ClientID: strings.TrimSpace(in.ClientID), ClientSecret: in.ClientSecret,
		CreateUsers: in.CreateUsers, RequireSSO: in.RequireSSO, AllowedDomains: []string{},
	}
	switch n := utf8.RuneCountInString(out.ProviderName); {
	case n == 0:
		p.Add("provider_name", "is required, e.g. Okta or Microsoft Entra ID")
	case n > maxName:
		p.Addf("provider_name", "must be at most %d characters", maxName)
	}
	checkIssuer(&p, out.Issuer)
	switch {
	case out.ClientID == "":
		p.Add("client_id", "is required")
	case len(out.ClientID) > maxClient:
		p.Addf("client_id", "must be at most %d bytes", maxClient)
	}
	switch {
	case out.ClientSecret == "" && !editing:
		p.Add("client_secret", "is required")
	case len(out.ClientSecret) > maxSecret:
		p.Addf("client_secret", "must be at most %d bytes", maxSecret)
	case out.ClientSecret != "" && strings.TrimSpace(out.ClientSecret) != out.ClientSecret:
		p.Add("client_secret", "must not start or end with spaces")
	}
	if len(in.AllowedDomains) > maxDomains {
		p.Addf("allowed_domains", "must list at most %d domains", maxDomains)
	}
	for _, d := range in.AllowedDomains {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d == "" {
			continue
		}
		if !validDomain(d) {
			p.Addf("allowed_domains", "%q is not a domain name such as example.com", d)
			continue
		}
		if !slices.Contains(out.AllowedDomains, d) {
			out.AllowedDomains = append(out.AllowedDomains, d)
		}
	}
	return out, p.Err()
}

// checkIssuer accepts an https URL, or http on a loopback address (a
// provider on the same machine, as in tests): anything else would send the
// client secret and codes in the clear.
func checkIssuer(p *usher.Problems, issuer string) {
	if issuer == "" {
		p.Add("issuer", "is required, e.g. https://login.microsoftonline.com/<tenant id>/v2.0")
		return
	}
	if len(issuer) > maxURL {
		p.Addf("issuer", "must be at most %d bytes", maxURL)
		return
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		p.Add("issuer", "must be a URL such as https://example.okta.com, without query or fragment")
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			p.Add("issuer", "must use https (http only on a loopback address)")
		}
	default:
		p.Add("issuer", "must use https")
	}
}

func validDomain(d string) bool {
	if len(d) > maxDomain || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// emailDomain is the part after the last @, lower case.
func emailDomain(email string) string {
	return strings.ToLower(email[strings.LastIndex(email, "@")+1:])
}

// allows reports whether the settings let email's domain sign in.
func (st Settings) allows(email string) bool {
	return len(st.AllowedDomains) == 0 || slices.Contains(st.AllowedDomains, emailDomain(email))
}

// ---- what the sign-in page may know ----

// Provider is what the sign-in page shows of an account's single sign-on:
// nothing secret, and only that it exists.
type Provider struct {
	AccountID   int64
	AccountName string
	Name        string
}

// ProviderOf returns the account's provider for the sign-in page, or
// usher.ENOTFOUND when the account has no single sign-on.
func (s *Service) ProviderOf(ctx context.Context, accountID int64) (Provider, error) {
	var out Provider
	err := s.store.Read(ctx, func(tx Tx) error {
		st, err := tx.SSOSettings(ctx, accountID)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			return usher.Errorf(usher.ENOTFOUND, "single sign-on is not set up for account %d", accountID)
		} else if err != nil {
			return err
		}
		acct, err := tx.AccountByID(ctx, accountID)
		if err != nil {
			return err
		}
		out = Provider{AccountID: accountID, AccountName: acct.Name, Name: st.ProviderName}
		return nil
	})
	if err != nil {
		return Provider{}, fmt.Errorf("single sign-on provider: %w", err)
	}
	return out, nil
}

// ProviderForEmail finds the account whose single sign-on serves email:
// the one account with single sign-on where a user has that email, or else
// the one whose allowed domains list the email's domain.
func (s *Service) ProviderForEmail(ctx context.Context, email string) (Provider, error) {
	email = usher.NormalizeEmail(email)
	if !usher.ValidEmail(email) {
		return Provider{}, (&usher.Problems{{Field: "email", Reason: "is not an email address"}}).Err()
	}
	var found []int64
	err := s.store.Read(ctx, func(tx Tx) error {
		all, err := tx.ListSSOSettings(ctx)
		if err != nil {
			return err
		}
		users, err := tx.UsersByEmail(ctx, email)
		if err != nil {
			return err
		}
		for _, st := range all {
			if slices.ContainsFunc(users, func(u usher.User) bool { return u.AccountID == st.AccountID }) {
				found = append(found, st.AccountID)
			}
		}
		if len(found) == 0 {
			for _, st := range all {
				if slices.Contains(st.AllowedDomains, emailDomain(email)) {
					found = append(found, st.AccountID)
				}
			}
		}
		return nil
	})
	if err != nil {
		return Provider{}, fmt.Errorf("single sign-on for %s: %w", email, err)
	}
	switch len(found) {
	case 0:
		return Provider{}, usher.Errorf(usher.ENOTFOUND, "single sign-on is not set up for %s; sign in with your password", email)
	case 1:
		return s.ProviderOf(ctx, found[0])
	}
	return Provider{}, usher.Errorf(usher.ECONFLICT,
		"%s could sign in to several accounts; use the sign-in link your admin gave you (/signin?account=ID)", email)
}

// PasswordAllowed says whether u may sign in with a password: not when the
// account requires single sign-on, unless u is a primary admin — the
// break-glass path for when the identity provider is down or misconfigured.
// It is the auth service's password policy.
func (s *Service) PasswordAllowed(ctx context.Context, u usher.User) error {
	var st Settings
	var grants []usher.RoleGrant
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		st, err = tx.SSOSettings(ctx, u.AccountID)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			return nil
		} else if err != nil || !st.RequireSSO {
			return err
		}
		grants, err = tx.RolesOf(ctx, u.AccountID, u.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("password policy of user %d: %w", u.ID, err)
	}
	if !st.RequireSSO || slices.ContainsFunc(grants, func(g usher.RoleGrant) bool { return g.Role == usher.RolePrimaryAdmin }) {
		return nil
	}
	return usher.Errorf(usher.EFORBIDDEN, "your organisation signs in with single sign-on only; use Sign in with %s", st.ProviderName)
}
