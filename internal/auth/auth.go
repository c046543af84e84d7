// Package auth holds the rules for signing in to the console: passwords
// (argon2id), sessions, the limit on failed sign-ins and one-time
// set-password links. What a signed-in person may do is not decided here but
// by the access service, from the user a session names.
package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/usher"
)

// Config tunes the service; zero fields take the defaults below.
type Config struct {
	Now        func() time.Time
	Params     Params        // argon2id cost of new hashes
	SessionTTL time.Duration // how long a sign-in lasts
	LinkTTL    time.Duration // how long a set-password link works
	// FailureWindow and the two limits bound failed sign-ins: after
	// MaxFailuresPerEmail failures for one email in one account, or
	// MaxFailuresPerClient from one client address, within the window,
	// sign-in is refused until the oldest failure leaves the window. The
	// client limit is far higher, so that people behind one proxy or NAT
	// who mistype now and then never lock each other out; only an attacker
	// trying many emails reaches it.
	FailureWindow        time.Duration
	MaxFailuresPerEmail  int
	MaxFailuresPerClient int
	// PasswordPolicy, when set, may refuse password sign-in to a user
	// (single sign-on required); see external.go.
	PasswordPolicy PasswordPolicy
}

// Defaults.
const (
	DefaultSessionTTL           = 12 * time.Hour
	DefaultLinkTTL              = 24 * time.Hour
	DefaultFailureWindow        = 15 * time.Minute
	DefaultMaxFailuresPerEmail  = 5
	DefaultMaxFailuresPerClient = 100

	// MinPasswordLen is short enough to type and long enough that, with
	// the failure limit, guessing online is hopeless.
	MinPasswordLen = 10
	// MaxPasswordLen bounds the bytes hashed per attempt.
	MaxPasswordLen = 256
)

// Service signs people in and out.
type Service struct {
	store Store
	cfg   Config
	// dummy is a hash verified when no user matches, so a sign-in for an
	// unknown email takes as long as one with a wrong password.
	dummy string
	// slots bounds the argon2 computations running at once: each takes
	// Params.Memory, so a burst of sign-ins must queue rather than exhaust
	// the server's memory.
	slots chan struct{}
	// verifications counts argon2id verifications, for tests that pin
	// "one per sign-in attempt".
	verifications atomic.Int64
}

// New returns a Service on store.
func New(store Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = DefaultLinkTTL
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = DefaultFailureWindow
	}
	if cfg.MaxFailuresPerEmail <= 0 {
		cfg.MaxFailuresPerEmail = DefaultMaxFailuresPerEmail
	}
	if cfg.MaxFailuresPerClient <= 0 {
		cfg.MaxFailuresPerClient = DefaultMaxFailuresPerClient
	}
	return &Service{store: store, cfg: cfg, dummy: HashPassword("not a password", cfg.Params),
		slots: make(chan struct{}, max(2, runtime.NumCPU()))}
}

// verify checks a password against a hash, waiting for a free slot.
func (s *Service) verify(ctx context.Context, password, hash string) (bool, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.slots }()
	s.verifications.Add(1)
	return VerifyPassword(password, hash)
}

// hash hashes a new password, waiting for a free slot.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.slots }()
	return HashPassword(password, s.cfg.Params), nil
}

// SessionTTL is how long a new session lasts, for the cookie's Max-Age.
func (s *Service) SessionTTL() time.Duration { return s.cfg.SessionTTL }

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// newSecret returns a random token with a prefix saying what it is, and the
// hash under which it is stored.
func newSecret(prefix string) (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	plain := prefix + base64.RawURLEncoding.EncodeToString(b)
	return plain, hashSecret(plain)
}

