// Package ssotest runs a real OpenID provider for tests: the OP of
// github.com/zitadel/oidc (an OpenID Certified implementation, independent
// of the client code under test) on a loopback port, with an in-memory
// storage, one confidential client and a login page of its own.
//
// Knobs let a test make the provider misbehave the ways the sign-in must
// refuse: ID tokens for another audience, already expired, or tampered
// with on the way.
package ssotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ClientID and ClientSecret are the client registered for Usher.
const (
	ClientID     = "usher-console"
	ClientSecret = "usher-console-secret"
)

// User is a person the provider knows.
type User struct {
	Username      string
	Password      string
	Email         string
	EmailVerified bool
	Name          string
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is the provider's issuer URL, http://127.0.0.1:<port>.
	Issuer string
	srv    *httptest.Server
	st     *storage
}

// Start runs a provider until the test ends. redirectURI is the one
// redirect URI its client accepts; SetRedirectURI changes it.
func Start(t testing.TB) *Provider {
	t.Helper()
	st := &storage{
		requests: map[string]*authRequest{}, codes: map[string]string{}, users: map[string]User{},
		tokens: map[string]token{}, idTokenLifetime: time.Hour,
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	st.key = signingKey{id: randomID(), key: key}

	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	provider, err := op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true},
		st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatalf("start OpenID provider: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", st.loginPage)
	mux.HandleFunc("POST /login", st.login(issuer))
	mux.Handle("/", provider)
	srv.Config.Handler = st.tamperer(issuer, mux)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, srv: srv, st: st}
}

// SetRedirectURI sets the redirect URI the client may use.
func (p *Provider) SetRedirectURI(uri string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.redirectURI = uri
}

// AddUser lets u sign in at the provider.
func (p *Provider) AddUser(u User) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.users[u.Username] = u
}

// SetAudience makes the token endpoint answer with an ID token that the
// provider issued, and signed, for another client aud — the same person and
// nonce, only not for Usher — as in a token substitution; "" restores.
func (p *Provider) SetAudience(aud string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.audience = aud
}

// SetIDTokenLifetime sets how long ID tokens are valid; negative issues
// tokens that have already expired.
func (p *Provider) SetIDTokenLifetime(d time.Duration) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.idTokenLifetime = d
}

// TamperEmail makes the token endpoint's answers carry an ID token whose
// email claim is replaced by email after signing, as an attacker on the
// way would; "" stops it.
func (p *Provider) TamperEmail(email string) {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	p.st.tamperEmail = email
}

// LoginHints returns the login_hint of every authorization request so far.
func (p *Provider) LoginHints() []string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return append([]string(nil), p.st.hints...)
}

// TokenRequests counts the token endpoint's calls.
func (p *Provider) TokenRequests() int {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.tokenRequests
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- storage (op.Storage), in memory ----

type storage struct {
	mu              sync.Mutex
	key             signingKey
	redirectURI     string
	users           map[string]User
	requests        map[string]*authRequest
	codes           map[string]string // code → request id
	tokens          map[string]token
	audience        string
	idTokenLifetime time.Duration
	tamperEmail     string
	hints           []string
	tokenRequests   int
}

type token struct {
	subject string
	scopes  []string
	expires time.Time
}

type authRequest struct {
	id          string
	clientID    string
	redirectURI string
	state       string
	nonce       string
	scopes      []string
	challenge   *oidc.CodeChallenge
	audience    []string
	username    string
	authTime    time.Time
	done        bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return a.audience }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return oidc.ResponseModeQuery }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.username }
func (a *authRequest) Done() bool                            { return a.done }

var errNotFound = errors.New("not found")

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	// The client under test must use PKCE with S256; the provider refuses
	// it otherwise, so a client that stopped sending it fails the tests.
	if r.CodeChallenge == "" || r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required")
	}
	if r.Nonce == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("a nonce is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hints = append(s.hints, r.LoginHint)
	aud := []string{r.ClientID}
	a := &authRequest{id: randomID(), clientID: r.ClientID, redirectURI: r.RedirectURI, state: r.State, nonce: r.Nonce,
		scopes: r.Scopes, audience: aud, challenge: &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}}
	s.requests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok {
		return nil, errNotFound
	}
	return a, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, exp := randomID(), time.Now().Add(5*time.Minute)
	s.tokens[id] = token{subject: r.GetSubject(), scopes: r.GetScopes(), expires: exp}
	return id, exp, nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not offered")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return &s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s.key}}, nil }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != ClientID {
		return nil, errNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &client{id: ClientID, redirectURI: s.redirectURI, idTokenLifetime: s.idTokenLifetime}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	s.tokenRequests++
	s.mu.Unlock()
	if id != ClientID || secret != ClientSecret {
		return errors.New("wrong client id or secret")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the user's claims into the ID token.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	return s.userinfo(info, r.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("token is invalid or expired")
	}
	return s.userinfo(info, t.subject, t.scopes)
}

