package reclaim

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Config tunes the reclaim service. Zero values take the defaults.
type Config struct {
	BaseURL     string // where Usher is reached from a browser; links start with it
	From        string // the emails' sender
	Now         func() time.Time
	Logger      *slog.Logger
	Lease       time.Duration // how long a claimed run or email is a worker's; default 5 minutes
	SendTimeout time.Duration // the longest one SMTP delivery may take; default 1 minute
	MaxAttempts int           // attempts before a run or email fails for good; default 10
	Workers     int           // emails sent at once by one SendDue; default notify.DefaultWorkers
}

// Paths of the pages email links open, below Config.BaseURL.
const (
	KeepPath    = "/keep/"
	HistoryPath = "/reclaims"
)

// Service manages reclaim policies, previews them, and runs them.
type Service struct {
	store  Store
	access *access.Service
	mailer Mailer
	cfg    Config
	log    *slog.Logger
	host   string
	claims atomic.Int64
	stats  Stats
}

// Stats counts, since the service started, the reclaim emails by kind and
// the outcome recorded for each attempt, and the seats that finished runs
// reclaimed, for /metrics.
type Stats struct {
	Emails         map[EmailKind]*EmailStats
	SeatsReclaimed atomic.Int64
}

// EmailStats counts one kind of email's attempts by outcome.
type EmailStats struct{ Sent, Retried, Failed atomic.Int64 }

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

