package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// personHistory is how many audit entries a person's page lists; the audit
// log, filtered to them, has the rest.
const personHistory = 20

// personRange is the usage range of a person's page.
const personRange = usage.Range3m

type personPage struct {
	User      usher.User
	Self      bool
	Roles     []string
	Seats     []personSeat
	Benefits  []personSeat // contracts with benefits but no seat
	CanEdit   bool         // Edit Access leads somewhere
	UsageNote string       // why usage is not shown, or its range
	ShowUsage bool
	History   []auditRow
	// HistoryHref opens the audit log filtered to this person; "" when the
	// viewer may not read the audit log.
	HistoryHref string
	// CanManage offers edit, disable and delete; RoleChoices what may be
	// granted; RolesHeld what may be removed.
	CanManage   bool
	RoleChoices []roleChoice
	RolesHeld   []roleHeld
	// Groups are the person's groups; Waiting the contracts their groups
	// give them that had no seat free.
	Groups  []usher.Group
	Waiting []string
	// ShowTokens is set for viewers who may see every API token of the
	// account; Tokens are then the person's.
	ShowTokens bool
	Tokens     []tokenRow
}

type personSeat struct {
	Product, Contract, Plan string
	Assigned                bool
	AssignedOn              string
	Services, Benefits      []string
	Editable                bool
	// Sources say how the seat reaches the person: directly, through groups.
	Sources []usher.SeatSource
	// Usage over personRange; Status "" when the report has no row.
	Status   usage.Status
	LastUsed string
	DaysUsed int
}

// person is a person's page: their seats with services and benefits, the
// last use and days used per product, their roles and their history, as
// far as the viewer may see each.
func (s *server) person(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	ctx := r.Context()
	u, err := s.access.User(ctx, v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	ua, err := s.access.Access(ctx, v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	loc := v.Account.Location()
	data := personPage{User: u.User, Self: id == v.Actor.UserID, CanEdit: access.CanAny(v.Actor, access.ManageSeats) || id == v.Actor.UserID}
	subNames := map[int64]string{}
	for _, e := range ua.Subscriptions {
		subNames[e.Subscription.ID] = e.Subscription.Product.Name + " " + e.Subscription.ContractNumber
	}
	for _, g := range u.Roles {
		name := roleName(g.Role)
		if g.SubscriptionID != 0 {
			c := subNames[g.SubscriptionID]
			if c == "" {
				c = "a contract"
			}
			name += " of " + c
		}
		data.Roles = append(data.Roles, name)
		if access.Can(v.Actor, grantActionOf(g.Role), g.SubscriptionID) {
			val := string(g.Role)
			if g.SubscriptionID != 0 {
				val += ":" + strconv.FormatInt(g.SubscriptionID, 10)
			}
			data.RolesHeld = append(data.RolesHeld, roleHeld{Label: name, Role: val})
		}
	}
	data.CanManage = access.Can(v.Actor, access.ManageUsers, 0) && !data.Self
	if access.CanAny(v.Actor, access.GrantManager) || access.CanAny(v.Actor, access.AppointCoordinator) || access.Can(v.Actor, access.GrantAdmin, 0) {
		subs, err := s.access.ListSubscriptions(ctx, v.Actor, "", subscriptionsPageLimit)
		if err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		data.RoleChoices = roleChoices(v, subs.Items)
	}

	if data.Groups, err = s.access.GroupsOf(ctx, v.Actor, id); err != nil {
		s.renderError(w, r, &v, err)
		return
	}

	// The service decides who may see someone's tokens; the rest see no
	// section at all.
	switch tokens, err := s.access.UserTokens(ctx, v.Actor, id); {
	case usher.ErrorCode(err) == usher.EFORBIDDEN:
	case err != nil:
		s.renderError(w, r, &v, err)
		return
	default:
		data.ShowTokens = true
		for _, t := range tokens {
			data.Tokens = append(data.Tokens, tokenRow{Token: t, Mine: t.UserID == v.Actor.UserID,
				Created: usher.HumanTime(t.CreatedAt, loc), LastUsed: when(t.LastUsedAt, loc, "Never"), Expires: when(t.ExpiresAt, loc, "Never")})
		}
	}

	usageOf := map[int64]usage.ReportRow{}
	if s.usage != nil && access.CanAny(v.Actor, access.ViewReports) {
		// The report's search matches names and addresses by part, so keep
		// only this person's rows.
		rep, err := s.usage.Report(ctx, v.Actor, usage.ReportFilter{Query: u.Email, Range: personRange, Limit: 1000})
		if err != nil && usher.ErrorCode(err) != usher.EFORBIDDEN {
			s.renderError(w, r, &v, err)
			return
		}
		for _, row := range rep.Rows {
			if row.UserID == id {
				usageOf[row.SubscriptionID] = row
			}
		}
		data.ShowUsage = err == nil
		data.UsageNote = "Usage over the last " + personRange.Label() + "."
	}
	for _, e := range ua.Subscriptions {
		seat := personSeat{
			Product: e.Subscription.Product.Name, Contract: e.Subscription.ContractNumber, Plan: planName(e.Subscription.Plan),
			Assigned: e.Assigned, Editable: e.Editable, Sources: e.Sources,
		}
		if e.Waiting {
			data.Waiting = append(data.Waiting, e.Subscription.Product.Name+" "+e.Subscription.ContractNumber)
		}
		if e.AssignedAt != nil {
			seat.AssignedOn = usher.HumanDay(*e.AssignedAt, loc)
		}
		for _, svc := range e.Services {
			seat.Services = append(seat.Services, serviceName(e.Subscription, svc))
		}
		for _, b := range e.Benefits {
			seat.Benefits = append(seat.Benefits, usher.BenefitName(b))
		}
		if row, ok := usageOf[e.Subscription.ID]; ok {
			seat.Status, seat.DaysUsed = row.Status, row.DaysUsed
			switch {
			case row.Status == usage.StatusUnavailable:
				seat.LastUsed = "—"
			case row.LastUsed == nil:
				seat.LastUsed = "Never"
			default:
				seat.LastUsed = row.LastUsed.Human()
			}
		}
		switch {
		case e.Assigned:
			data.Seats = append(data.Seats, seat)
		case len(e.Benefits) > 0:
			data.Benefits = append(data.Benefits, seat)
		}
	}

	if access.Can(v.Actor, access.ViewAudit, 0) {
		log, err := s.access.AuditLog(ctx, v.Actor, id, "", "", personHistory)
		if err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		for _, e := range log.Items {
			row := auditRow{AuditEntry: e, When: usher.HumanTime(e.At, loc), Before: indent(e.Before), After: indent(e.After)}
			if e.SubscriptionID != 0 {
				row.Contract = subNames[e.SubscriptionID]
			}
			data.History = append(data.History, row)
		}
		data.HistoryHref = "/audit-log?" + url.Values{"user": {u.Email}}.Encode()
	}
	title := displayName(u.User)
	s.render(w, r, http.StatusOK, "person", page{Title: title, Data: data})
}

// roleName is a role as the console names it.
func roleName(r usher.Role) string {
	return upperFirst(strings.ReplaceAll(string(r), "_", " "))
}

// serviceName is a service's name as its product lists it, or its code.
func serviceName(sub usher.Subscription, code string) string {
	if i := slices.IndexFunc(sub.Product.Services, func(s usher.Service) bool { return s.Code == code }); i >= 0 {
		return sub.Product.Services[i].Name
	}
	return code
}
