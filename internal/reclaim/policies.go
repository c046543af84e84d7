package reclaim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Create adds a policy (primary admins).
func (s *Service) Create(ctx context.Context, a usher.Actor, in Input) (Policy, error) {
	if !access.Can(a, access.ManageReclaim, 0) {
		return Policy{}, usher.Errorf(usher.EFORBIDDEN, "you may not manage reclaim policies")
	}
	var out Policy
	err := s.store.Write(ctx, func(tx Tx) error {
		acct, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return err
		}
		now := s.now()
		p, err := s.validate(ctx, tx, a.AccountID, in)
		if err != nil {
			return err
		}
		p.AccountID, p.CreatedAt, p.UpdatedAt = a.AccountID, now, now
		p.NextRunAt = nextRunAt(p, acct.Location(), now)
		if err := tx.InsertPolicy(ctx, &p); err != nil {
			return err
		}
		out = p
		return s.audit(ctx, tx, a, "reclaim_policy.create", nil, p)
	})
	if err != nil {
		return Policy{}, fmt.Errorf("create reclaim policy: %w", err)
	}
	return out, nil
}

// Update replaces a policy (primary admins).
func (s *Service) Update(ctx context.Context, a usher.Actor, id int64, in Input) (Policy, error) {
	if !access.Can(a, access.ManageReclaim, 0) {
		return Policy{}, usher.Errorf(usher.EFORBIDDEN, "you may not manage reclaim policies")
	}
	var out Policy
	err := s.store.Write(ctx, func(tx Tx) error {
		prev, err := tx.PolicyByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		acct, err := tx.AccountByID(ctx, a.AccountID)
		if err != nil {
			return err
		}
		p, err := s.validate(ctx, tx, a.AccountID, in)
		if err != nil {
			return err
		}
		now := s.now()
		p.ID, p.AccountID, p.CreatedAt, p.UpdatedAt = id, a.AccountID, prev.CreatedAt, now
		p.NextRunAt = prev.NextRunAt
		if !p.Enabled {
			p.NextRunAt = time.Time{}
		} else if !prev.Enabled || prev.NextRunAt.IsZero() {
			p.NextRunAt = nextRunAt(p, acct.Location(), now)
		}
		if err := tx.UpdatePolicy(ctx, p); err != nil {
			return err
		}
		out = p
		return s.audit(ctx, tx, a, "reclaim_policy.update", prev, p)
	})
	if err != nil {
		return Policy{}, fmt.Errorf("update reclaim policy %d: %w", id, err)
	}
	return out, nil
}

// Delete removes a policy with its runs and warnings; reclaim batches stay.
func (s *Service) Delete(ctx context.Context, a usher.Actor, id int64) error {
	if !access.Can(a, access.ManageReclaim, 0) {
		return usher.Errorf(usher.EFORBIDDEN, "you may not manage reclaim policies")
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		prev, err := tx.PolicyByID(ctx, a.AccountID, id)
		if err != nil {
			return err
		}
		if err := tx.DeletePolicy(ctx, a.AccountID, id); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "reclaim_policy.delete", prev, nil)
	})
	if err != nil {
		return fmt.Errorf("delete reclaim policy %d: %w", id, err)
	}
	return nil
}

// Policy returns one policy (admins).
func (s *Service) Policy(ctx context.Context, a usher.Actor, id int64) (Policy, error) {
	if !access.Can(a, access.ViewReclaim, 0) {
		return Policy{}, usher.Errorf(usher.EFORBIDDEN, "you may not see reclaim policies")
	}
	var out Policy
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.PolicyByID(ctx, a.AccountID, id)
		return err
	})
	if err != nil {
		return Policy{}, fmt.Errorf("reclaim policy %d: %w", id, err)
	}
	return out, nil
}

// Policies lists the account's policies by name (admins).
func (s *Service) Policies(ctx context.Context, a usher.Actor) ([]Policy, error) {
	if !access.Can(a, access.ViewReclaim, 0) {
		return nil, usher.Errorf(usher.EFORBIDDEN, "you may not see reclaim policies")
	}
	var out []Policy
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.ListPolicies(ctx, a.AccountID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reclaim policies: %w", err)
	}
	if out == nil {
		out = []Policy{}
	}
	return out, nil
}

