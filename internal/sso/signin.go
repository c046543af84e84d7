package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/usherhq/usher/internal/usher"
)

// providerTTL is how long a provider's discovery document is trusted before
// it is fetched again. Its signing keys are refreshed by go-oidc whenever a
// token names a key it does not know.
const providerTTL = time.Hour

type cachedProvider struct {
	p       *oidc.Provider
	fetched time.Time
}

// provider returns the discovered provider of issuer. Discovery runs on a
// context of its own: go-oidc keeps it for fetching keys later, which must
// not end with the request that happened to discover the provider.
func (s *Service) provider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	s.mu.Lock()
	c, ok := s.providers[issuer]
	s.mu.Unlock()
	if ok && time.Since(c.fetched) < providerTTL {
		return c.p, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(context.Background(), s.cfg.HTTPClient), issuer)
	if err != nil {
		s.log.WarnContext(ctx, "discover OpenID provider", slog.String("issuer", issuer), slog.Any("err", err))
		return nil, usher.Errorf(usher.EUNAVAILABLE,
			"the identity provider at %s could not be reached or did not answer as an OpenID provider; try again, or ask an admin to check the issuer URL", issuer)
	}
	s.mu.Lock()
	s.providers[issuer] = cachedProvider{p: p, fetched: time.Now()}
	s.mu.Unlock()
	return p, nil
}