// New returns a reclaim service. mailer may be nil (pass a literal nil):
// policies are kept and previewed, and runs wait until a service with a
// mailer runs them, so nobody loses a seat without having been told.
func New(store Store, acc *access.Service, mailer Mailer, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Minute
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Workers <= 0 {
		cfg.Workers = notify.DefaultWorkers
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	host := "usher.invalid"
	if u, err := url.Parse(cfg.BaseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	svc := &Service{store: store, access: acc, mailer: mailer, cfg: cfg, log: cfg.Logger, host: host}
	svc.stats.Emails = map[EmailKind]*EmailStats{EmailWarning: {}, EmailNotice: {}, EmailDigest: {}}
	return svc
}

// CanDeliver reports whether the service has a mailer, and so runs policies.
func (s *Service) CanDeliver() bool { return s.mailer != nil }

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func (s *Service) audit(ctx context.Context, tx Tx, a usher.Actor, action string, before, after any) error {
	e := usher.AuditEntry{AccountID: a.AccountID, ActorID: a.UserID, ActorEmail: a.Email, Action: action, At: s.now()}
	if err := e.SetChange(before, after); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	if err := tx.InsertAudit(ctx, &e); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// ---- planning: the one code path of previews and runs ----

// Preview says what the policy would do if it ran now: whom it would warn
// and reclaim, whom it leaves alone and why, and what it would save.
func (s *Service) Preview(ctx context.Context, a usher.Actor, id int64) (Plan, error) {
	if !access.Can(a, access.ViewReclaim, 0) {
		return Plan{}, usher.Errorf(usher.EFORBIDDEN, "you may not see reclaim policies")
	}
	var out Plan
	err := s.store.Read(ctx, func(tx Tx) error {
		p, err := tx.PolicyByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		acct, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return err
		}
		out, err = s.plan(ctx, tx, p, acct, s.now(), nil)
		return err
	})
	if err != nil {
		return Plan{}, fmt.Errorf("preview reclaim policy %d: %w", id, err)
	}
	return out, nil
}

// PreviewInput says what a policy would do if it were saved as in and ran
// now, before it is saved (primary admins, who may save it): the console's
// form previews this way. With id not 0 it previews the change of that
// policy, so the policy's warnings count as they would after saving.
func (s *Service) PreviewInput(ctx context.Context, a usher.Actor, id int64, in Input) (Plan, error) {
	if !access.Can(a, access.ManageReclaim, 0) {
		return Plan{}, usher.Errorf(usher.EFORBIDDEN, "you may not manage reclaim policies")
	}
	var out Plan
	err := s.store.Read(ctx, func(tx Tx) error {
		if id != 0 {
			if _, err := tx.PolicyByID(ctx, a.AccountID, id); err != nil {
				return err
			}
		}
		acct, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return err
		}
		p, err := s.validate(ctx, tx, a.AccountID, in)
		if err != nil {
			return err
		}
		p.ID, p.AccountID = id, a.AccountID
		out, err = s.plan(ctx, tx, p, acct, s.now(), nil)
		return err
	})
	if err != nil {
		return Plan{}, fmt.Errorf("preview reclaim policy: %w", err)
	}
	return out, nil
}

// scopeIDs returns the subscriptions in the policy's scope that carry usage data.
func scopeIDs(ctx context.Context, tx Tx, p Policy) (map[int64]usher.Subscription, []int64, error) {
	subs, err := tx.ListSubscriptions(ctx, p.AccountID, access.SubscriptionFilter{})
	if err != nil {
		return nil, nil, err
	}
	byID := map[int64]usher.Subscription{}
	var ids []int64
	for _, sub := range subs {
		in := false
		switch p.Scope.Kind {
		case ScopeSubscriptions:
			in = slices.Contains(p.Scope.SubscriptionIDs, sub.ID)
		case ScopeProducts:
			in = slices.Contains(p.Scope.Products, sub.Product.Code)
		}
		if in && sub.Plan.HasUsageData() {
			byID[sub.ID] = sub
			ids = append(ids, sub.ID)
		}
	}
	return byID, ids, nil
}

// plan decides what policy p does at now, for every person, or for the
// listed users when users is not nil (a run checks its people's part again
// this way in the transaction that carries it out).
func (s *Service) plan(ctx context.Context, tx Tx, p Policy, acct usher.Account, now time.Time, users []int64) (Plan, error) {
	out := Plan{PolicyID: p.ID, Mode: p.Mode, At: now, Items: []Item{}, Skipped: []Skip{}, Savings: []usher.Cost{}}
	loc := acct.Location()
	today := usage.DayOf(now, loc)
	cut := map[usage.Inactivity]*usage.Cutoffs{}
	var used, assigned time.Time
	for why, r := range map[usage.Inactivity]Rule{usage.NeverUsed: p.NeverUsed, usage.StoppedUsing: p.StoppedUsing} {
		if !r.Enabled {
			continue
		}
		rg := cmp.Or(r.Range, p.Range)
		c := rg.CutoffsOn(today, loc, acct.NewSeatGraceDays)
		cut[why] = &c
		used, assigned = maxTime(used, c.UsedBefore), maxTime(assigned, c.AssignedBefore)
	}
	subs, ids, err := scopeIDs(ctx, tx, p)
	if err != nil {
		return out, err
	}
	warnings, err := tx.PolicyWarnings(ctx, p.AccountID, p.ID, users, now)
	if err != nil {
		return out, err
	}
	type seatKey struct{ u, s int64 }
	open, kept := map[seatKey]Warning{}, map[seatKey]Warning{}
	for _, w := range warnings {
		k := seatKey{w.UserID, w.SubscriptionID}
		if w.Outcome == OutcomeOpen {
			open[k] = w
		} else {
			kept[k] = w
		}
	}
	var seats []Seat
	if len(ids) > 0 && len(cut) > 0 {
		if seats, err = tx.InactiveSeats(ctx, SeatQuery{AccountID: p.AccountID, SubscriptionIDs: ids, UsedBefore: used, AssignedBefore: assigned, UserIDs: users}); err != nil {
			return out, err
		}
	}
	exempt, err := exemptions(ctx, tx, p, users)
	if err != nil {
		return out, err
	}
	reclaimAt := usage.StartOfDay(today+usage.Day(p.GraceDays), loc).UTC()
	matched := map[seatKey]bool{}
	for _, st := range seats {
		why := usage.StoppedUsing
		if st.LastUsedAt.Before(st.AssignedAt) {
			why = usage.NeverUsed
		}
		c := cut[why]
		if c == nil {
			continue
		}
		if status, _ := usage.Classify(st.Plan, st.AssignedAt, st.LastUsedAt, *c); status != usage.StatusInactive {
			continue
		}
		k := seatKey{st.UserID, st.SubscriptionID}
		if reason := exempt(st); reason != "" {
			out.Skipped = append(out.Skipped, Skip{UserID: st.UserID, Email: st.Email, SubscriptionID: st.SubscriptionID, Reason: reason})
			continue
		}
		if w, ok := kept[k]; ok {
			out.Skipped = append(out.Skipped, Skip{UserID: st.UserID, Email: st.Email, SubscriptionID: st.SubscriptionID,
				Reason: "kept from the warning's link until " + w.KeptUntil.In(loc).Format(time.DateOnly)})
			continue
		}
		matched[k] = true
		it := Item{UserID: st.UserID, Email: st.Email, Name: st.Name, SubscriptionID: st.SubscriptionID, ContractNumber: st.ContractNumber,
			Product: st.Product, ProductName: st.ProductName, Inactivity: why, AssignedAt: st.AssignedAt.In(loc), Price: st.Price}
		if st.LastUsedAt.After(st.AssignedAt) || st.LastUsedAt.Equal(st.AssignedAt) {
			it.LastUsedAt = st.LastUsedAt.In(loc)
		}
		switch w, warned := open[k]; {
		case warned && !now.Before(w.ReclaimAt):
			it.Action, it.WarningID, it.Reason = ActReclaim, w.ID, "warned on "+w.WarnedAt.In(loc).Format(time.DateOnly)+"; the grace period is over"
		case warned:
			it.Action, it.WarningID, it.ReclaimAt = ActWait, w.ID, w.ReclaimAt.In(loc)
		case p.Mode == WarnThenReclaim:
			it.Action, it.ReclaimAt = ActWarn, reclaimAt.In(loc)
		case p.Mode == ReclaimNow:
			it.Action = ActReclaim
		default:
			it.Action = ActReport
		}
		out.Items = append(out.Items, it)
	}
	// Open warnings of seats no longer inactive, exempt or held: the person
	// used the product (or the seat went otherwise), so the warning closes.
	for k, w := range open {
		if matched[k] {
			continue
		}
		it := Item{UserID: w.UserID, SubscriptionID: w.SubscriptionID, Inactivity: w.Inactivity, Action: ActKeep, WarningID: w.ID,
			Reason: "used the product since the warning, or no longer holds the seat"}
		if sub, ok := subs[w.SubscriptionID]; ok {
			it.ContractNumber, it.Product, it.ProductName, it.Price = sub.ContractNumber, sub.Product.Code, sub.Product.Name, sub.Price
		}
		if u, err := tx.UserByID(ctx, p.AccountID, w.UserID); err == nil {
			it.Email, it.Name = u.Email, u.Name
		}
		out.Items = append(out.Items, it)
	}
	slices.SortFunc(out.Items, func(a, b Item) int {
		return cmp.Or(strings.Compare(a.Email, b.Email), cmp.Compare(a.SubscriptionID, b.SubscriptionID))
	})
	var reclaimed []usher.BatchItem
	for _, it := range out.Items {
		switch it.Action {
		case ActWarn:
			out.Warn++
		case ActReclaim:
			out.Reclaim++
			reclaimed = append(reclaimed, usher.BatchItem{Seat: true, Price: it.Price})
		case ActReport:
			out.Report++
		case ActWait:
			out.Waiting++
		case ActKeep:
			out.Kept++
		}
	}
	out.Savings = usher.SavedOf(reclaimed)
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// exemptions returns a function saying why a seat is exempt from p, or "";
// with users not nil, for those users' seats only (a run's check of a few
// people reads their groups, not every member of every group).
func exemptions(ctx context.Context, tx Tx, p Policy, users []int64) (func(Seat) string, error) {
	holders := map[int64][]usher.RoleGrant{}
	for _, r := range p.Exemptions.Roles {
		gs, err := tx.UsersWithRole(ctx, p.AccountID, r)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			holders[g.UserID] = append(holders[g.UserID], g)
		}
	}
	// A group's members are read as they are now, so someone who joins an
	// exempt group is safe from the next run on, without editing the policy.
	members := map[int64]string{}
	switch {
	case len(p.Exemptions.Groups) == 0:
	case users != nil:
		for _, userID := range users {
			gs, err := tx.GroupsOfUser(ctx, p.AccountID, userID)
			if err != nil {
				return nil, err
			}
			for _, id := range p.Exemptions.Groups {
				if i := slices.IndexFunc(gs, func(g usher.Group) bool { return g.ID == id }); i >= 0 {
					members[userID] = gs[i].Name
					break
				}
			}
		}
	default:
		for _, id := range p.Exemptions.Groups {
			g, err := tx.GroupByID(ctx, p.AccountID, id)
			if usher.ErrorCode(err) == usher.ENOTFOUND {
				continue // deleted since: it exempts nobody
			} else if err != nil {
				return nil, err
			}
			ids, err := tx.GroupMemberIDs(ctx, p.AccountID, id)
			if err != nil {
				return nil, err
			}
			for _, uid := range ids {
				if _, ok := members[uid]; !ok {
					members[uid] = g.Name
				}
			}
		}
	}
	return func(st Seat) string {
		switch {
		case st.ReclaimExempt:
			return "the user is exempt from reclaim"
		case slices.Contains(p.Exemptions.Users, st.UserID):
			return "the user is exempt from this policy"
		}
		if name, ok := members[st.UserID]; ok {
			return "exempt as a member of the group " + name
		}
		for _, g := range holders[st.UserID] {
			if !g.Role.PerSubscription() || g.SubscriptionID == st.SubscriptionID {
				return "exempt as " + strings.ReplaceAll(string(g.Role), "_", " ")
			}
		}
		return ""
	}, nil
}

// ---- the Keep my seat link ----

// newToken returns a link token and the hash stored for it.
func newToken() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	t := base64.RawURLEncoding.EncodeToString(b)
	return t, hashToken(t)
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// KeepOffer is what the Keep my seat page shows before the button is pressed.
type KeepOffer struct {
	Email          string    `json:"email"`
	ProductName    string    `json:"product_name"`
	ContractNumber string    `json:"contract_number"`
	ReclaimAt      time.Time `json:"reclaim_at"`
	Kept           bool      `json:"kept"` // kept already with this link
}

// keepable loads the warning of a link token and says whether it can still be kept.
func (s *Service) keepable(ctx context.Context, tx Tx, token string) (Warning, KeepOffer, error) {
	w, err := tx.WarningByTokenHash(ctx, hashToken(token))
	if err != nil {
		return w, KeepOffer{}, err
	}
	acct, err := tx.AccountByID(ctx, w.AccountID)
	if err != nil {
		return w, KeepOffer{}, err
	}
	u, err := tx.UserByID(ctx, w.AccountID, w.UserID)
	if err != nil {
		return w, KeepOffer{}, err
	}
	sub, err := tx.SubscriptionByID(ctx, w.AccountID, w.SubscriptionID)
	if err != nil {
		return w, KeepOffer{}, err
	}
	offer := KeepOffer{Email: u.Email, ProductName: sub.Product.Name, ContractNumber: sub.ContractNumber,
		ReclaimAt: w.ReclaimAt.In(acct.Location()), Kept: w.Outcome == OutcomeKept}
	switch {
	case w.Outcome == OutcomeKept:
		return w, offer, nil
	case w.Outcome != OutcomeOpen:
		return w, offer, usher.Errorf(usher.ECONFLICT, "this link was already used, or the seat was reclaimed")
	case !s.now().Before(w.ReclaimAt):
		return w, offer, usher.Errorf(usher.ECONFLICT, "this link expired on %s", w.ReclaimAt.In(acct.Location()).Format(time.DateOnly))
	}
	return w, offer, nil
}

// KeepOffer reads a link without using it: GET, which mail scanners follow.
func (s *Service) KeepOffer(ctx context.Context, token string) (KeepOffer, error) {
	var offer KeepOffer
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		_, offer, err = s.keepable(ctx, tx, token)
		return err
	})
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		err = usher.Errorf(usher.ENOTFOUND, "this link is not valid")
	}
	return offer, err
}