// Runs lists a policy's latest runs, newest first (admins).
func (s *Service) Runs(ctx context.Context, a usher.Actor, id int64) ([]Run, error) {
	if !access.Can(a, access.ViewReclaim, 0) {
		return nil, usher.Errorf(usher.EFORBIDDEN, "you may not see reclaim policies")
	}
	var out []Run
	err := s.store.Read(ctx, func(tx Tx) error {
		if _, err := tx.PolicyByID(ctx, a.AccountID, id); err != nil {
			return err
		}
		var err error
		out, err = tx.RunsOfPolicy(ctx, a.AccountID, id, 50)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("runs of reclaim policy %d: %w", id, err)
	}
	if out == nil {
		out = []Run{}
	}
	return out, nil
}

// validate checks an input and returns the policy it describes, with every
// problem at once.
func (s *Service) validate(ctx context.Context, tx Tx, accountID int64, in Input) (Policy, error) {
	var p usher.Problems
	out := Policy{Name: strings.TrimSpace(in.Name), Enabled: true, Mode: in.Mode, GraceDays: DefaultGraceDays,
		Exemptions: Exemptions{Users: []int64{}, Groups: []int64{}, Roles: []usher.Role{}}}
	if in.Enabled != nil {
		out.Enabled = *in.Enabled
	}
	if out.Name == "" || utf8.RuneCountInString(out.Name) > 100 {
		p.Add("name", "is required, at most 100 characters")
	}
	rg, ok := usage.ParseRange(in.Range)
	if !ok {
		p.Addf("range", "must be one of 30d, 3m, 6m, 9m, 1y, or a number of days from 1 to %d such as 45d", usage.MaxRangeDays)
	}
	out.Range = rg
	rule := func(field string, r *Rule) Rule {
		if r == nil {
			return Rule{Enabled: true}
		}
		if r.Range == "" {
			return Rule{Enabled: r.Enabled}
		}
		v, ok := usage.ParseRange(string(r.Range))
		if !ok {
			p.Addf(field+".range", "must be one of 30d, 3m, 6m, 9m, 1y, or a number of days from 1 to %d", usage.MaxRangeDays)
		}
		return Rule{Enabled: r.Enabled, Range: v}
	}
	out.NeverUsed, out.StoppedUsing = rule("never_used", in.NeverUsed), rule("stopped_using", in.StoppedUsing)
	if !out.NeverUsed.Enabled && !out.StoppedUsing.Enabled {
		p.Add("never_used", "or stopped_using must be enabled: otherwise the policy finds nothing")
	}
	if !in.Mode.Valid() {
		p.Add("mode", "must be one of warn_then_reclaim, reclaim, report_only")
	}
	if in.GraceDays != nil {
		out.GraceDays = *in.GraceDays
		if out.GraceDays < 0 || out.GraceDays > 365 {
			p.Add("grace_days", "must be between 0 and 365")
		}
	}
	if in.Mode == WarnThenReclaim && out.GraceDays < 1 {
		p.Add("grace_days", "must be at least 1 with warn_then_reclaim: the person needs time to keep their seat")
	}
	subs, err := tx.ListSubscriptions(ctx, accountID, access.SubscriptionFilter{})
	if err != nil {
		return Policy{}, err
	}
	out.Scope.Kind = in.Scope.Kind
	switch in.Scope.Kind {
	case ScopeSubscriptions:
		if len(in.Scope.SubscriptionIDs) == 0 {
			p.Add("scope.subscription_ids", "must list at least one subscription")
		}
		for i, id := range in.Scope.SubscriptionIDs {
			f := fmt.Sprintf("scope.subscription_ids[%d]", i)
			j := slices.IndexFunc(subs, func(s usher.Subscription) bool { return s.ID == id })
			switch {
			case j < 0:
				p.Addf(f, "subscription %d not found", id)
			case !subs[j].Plan.HasUsageData():
				p.Addf(f, "contract %s is on the %s plan, which carries no usage data: only Standard and Premium can be reclaimed", subs[j].ContractNumber, subs[j].Plan)
			case slices.Contains(out.Scope.SubscriptionIDs, id):
				p.Addf(f, "subscription %d is listed twice", id)
			default:
				out.Scope.SubscriptionIDs = append(out.Scope.SubscriptionIDs, id)
			}
		}
	case ScopeProducts:
		if len(in.Scope.Products) == 0 {
			p.Add("scope.products", "must list at least one product code")
		}
		products, err := tx.ListProducts(ctx)
		if err != nil {
			return Policy{}, err
		}
		for i, code := range in.Scope.Products {
			f := fmt.Sprintf("scope.products[%d]", i)
			switch {
			case !slices.ContainsFunc(products, func(x usher.Product) bool { return x.Code == code }):
				p.Addf(f, "%q is not a product code", code)
			case slices.Contains(out.Scope.Products, code):
				p.Addf(f, "%q is listed twice", code)
			default:
				out.Scope.Products = append(out.Scope.Products, code)
			}
		}
	default:
		p.Add("scope.kind", "must be subscriptions or products")
	}
	if in.Exemptions != nil {
		for i, id := range in.Exemptions.Users {
			if _, err := tx.UserByID(ctx, accountID, id); usher.ErrorCode(err) == usher.ENOTFOUND {
				p.Addf(fmt.Sprintf("exemptions.users[%d]", i), "user %d not found", id)
			} else if err != nil {
				return Policy{}, err
			} else if !slices.Contains(out.Exemptions.Users, id) {
				out.Exemptions.Users = append(out.Exemptions.Users, id)
			}
		}
		for i, id := range in.Exemptions.Groups {
			if _, err := tx.GroupByID(ctx, accountID, id); usher.ErrorCode(err) == usher.ENOTFOUND {
				p.Addf(fmt.Sprintf("exemptions.groups[%d]", i), "group %d not found", id)
			} else if err != nil {
				return Policy{}, err
			} else if !slices.Contains(out.Exemptions.Groups, id) {
				out.Exemptions.Groups = append(out.Exemptions.Groups, id)
			}
		}
		for i, r := range in.Exemptions.Roles {
			if !r.Valid() {
				p.Addf(fmt.Sprintf("exemptions.roles[%d]", i), "must be one of primary_admin, secondary_admin, contract_manager, software_coordinator")
			} else if !slices.Contains(out.Exemptions.Roles, r) {
				out.Exemptions.Roles = append(out.Exemptions.Roles, r)
			}
		}
	}
	return out, p.Err()
}

// nextRunAt is the first daily run time (RunHour local) after now.
func nextRunAt(p Policy, loc *time.Location, now time.Time) time.Time {
	if !p.Enabled {
		return time.Time{}
	}
	day := usage.DayOf(now, loc)
	for {
		at := usage.StartOfDay(day, loc).Add(RunHour * time.Hour)
		if at.After(now) {
			return at.UTC()
		}
		day++
	}
}