func (s *Service) oauth2Config(st Settings, p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: st.ClientID, ClientSecret: st.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: s.RedirectURL(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashState(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// Start is a sign-in begun: the provider's URL to send the browser to, and
// the state, which the browser must keep (a cookie) and bring back.
type Start struct {
	URL   string
	State string
}

// Begin starts a sign-in to accountID. next is a local path to return to;
// loginHint, when not empty, is passed to the provider as the email the
// person typed.
func (s *Service) Begin(ctx context.Context, accountID int64, next, loginHint string) (Start, error) {
	var st Settings
	if err := s.store.Read(ctx, func(tx Tx) (err error) { st, err = settingsOf(ctx, tx, accountID); return err }); err != nil {
		return Start{}, fmt.Errorf("begin single sign-on: %w", err)
	}
	p, err := s.provider(ctx, st.Issuer)
	if err != nil {
		return Start{}, fmt.Errorf("begin single sign-on: %w", err)
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	now := s.now()
	l := Login{StateHash: hashState(state), AccountID: accountID, Nonce: nonce, Verifier: verifier, Next: next,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.LoginTTL)}
	err = s.store.Write(ctx, func(tx Tx) error {
		if err := tx.PruneSSOLogins(ctx, now); err != nil {
			return err
		}
		return tx.CreateSSOLogin(ctx, l)
	})
	if err != nil {
		return Start{}, fmt.Errorf("begin single sign-on: %w", err)
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if hint := usher.NormalizeEmail(loginHint); usher.ValidEmail(hint) {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", hint))
	}
	return Start{URL: s.oauth2Config(st, p).AuthCodeURL(state, opts...), State: state}, nil
}

// Callback is what the provider sent back, and the state the browser kept.
type Callback struct {
	State            string
	Code             string
	Error            string // the provider's error code, if it refused
	ErrorDescription string
	BrowserState     string
}

// Result is a finished sign-in: the user to start a session for, and where
// to go. AccountID is set whenever the sign-in could be tied to an account,
// also when it failed, so the page can offer to try again.
type Result struct {
	AccountID int64
	User      usher.User
	Created   bool // the user was created just in time
	Next      string
}

// refused is a sign-in refused for a reason the person can read.
func refused(format string, args ...any) error {
	return usher.Errorf(usher.EUNAUTHORIZED, format, args...)
}

// Finish checks the provider's answer and returns the user it names. The
// state is used up first, so a replayed callback is refused however it
// races; then the code is exchanged (with the PKCE verifier) and the ID
// token verified: signature against the issuer's keys, issuer, audience
// (the client id), expiry and nonce.
func (s *Service) Finish(ctx context.Context, cb Callback) (Result, error) {
	res, err := s.finish(ctx, cb)
	if err != nil {
		return res, fmt.Errorf("single sign-on: %w", err)
	}
	return res, nil
}

func (s *Service) finish(ctx context.Context, cb Callback) (Result, error) {
	var res Result
	if cb.State == "" {
		return res, refused("the sign-in came back without its state; start again")
	}
	hash := hashState(cb.State)
	now := s.now()
	var l Login
	var st Settings
	err := s.store.Write(ctx, func(tx Tx) error {
		var err error
		l, err = tx.SSOLoginByHash(ctx, hash)
		switch {
		case usher.ErrorCode(err) == usher.ENOTFOUND:
			return refused("this sign-in is not known here (it expired or was never started); start again")
		case err != nil:
			return err
		}
		res.AccountID, res.Next = l.AccountID, l.Next
		switch {
		case !l.UsedAt.IsZero():
			return refused("this sign-in has been used already: a replayed sign-in response is refused; start again")
		case !now.Before(l.ExpiresAt):
			return refused("this sign-in took too long and has expired; start again")
		}
		if err := tx.UseSSOLogin(ctx, hash, now); err != nil {
			if usher.ErrorCode(err) == usher.ECONFLICT {
				return refused("this sign-in has been used already: a replayed sign-in response is refused; start again")
			}
			return err
		}
		st, err = settingsOf(ctx, tx, l.AccountID)
		return err
	})
	if err != nil {
		return res, err
	}
	// The browser must be the one that started the sign-in, or someone
	// could sign a victim in to the attacker's user (login CSRF).
	if cb.BrowserState != cb.State {
		return res, refused("this sign-in was started in another browser or its cookie is gone; start again")
	}
	if cb.Error != "" {
		msg := cb.Error
		if cb.ErrorDescription != "" {
			msg += ": " + cb.ErrorDescription
		}
		return res, refused("%s refused the sign-in (%s)", st.ProviderName, msg)
	}
	if cb.Code == "" {
		return res, refused("%s sent no authorization code; start again", st.ProviderName)
	}

	p, err := s.provider(ctx, st.Issuer)
	if err != nil {
		return res, err
	}
	tok, err := s.oauth2Config(st, p).Exchange(oidc.ClientContext(ctx, s.cfg.HTTPClient), cb.Code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		s.log.WarnContext(ctx, "exchange authorization code", slog.Int64("account", l.AccountID), slog.Any("err", err))
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			return res, refused("%s did not accept the sign-in (%s); if this repeats, ask an admin to check the client id and secret", st.ProviderName, re.ErrorCode)
		}
		return res, usher.Errorf(usher.EUNAVAILABLE, "%s could not be reached to finish the sign-in; try again", st.ProviderName)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return res, refused("%s sent no ID token; ask an admin to check that the app is an OpenID Connect app", st.ProviderName)
	}
	idToken, err := p.Verifier(&oidc.Config{ClientID: st.ClientID, Now: s.cfg.Now}).Verify(ctx, raw)
	if err != nil {
		s.log.WarnContext(ctx, "verify ID token", slog.Int64("account", l.AccountID), slog.Any("err", err))
		return res, idTokenProblem(err, st)
	}
	if idToken.Nonce != l.Nonce {
		return res, refused("the ID token does not belong to this sign-in (its nonce differs); start again")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idToken.Claims(&claims); err != nil {
		return res, refused("the ID token's claims could not be read")
	}
	email := usher.NormalizeEmail(claims.Email)
	switch {
	case email == "":
		return res, refused("%s did not send an email address; ask an admin to add the email claim to the app", st.ProviderName)
	case !usher.ValidEmail(email):
		return res, refused("%s sent %q, which is not an email address", st.ProviderName, claims.Email)
	case claims.EmailVerified != nil && !*claims.EmailVerified:
		return res, refused("%s says the email %s is not verified", st.ProviderName, email)
	case !st.allows(email):
		return res, refused("the email domain %s is not allowed to sign in to this account", emailDomain(email))
	case claims.EmailVerified == nil && len(st.AllowedDomains) == 0:
		// Without email_verified (Entra ID leaves it out) the email is
		// trusted only for domains an admin has said belong to them.
		return res, refused("%s did not say that %s is verified; an admin can list the allowed email domains to trust it", st.ProviderName, email)
	}

	err = s.store.Write(ctx, func(tx Tx) error {
		u, err := tx.UserByEmail(ctx, l.AccountID, email)
		switch {
		case err == nil:
			if u.Status != usher.UserActive {
				return refused("the user %s is disabled in Usher; ask an admin", email)
			}
			res.User = u
			return nil
		case usher.ErrorCode(err) != usher.ENOTFOUND:
			return err
		case !st.CreateUsers:
			return refused("there is no Usher user %s in this account; ask an admin to add you", email)
		}
		name := strings.TrimSpace(claims.Name)
		if name == "" || utf8.RuneCountInString(name) > 200 {
			name = email
		}
		u = usher.User{AccountID: l.AccountID, Email: email, Name: name, Status: usher.UserActive, CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateUser(ctx, &u); err != nil {
			return err
		}
		e := usher.AuditEntry{AccountID: l.AccountID, ActorEmail: "sso", Action: "user.create", TargetUserID: u.ID, TargetEmail: u.Email, At: now}
		if err := e.SetChange(nil, map[string]any{"user": u, "via": "sso", "issuer": st.Issuer, "subject": idToken.Subject}); err != nil {
			return err
		}
		res.User, res.Created = u, true
		return tx.InsertAudit(ctx, &e)
	})
	if err != nil {
		return res, err
	}
	return res, nil
}

// idTokenProblem says in a sentence why an ID token was refused.
func idTokenProblem(err error, st Settings) error {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return refused("the ID token from %s has expired (at %s); check the clocks, then start again", st.ProviderName, expired.Expiry.UTC().Format(time.RFC3339))
	case strings.Contains(msg, "expected audience"):
		return refused("the ID token from %s was issued to another application (wrong audience: it is not for client id %s)", st.ProviderName, st.ClientID)
	case strings.Contains(msg, "different provider"):
		return refused("the ID token was issued by another provider than %s", st.Issuer)
	case strings.Contains(msg, "signature") || strings.Contains(msg, "malformed") || strings.Contains(msg, "not signed"):
		return refused("the ID token from %s failed its signature check: it was tampered with or not signed by the issuer's keys", st.ProviderName)
	case strings.Contains(msg, "nbf"):
		return refused("the ID token from %s is not valid yet; check the clocks, then start again", st.ProviderName)
	}
	return refused("the ID token from %s was refused: %s", st.ProviderName, msg)
}