func (s *storage) userinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	u, ok := s.users[subject]
	s.mu.Unlock()
	if !ok {
		return errNotFound
	}
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeOpenID:
			info.Subject = u.Username
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
		case oidc.ScopeProfile:
			info.Name, info.PreferredUsername = u.Name, u.Username
		}
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not offered")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// ---- keys and client ----

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ signingKey }

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

type client struct {
	id              string
	redirectURI     string
	idTokenLifetime time.Duration
}

func (c *client) GetID() string                       { return ClientID }
func (c *client) RedirectURIs() []string              { return []string{c.redirectURI} }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType        { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string           { return "/login?id=" + id }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenLifetime }
func (c *client) DevMode() bool                       { return true } // http redirect URIs on loopback
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// ---- the provider's own login page ----

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body><h1>Test IdP</h1>
{{with .Error}}<p id="idp-error">{{.}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input id="idp-username" name="username"></label>
<label>Password <input id="idp-password" name="password" type="password"></label>
<button type="submit" id="idp-submit">Sign in</button>
</form></body></html>`))

func (s *storage) loginPage(w http.ResponseWriter, r *http.Request) {
	_ = loginTemplate.Execute(w, map[string]string{"ID": r.URL.Query().Get("id")})
}

func (s *storage) login(issuer string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PostFormValue("id")
		s.mu.Lock()
		u, known := s.users[r.PostFormValue("username")]
		a, ok := s.requests[id]
		good := known && ok && u.Password == r.PostFormValue("password")
		if good {
			a.username, a.authTime, a.done = u.Username, time.Now(), true
		}
		s.mu.Unlock()
		if !good {
			w.WriteHeader(http.StatusUnauthorized)
			_ = loginTemplate.Execute(w, map[string]string{"ID": id, "Error": "wrong username or password"})
			return
		}
		http.Redirect(w, r, issuer+"/authorize/callback?id="+id, http.StatusFound)
	}
}

// ---- tampering on the way ----

// tamperer rewrites the ID token in token responses when asked to: with
// the email changed after signing, as a forger would, or swapped for one
// properly signed for another client.
func (s *storage) tamperer(issuer string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		email, aud := s.tamperEmail, s.audience
		s.mu.Unlock()
		if (email == "" && aud == "") || r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		// The request is read here and handed on whole: the provider
		// forgets the code's request once it has answered.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		s.mu.Lock()
		var other authRequest
		if a, ok := s.requests[s.codes[form.Get("code")]]; ok {
			other = *a
		}
		s.mu.Unlock()

		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		out := rec.Body.Bytes()
		var resp map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(out, &resp) == nil {
			if raw, ok := resp["id_token"].(string); ok {
				switch {
				case email != "":
					resp["id_token"] = replaceClaim(raw, "email", email)
				case other.id != "":
					other.clientID, other.audience = aud, []string{aud}
					c := &client{id: aud, idTokenLifetime: time.Hour}
					if tok, err := op.CreateIDToken(r.Context(), issuer, &other, time.Hour, "", "", s, c); err == nil {
						resp["id_token"] = tok
					}
				}
				out, _ = json.Marshal(resp)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(out)
	})
}

func replaceClaim(jwt, claim, value string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return jwt
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return jwt
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return jwt
	}
	claims[claim] = value
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// ---- a browserless client, for tests that need no Chromium ----

// SignIn plays the person at the provider without a browser: it follows
// authURL to the login page, signs in as username and returns the URL the
// provider sends the browser back to (Usher's callback with code and state).
func (p *Provider) SignIn(ctx context.Context, authURL, username, password string) (string, error) {
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		return noFollow.Do(req)
	}
	// authorize → login page (relative Location)
	resp, err := get(authURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/login?id=") {
		return "", fmt.Errorf("authorize answered %d, Location %q", resp.StatusCode, loc)
	}
	id, _ := url.QueryUnescape(strings.TrimPrefix(loc, "/login?id="))
	form := strings.NewReader(url.Values{"id": {id}, "username": {username}, "password": {password}}.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/login", form)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = noFollow.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("login answered %d", resp.StatusCode)
	}
	resp, err = get(resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("authorize callback answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location"), nil
}