// Keep uses a link: the seat is exempt from the policy for one more range,
// from now. It needs no sign-in; the token is the proof. A link keeps once.
func (s *Service) Keep(ctx context.Context, token string) (KeepOffer, error) {
	var offer KeepOffer
	err := s.store.Write(ctx, func(tx Tx) error {
		w, o, err := s.keepable(ctx, tx, token)
		offer = o
		if err != nil || o.Kept {
			if o.Kept && err == nil {
				return usher.Errorf(usher.ECONFLICT, "this link was already used: the seat is kept")
			}
			return err
		}
		p, err := tx.PolicyByID(ctx, w.AccountID, w.PolicyID)
		if err != nil {
			return err
		}
		acct, err := tx.AccountByID(ctx, w.AccountID)
		if err != nil {
			return err
		}
		loc, now := acct.Location(), s.now()
		today := usage.DayOf(now, loc)
		rg := p.Range
		w.Outcome, w.ResolvedAt = OutcomeKept, now
		w.KeptUntil = usage.StartOfDay(today+(today-rg.Cutoff(today)), loc).UTC()
		ok, err := tx.ResolveWarning(ctx, w)
		if err != nil {
			return err
		}
		if !ok {
			return usher.Errorf(usher.ECONFLICT, "this link was already used")
		}
		offer.Kept = true
		e := usher.AuditEntry{AccountID: w.AccountID, ActorID: w.UserID, ActorEmail: offer.Email, Action: "reclaim.keep",
			TargetUserID: w.UserID, TargetEmail: offer.Email, SubscriptionID: w.SubscriptionID, At: now}
		if err := e.SetChange(nil, map[string]any{"policy_id": p.ID, "policy": p.Name, "warning_id": w.ID, "kept_until": w.KeptUntil}); err != nil {
			return err
		}
		return tx.InsertAudit(ctx, &e)
	})
	if usher.ErrorCode(err) == usher.ENOTFOUND {
		err = usher.Errorf(usher.ENOTFOUND, "this link is not valid")
	}
	if err != nil {
		return offer, fmt.Errorf("keep seat: %w", err)
	}
	return offer, nil
}