func hashSecret(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// CheckPassword validates a new password, naming field in the problem.
func CheckPassword(p *usher.Problems, field, password string) {
	switch n := utf8.RuneCountInString(password); {
	case n < MinPasswordLen:
		p.Addf(field, "must be at least %d characters", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		p.Addf(field, "must be at most %d bytes", MaxPasswordLen)
	case strings.TrimSpace(password) == "":
		p.Add(field, "must not be only spaces")
	}
}

// errBadCredentials never says which of the two was wrong, so sign-in does
// not reveal who has an account.
var errBadCredentials = usher.Errorf(usher.EUNAUTHORIZED, "the email or password is wrong")

// SignIn checks email and password and starts a session. client identifies
// the caller's network address for the per-client failure limit. It returns
// the session's token, which only the browser keeps.
//
// When the email is a user in several accounts, the account with the lowest
// id in which the user is active and has a password is the one signed in
// to; SignInTo names another.
func (s *Service) SignIn(ctx context.Context, email, password, client string) (string, Session, error) {
	return s.SignInTo(ctx, 0, email, password, client)
}

// SignInTo signs in to accountID, or as SignIn does when it is 0.
//
// Every refusal for bad credentials costs exactly one argon2id verification,
// whether the email is unknown, has no password, is disabled or is a user in
// several accounts, so the time taken does not tell who has an account.
// Failures count against the (account, email) pair and, with a much higher
// limit, against the client address; a success clears the pair's count.
func (s *Service) SignInTo(ctx context.Context, accountID int64, email, password, client string) (string, Session, error) {
	email = usher.NormalizeEmail(email)
	var p usher.Problems
	if email == "" {
		p.Add("email", "is required")
	}
	if password == "" {
		p.Add("password", "is required")
	} else if len(password) > MaxPasswordLen {
		p.Addf("password", "must be at most %d bytes", MaxPasswordLen)
	}
	if err := p.Err(); err != nil {
		return "", Session{}, err
	}
	now := s.now()
	since := now.Add(-s.cfg.FailureWindow)

	type candidate struct {
		user usher.User
		hash string
	}
	var candidates []candidate // active users with a password, by account id
	err := s.store.Read(ctx, func(tx Tx) error {
		users, err := tx.UsersByEmail(ctx, email)
		if err != nil {
			return err
		}
		for _, u := range users {
			if accountID != 0 && u.AccountID != accountID || u.Status != usher.UserActive {
				continue
			}
			h, err := tx.PasswordHash(ctx, u.AccountID, u.ID)
			if usher.ErrorCode(err) == usher.ENOTFOUND {
				continue
			} else if err != nil {
				return err
			}
			candidates = append(candidates, candidate{u, h})
		}
		return nil
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("sign in: %w", err)
	}

	// People whose account requires single sign-on are told so rather than
	// having their password checked.
	if s.cfg.PasswordPolicy != nil && len(candidates) > 0 {
		var allowed []candidate
		var refusal error
		for _, c := range candidates {
			switch err := s.passwordAllowed(ctx, c.user); {
			case err == nil:
				allowed = append(allowed, c)
			case usher.ErrorCode(err) == usher.EINTERNAL:
				return "", Session{}, fmt.Errorf("sign in %s: %w", email, err)
			case refusal == nil:
				refusal = err
			}
		}
		if len(allowed) == 0 {
			return "", Session{}, refusal
		}
		candidates = allowed
	}

	// One candidate only: the password is verified once whatever the email.
	user, hash := usher.User{}, s.dummy // the dummy when nobody can sign in, to take the same time
	if len(candidates) > 0 {
		user, hash = candidates[0].user, candidates[0].hash
	}
	keys := []string{failureKey(cmp.Or(user.AccountID, accountID), email)} // the (account, email) key first
	if client != "" {
		keys = append(keys, "client:"+client)
	}
	err = s.store.Read(ctx, func(tx Tx) error {
		for i, key := range keys {
			n, err := tx.CountSignInFailures(ctx, key, since)
			if err != nil {
				return err
			}
			limit := s.cfg.MaxFailuresPerEmail
			if i > 0 {
				limit = s.cfg.MaxFailuresPerClient
			}
			if n >= limit {
				return usher.Errorf(usher.ERATELIMITED, "too many failed sign-in attempts; wait %d minutes and try again", int(s.cfg.FailureWindow.Minutes()))
			}
		}
		return nil
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("sign in: %w", err)
	}

	// Hash outside any transaction: argon2 takes tens of milliseconds and
	// must not hold SQLite's write lock. Two attempts racing may both pass
	// the limit check; the limit is a brake, not an exact count.
	ok, err := s.verify(ctx, password, hash)
	if err != nil {
		return "", Session{}, fmt.Errorf("sign in %s: user %d: %w", email, user.ID, err)
	}
	if !ok || user.ID == 0 {
		err := s.store.Write(ctx, func(tx Tx) error {
			if err := tx.PruneSignInFailures(ctx, since); err != nil {
				return err
			}
			return tx.RecordSignInFailure(ctx, keys, now)
		})
		if err != nil {
			return "", Session{}, fmt.Errorf("sign in: record failure: %w", err)
		}
		return "", Session{}, errBadCredentials
	}

	plain, shash := newSecret("uss_")
	sess := Session{TokenHash: shash, AccountID: user.AccountID, UserID: user.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	err = s.store.Write(ctx, func(tx Tx) error {
		// Only the pair's count is cleared: one person's success must not
		// reset the count of a client trying many addresses.
		if err := tx.ClearSignInFailures(ctx, keys[0]); err != nil {
			return err
		}
		if err := tx.DeleteExpiredSessions(ctx, now); err != nil {
			return err
		}
		return tx.CreateSession(ctx, &sess)
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("sign in: %w", err)
	}
	return plain, sess, nil
}

// failureKey is the key under which failed sign-ins of an email in an
// account count; account 0 stands for an email that names nobody who can
// sign in, which is counted and limited the same way, so that a lockout
// does not reveal who has an account.
func failureKey(accountID int64, email string) string {
	return "user:" + strconv.FormatInt(accountID, 10) + ":" + email
}

// SetFlash keeps a one-line message for the next page the session shows,
// so that messages never travel in URLs.
func (s *Service) SetFlash(ctx context.Context, token, msg string) error {
	if err := s.store.Write(ctx, func(tx Tx) error { return tx.SetSessionFlash(ctx, hashSecret(token), msg) }); err != nil {
		return fmt.Errorf("set session message: %w", err)
	}
	return nil
}

// TakeFlash returns the session's message, if any, and forgets it.
func (s *Service) TakeFlash(ctx context.Context, token string) (string, error) {
	var msg string
	err := s.store.Write(ctx, func(tx Tx) (err error) { msg, err = tx.TakeSessionFlash(ctx, hashSecret(token)); return err })
	if err != nil {
		return "", fmt.Errorf("take session message: %w", err)
	}
	return msg, nil
}

// Session returns the live session of token, or usher.EUNAUTHORIZED when
// the token is unknown, signed out or expired.
func (s *Service) Session(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, usher.Errorf(usher.EUNAUTHORIZED, "not signed in")
	}
	var out Session
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.SessionByHash(ctx, hashSecret(token))
		return err
	})
	switch {
	case usher.ErrorCode(err) == usher.ENOTFOUND:
		return Session{}, usher.Errorf(usher.EUNAUTHORIZED, "the session has ended; sign in again")
	case err != nil:
		return Session{}, fmt.Errorf("session: %w", err)
	case !s.now().Before(out.ExpiresAt):
		return Session{}, usher.Errorf(usher.EUNAUTHORIZED, "the session has expired; sign in again")
	}
	return out, nil
}

// SignOut ends the session of token. Ending an unknown session is not an error.
func (s *Service) SignOut(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	if err := s.store.Write(ctx, func(tx Tx) error { return tx.DeleteSession(ctx, hashSecret(token)) }); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}

// FindUser finds the user an operator means by email, in accountID when it
// is not 0. Without an account, the email must name one user only.
func (s *Service) FindUser(ctx context.Context, email string, accountID int64) (usher.User, error) {
	email = usher.NormalizeEmail(email)
	if !usher.ValidEmail(email) {
		return usher.User{}, (&usher.Problems{{Field: "email", Reason: "is not an email address"}}).Err()
	}
	var users []usher.User
	if err := s.store.Read(ctx, func(tx Tx) (err error) { users, err = tx.UsersByEmail(ctx, email); return err }); err != nil {
		return usher.User{}, fmt.Errorf("find user %s: %w", email, err)
	}
	var found []usher.User
	for _, u := range users {
		if accountID == 0 || u.AccountID == accountID {
			found = append(found, u)
		}
	}
	switch {
	case len(found) == 0 && accountID != 0:
		return usher.User{}, usher.Errorf(usher.ENOTFOUND, "no user %s in account %d", email, accountID)
	case len(found) == 0:
		return usher.User{}, usher.Errorf(usher.ENOTFOUND, "no user %s in any account", email)
	case len(found) > 1:
		ids := make([]string, len(found))
		for i, u := range found {
			ids[i] = fmt.Sprint(u.AccountID)
		}
		return usher.User{}, (&usher.Problems{{Field: "account", Reason: fmt.Sprintf("%s is a user in accounts %s; name one", email, strings.Join(ids, ", "))}}).Err()
	}
	return found[0], nil
}

// SetPassword sets a user's password as an operator (the command line). It
// ends the user's sessions, so a password reset also signs out a thief.
func (s *Service) SetPassword(ctx context.Context, accountID, userID int64, password string) error {
	var p usher.Problems
	CheckPassword(&p, "password", password)
	if err := p.Err(); err != nil {
		return err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	err = s.store.Write(ctx, func(tx Tx) error {
		u, err := tx.UserByID(ctx, accountID, userID)
		if err != nil {
			return err
		}
		return s.setHash(ctx, tx, usher.System(accountID), u, hash, "cli")
	})
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", userID, err)
	}
	return nil
}

func (s *Service) setHash(ctx context.Context, tx Tx, actor usher.Actor, u usher.User, hash, via string) error {
	now := s.now()
	if err := tx.SetPasswordHash(ctx, u.AccountID, u.ID, hash, now); err != nil {
		return err
	}
	if err := tx.DeleteSessionsOfUser(ctx, u.AccountID, u.ID); err != nil {
		return err
	}
	after, _ := json.Marshal(map[string]string{"via": via})
	return tx.InsertAudit(ctx, &usher.AuditEntry{
		AccountID: u.AccountID, ActorID: actor.UserID, ActorEmail: actor.Email, Action: "password.set",
		TargetUserID: u.ID, TargetEmail: u.Email, After: after, At: now,
	})
}

// CreatePasswordLink makes a one-time token with which the user sets their
// password; the caller builds the URL. An operator action (command line).
func (s *Service) CreatePasswordLink(ctx context.Context, accountID, userID int64) (string, PasswordLink, error) {
	plain, hash := newSecret("usp_")
	now := s.now()
	l := PasswordLink{TokenHash: hash, AccountID: accountID, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.LinkTTL)}
	err := s.store.Write(ctx, func(tx Tx) error {
		if _, err := tx.UserByID(ctx, accountID, userID); err != nil {
			return err
		}
		return tx.CreatePasswordLink(ctx, l)
	})
	if err != nil {
		return "", PasswordLink{}, fmt.Errorf("create password link for user %d: %w", userID, err)
	}
	return plain, l, nil
}

// PasswordLinkUser returns the user a link is for, or usher.EUNAUTHORIZED
// when the link is unknown, used or expired, so the page can greet them.
func (s *Service) PasswordLinkUser(ctx context.Context, token string) (usher.User, error) {
	var u usher.User
	err := s.store.Read(ctx, func(tx Tx) error {
		l, err := s.liveLink(ctx, tx, token)
		if err != nil {
			return err
		}
		u, err = tx.UserByID(ctx, l.AccountID, l.UserID)
		return err
	})
	if err != nil {
		return u, fmt.Errorf("password link: %w", err)
	}
	return u, nil
}

func (s *Service) liveLink(ctx context.Context, tx Tx, token string) (PasswordLink, error) {
	l, err := tx.PasswordLinkByHash(ctx, hashSecret(token))
	switch {
	case usher.ErrorCode(err) == usher.ENOTFOUND:
		return l, usher.Errorf(usher.EUNAUTHORIZED, "this link is not valid; ask an operator for a new one")
	case err != nil:
		return l, err
	case !l.UsedAt.IsZero():
		return l, usher.Errorf(usher.EUNAUTHORIZED, "this link has been used already; ask an operator for a new one")
	case !s.now().Before(l.ExpiresAt):
		return l, usher.Errorf(usher.EUNAUTHORIZED, "this link has expired; ask an operator for a new one")
	}
	return l, nil
}

// UsePasswordLink sets the password of the link's user, uses the link up,
// and signs the user in, returning the new session's token.
func (s *Service) UsePasswordLink(ctx context.Context, token, password string) (string, Session, error) {
	var p usher.Problems
	CheckPassword(&p, "password", password)
	if err := p.Err(); err != nil {
		return "", Session{}, err
	}
	if u, err := s.PasswordLinkUser(ctx, token); err != nil {
		return "", Session{}, err
	} else if err := s.passwordAllowed(ctx, u); err != nil {
		return "", Session{}, err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return "", Session{}, fmt.Errorf("set password with link: %w", err)
	}
	plain, shash := newSecret("uss_")
	var sess Session
	err = s.store.Write(ctx, func(tx Tx) error {
		l, err := s.liveLink(ctx, tx, token)
		if err != nil {
			return err
		}
		u, err := tx.UserByID(ctx, l.AccountID, l.UserID)
		if err != nil {
			return err
		}
		if u.Status != usher.UserActive {
			return usher.Errorf(usher.EUNAUTHORIZED, "the user is disabled")
		}
		now := s.now()
		if err := tx.MarkPasswordLinkUsed(ctx, l.TokenHash, now); err != nil {
			return err
		}
		self := usher.Actor{AccountID: u.AccountID, UserID: u.ID, Email: u.Email}
		if err := s.setHash(ctx, tx, self, u, hash, "link"); err != nil {
			return err
		}
		sess = Session{TokenHash: shash, AccountID: u.AccountID, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
		return tx.CreateSession(ctx, &sess)
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("set password with link: %w", err)
	}
	return plain, sess, nil
}

// PasswordIs reports whether the user has a password and whether it is
// password. It lets the demo set its known password only once, and say so
// truthfully when someone has changed it since.
func (s *Service) PasswordIs(ctx context.Context, accountID, userID int64, password string) (has, matches bool, err error) {
	var hash string
	err = s.store.Read(ctx, func(tx Tx) (err error) { hash, err = tx.PasswordHash(ctx, accountID, userID); return err })
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		return false, false, nil
	} else if err != nil {
		return false, false, fmt.Errorf("password of user %d: %w", userID, err)
	}
	matches, err = s.verify(ctx, password, hash)
	if err != nil {
		return true, false, fmt.Errorf("password of user %d: %w", userID, err)
	}
	return true, matches, nil
}
