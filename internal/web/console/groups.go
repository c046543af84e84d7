package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// Groups: the list, a group's page with its members, subscriptions,
// waiting list and exclusions, and the forms that change them. Every change
// goes through the access service, which decides who may make it; the pages
// only leave out what the matrix says the viewer cannot use. Groups synced
// from an identity provider keep their name, description and members as the
// provider sends them, so those controls are not offered for them.

// groupsPageSize is how many groups, and how many members of a group, one
// page shows.
const groupsPageSize = 25

// groupMatchLimit bounds the users an ambiguous "Add a member" lists.
const groupMatchLimit = 10

type groupsPage struct {
	Query     string
	Groups    []usher.Group
	CanCreate bool
	pageLinks
}

func (s *server) groups(w http.ResponseWriter, r *http.Request, v viewer) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	pg := pagerOf(r.URL.Query())
	list, err := s.access.ListGroups(r.Context(), v.Actor, q, pg.cursor, groupsPageSize)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	data := groupsPage{Query: q, Groups: list.Items, CanCreate: access.Can(v.Actor, access.ManageGroups, 0),
		pageLinks: pg.links("/groups", url.Values{"q": {q}}, list.NextCursor)}
	s.render(w, r, http.StatusOK, "groups", page{Title: "Groups", Data: data})
}

func (s *server) createGroup(w http.ResponseWriter, r *http.Request, v viewer) {
	if !s.readForm(w, r, v) {
		return
	}
	name, desc := r.PostForm.Get("name"), r.PostForm.Get("description")
	g, err := s.access.CreateGroup(r.Context(), v.Actor, access.GroupInput{Name: &name, Description: &desc})
	if err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, groupPath(g.ID), "The group "+g.Name+" has been created.")
}

func groupPath(id int64) string { return "/groups/" + strconv.FormatInt(id, 10) }

// groupPage is a group's page.
type groupPage struct {
	Group usher.Group
	// CanEdit offers the name, description, members and Delete: the viewer
	// manages groups and the group is not synced.
	CanEdit bool
	// CanManage is ManageGroups, whatever the group's source.
	CanManage bool
	Members   []groupMember
	pageLinks
	// Find and Matches answer an "Add a member" that matched several users.
	Find          string
	Matches       []usher.User
	Subscriptions []groupSubView
	// Offers are the contracts the viewer may give the group or change.
	Offers     []groupOffer
	Waiting    []groupWaiter
	Exclusions []groupExclusion
}

type groupSubView struct {
	ID                 int64
	Product, Contract  string
	Services, Benefits []string
	Seated, Waiting    int
	// CanUnassign: the viewer manages groups and this contract's seats.
	CanUnassign bool
}

// groupOffer is the form giving one contract's seat to the group, or
// changing what it gives.
type groupOffer struct {
	ID                 int64
	Product, Contract  string
	Assigned           bool
	Services, Benefits []checkView
}

type groupMember struct {
	usher.GroupMember
	Since string
}

type groupWaiter struct {
	usher.Waiter
	Contract, Since string
	// Linked: the viewer may open the contract's waiting list.
	Linked bool
}

type groupExclusion struct {
	usher.GroupExclusion
	Contract, Since string
	CanInclude      bool
}

func (s *server) group(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	data, ok := s.groupData(w, r, v, id)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "group", page{Title: "Group " + data.Group.Name, Data: data})
}

// groupData loads a group's page as the viewer sees it, answering an error
// itself.
func (s *server) groupData(w http.ResponseWriter, r *http.Request, v viewer, id int64) (groupPage, bool) {
	ctx := r.Context()
	d, err := s.access.Group(ctx, v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return groupPage{}, false
	}
	pg := pagerOf(r.URL.Query())
	members, err := s.access.GroupMembers(ctx, v.Actor, id, pg.cursor, groupsPageSize)
	if err != nil {
		s.renderError(w, r, &v, err)
		return groupPage{}, false
	}
	subs, err := s.access.ListSubscriptions(ctx, v.Actor, "", subscriptionsPageLimit)
	if err != nil {
		s.renderError(w, r, &v, err)
		return groupPage{}, false
	}
	manage := access.Can(v.Actor, access.ManageGroups, 0)
	data := groupPage{Group: d.Group, CanManage: manage, CanEdit: manage && !d.Synced,
		pageLinks: pg.links(groupPath(id), nil, members.NextCursor)}
	loc := v.Account.Location()
	for _, m := range members.Items {
		data.Members = append(data.Members, groupMember{GroupMember: m, Since: usher.HumanDay(m.AddedAt, loc)})
	}
	byID := map[int64]usher.Subscription{}
	for _, sub := range subs.Items {
		byID[sub.ID] = sub
	}
	contract := func(subID int64) string {
		if sub, ok := byID[subID]; ok {
			return sub.Product.Name + " " + sub.ContractNumber
		}
		for _, gs := range d.Subscriptions {
			if gs.SubscriptionID == subID {
				return gs.ContractNumber
			}
		}
		return "contract " + strconv.FormatInt(subID, 10)
	}
	given := map[int64]access.GroupSubscription{}
	for _, gs := range d.Subscriptions {
		given[gs.SubscriptionID] = gs
		view := groupSubView{ID: gs.SubscriptionID, Product: gs.Product, Contract: gs.ContractNumber, Seated: gs.Seated, Waiting: gs.Waiting,
			CanUnassign: manage && access.Can(v.Actor, access.ManageSeats, gs.SubscriptionID)}
		sub, known := byID[gs.SubscriptionID]
		if known {
			view.Product = sub.Product.Name
		}
		for _, code := range gs.Services {
			view.Services = append(view.Services, serviceName(sub, code))
		}
		for _, code := range gs.Benefits {
			view.Benefits = append(view.Benefits, usher.BenefitName(code))
		}
		data.Subscriptions = append(data.Subscriptions, view)
	}
	if manage {
		for _, sub := range subs.Items {
			if !access.Can(v.Actor, access.ManageSeats, sub.ID) {
				continue
			}
			gs, assigned := given[sub.ID]
			o := groupOffer{ID: sub.ID, Product: sub.Product.Name, Contract: sub.ContractNumber, Assigned: assigned}
			for _, svc := range sub.Product.Services {
				o.Services = append(o.Services, checkView{Code: svc.Code, Name: svc.Name, Checked: slices.Contains(gs.Services, svc.Code)})
			}
			for _, b := range sub.Benefits {
				o.Benefits = append(o.Benefits, checkView{Code: b, Name: usher.BenefitName(b), Checked: slices.Contains(gs.Benefits, b)})
			}
			data.Offers = append(data.Offers, o)
		}
	}
	for _, wt := range d.Waiting {
		_, visible := byID[wt.SubscriptionID]
		data.Waiting = append(data.Waiting, groupWaiter{Waiter: wt, Contract: contract(wt.SubscriptionID), Since: usher.HumanDay(wt.Since, loc), Linked: visible})
	}
	for _, e := range d.Exclusions {
		data.Exclusions = append(data.Exclusions, groupExclusion{GroupExclusion: e, Contract: contract(e.SubscriptionID),
			Since: usher.HumanDay(e.CreatedAt, loc), CanInclude: access.Can(v.Actor, access.ManageSeats, e.SubscriptionID)})
	}
	return data, true
}

func (s *server) updateGroup(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	name, desc := r.PostForm.Get("name"), r.PostForm.Get("description")
	if _, err := s.access.UpdateGroup(r.Context(), v.Actor, id, access.GroupInput{Name: &name, Description: &desc}); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, groupPath(id), "Your changes have been saved.")
}

func (s *server) deleteGroup(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	d, err := s.access.Group(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	if err := s.access.DeleteGroup(r.Context(), v.Actor, id); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	s.redirectWith(w, r, v, "/groups", "The group "+d.Name+" has been deleted; the seats only it gave have been freed.")
}

// addMember adds the user the form names: by id (a choice from the list of
// matches), or by an email or a search that finds exactly one user. A
// search that finds several lists them on the group's page to choose from.
func (s *server) addMember(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	ctx := r.Context()
	var u usher.User
	if raw := r.PostForm.Get("user_id"); raw != "" {
		uid, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || uid <= 0 {
			s.actionError(w, r, v, (&usher.Problems{{Field: "user_id", Reason: "is not a user id"}}).Err())
			return
		}
		uw, err := s.access.User(ctx, v.Actor, uid)
		if err != nil {
			s.actionError(w, r, v, err)
			return
		}
		u = uw.User
	} else {
		find := strings.TrimSpace(r.PostForm.Get("member"))
		if find == "" {
			s.actionError(w, r, v, (&usher.Problems{{Field: "member", Reason: "is required: an email, or part of a name or email"}}).Err())
			return
		}
		found, err := s.access.UserByEmail(ctx, v.Actor, find)
		switch {
		case err == nil:
			u = found
		case usher.ErrorCode(err) != usher.ENOTFOUND:
			s.renderError(w, r, &v, err)
			return
		default:
			list, err := s.access.ListUsers(ctx, v.Actor, find, "", groupMatchLimit)
			if err != nil {
				s.actionError(w, r, v, err)
				return
			}
			if len(list.Items) != 1 {
				s.groupMatches(w, r, v, id, find, list.Items)
				return
			}
			u = list.Items[0]
		}
	}
	res, err := s.access.AddMembers(ctx, v.Actor, id, []int64{u.ID})
	if err != nil {
		s.actionError(w, r, v, err)
		return
	}
	msg := displayName(u) + " is a member already."
	if res.Added > 0 {
		msg = displayName(u) + " has been added" + seatOutcome(res) + "."
	}
	s.redirectWith(w, r, v, groupPath(id), msg)
}

// seatOutcome says what a change of members did to seats, or "".
func seatOutcome(res access.MembersResult) string {
	var parts []string
	if res.Seated > 0 {
		parts = append(parts, fmt.Sprintf("%d %s given", res.Seated, pick(res.Seated, "seat", "seats")))
	}
	if res.Waiting > 0 {
		parts = append(parts, fmt.Sprintf("waiting for %d %s", res.Waiting, pick(res.Waiting, "seat", "seats")))
	}
	if res.Freed > 0 {
		parts = append(parts, fmt.Sprintf("%d %s freed", res.Freed, pick(res.Freed, "seat", "seats")))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// pick is one or many, as n asks.
func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// groupMatches shows the group's page with the users a search found, or
// says that none was found.
func (s *server) groupMatches(w http.ResponseWriter, r *http.Request, v viewer, id int64, find string, users []usher.User) {
	data, ok := s.groupData(w, r, v, id)
	if !ok {
		return
	}
	data.Find, data.Matches = find, users
	p := page{Title: "Group " + data.Group.Name, Data: data}
	status := http.StatusOK
	if len(users) == 0 {
		status = http.StatusUnprocessableEntity
		p.ErrorsTitle = "Nobody was added:"
		p.Errors = []string{"member: no user’s name or email contains “" + find + "”"}
	}
	s.render(w, r, status, "group", p)
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	uid, err := strconv.ParseInt(r.PostForm.Get("user_id"), 10, 64)
	if err != nil || uid <= 0 {
		s.actionError(w, r, v, (&usher.Problems{{Field: "user_id", Reason: "is not a user id"}}).Err())
		return
	}
	u, err := s.access.User(r.Context(), v.Actor, uid)
	if err != nil {
		s.actionError(w, r, v, err)
		return
	}
	res, err := s.access.RemoveMembers(r.Context(), v.Actor, id, []int64{uid})
	if err != nil {
		s.actionError(w, r, v, err)
		return
	}
	msg := displayName(u.User) + " was not a member."
	if res.Removed > 0 {
		msg = displayName(u.User) + " has been removed" + seatOutcome(res) + "."
	}
	s.redirectWith(w, r, v, groupPath(id), msg)
}

func (s *server) groupSubscriptionIDs(w http.ResponseWriter, r *http.Request, v viewer) (int64, int64, bool) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return 0, 0, false
	}
	sub, err := strconv.ParseInt(r.PathValue("sub"), 10, 64)
	if err != nil || sub <= 0 {
		s.renderStatus(w, r, http.StatusNotFound, &v, "Not found", "There is no such page.")
		return 0, 0, false
	}
	return id, sub, true
}

// assignGroup gives the group a contract's seat with the ticked services
// and benefits, or changes what an existing assignment gives.
func (s *server) assignGroup(w http.ResponseWriter, r *http.Request, v viewer) {
	id, sub, ok := s.groupSubscriptionIDs(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	in := access.GroupAssignmentInput{Services: r.PostForm["service"], Benefits: r.PostForm["benefit"]}
	if in.Services == nil {
		in.Services = []string{}
	}
	if in.Benefits == nil {
		in.Benefits = []string{}
	}
	before, err := s.access.Group(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	d, err := s.access.AssignGroup(r.Context(), v.Actor, id, sub, in)
	if err != nil {
		s.actionError(w, r, v, err)
		return
	}
	was := slices.ContainsFunc(before.Subscriptions, func(gs access.GroupSubscription) bool { return gs.SubscriptionID == sub })
	for _, gs := range d.Subscriptions {
		if gs.SubscriptionID != sub {
			continue
		}
		msg := fmt.Sprintf("Contract %s has been given to the group: %d %s held through it", gs.ContractNumber, gs.Seated, pick(gs.Seated, "seat", "seats"))
		if was {
			msg = fmt.Sprintf("What the group gets of contract %s has been saved: %d %s held through it", gs.ContractNumber, gs.Seated, pick(gs.Seated, "seat", "seats"))
		}
		if gs.Waiting > 0 {
			msg += fmt.Sprintf(", %d %s waiting for one", gs.Waiting, pick(gs.Waiting, "member", "members"))
		}
		s.redirectWith(w, r, v, groupPath(id), msg+".")
		return
	}
	s.redirectWith(w, r, v, groupPath(id), "Your changes have been saved.")
}

func (s *server) unassignGroup(w http.ResponseWriter, r *http.Request, v viewer) {
	id, sub, ok := s.groupSubscriptionIDs(w, r, v)
	if !ok {
		return
	}
	if err := s.access.UnassignGroup(r.Context(), v.Actor, id, sub); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	name := "The contract"
	if c, err := s.access.Subscription(r.Context(), v.Actor, sub); err == nil {
		name = "Contract " + c.ContractNumber
	}
	s.redirectWith(w, r, v, groupPath(id), name+" has been taken from the group; seats only the group gave have been freed.")
}

// includeMember ends an exclusion: the member gets the group's seat again,
// or waits for one.
func (s *server) includeMember(w http.ResponseWriter, r *http.Request, v viewer) {
	id, sub, ok := s.groupSubscriptionIDs(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	uid, err := strconv.ParseInt(r.PostForm.Get("user_id"), 10, 64)
	if err != nil || uid <= 0 {
		s.actionError(w, r, v, (&usher.Problems{{Field: "user_id", Reason: "is not a user id"}}).Err())
		return
	}
	if err := s.access.IncludeMember(r.Context(), v.Actor, id, sub, uid); err != nil {
		s.actionError(w, r, v, err)
		return
	}
	who := "The member"
	if u, err := s.access.User(r.Context(), v.Actor, uid); err == nil {
		who = displayName(u.User)
	}
	s.redirectWith(w, r, v, groupPath(id), who+" is included again: they get the group’s seat, or wait for one.")
}

// groupRoutes adds the pages of groups and of a subscription's waiting list.
func (s *server) groupRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /groups", s.signedIn(s.groups))
	mux.HandleFunc("POST /groups", s.signedIn(s.createGroup))
	mux.HandleFunc("GET /groups/{id}", s.signedIn(s.group))
	mux.HandleFunc("POST /groups/{id}", s.signedIn(s.updateGroup))
	mux.HandleFunc("POST /groups/{id}/delete", s.signedIn(s.deleteGroup))
	mux.HandleFunc("POST /groups/{id}/members", s.signedIn(s.addMember))
	mux.HandleFunc("POST /groups/{id}/members/remove", s.signedIn(s.removeMember))
	mux.HandleFunc("POST /groups/{id}/subscriptions/{sub}", s.signedIn(s.assignGroup))
	mux.HandleFunc("POST /groups/{id}/subscriptions/{sub}/unassign", s.signedIn(s.unassignGroup))
	mux.HandleFunc("POST /groups/{id}/subscriptions/{sub}/include", s.signedIn(s.includeMember))
	mux.HandleFunc("GET /subscriptions/{id}/waiting", s.signedIn(s.subscriptionWaiting))
}

// ---- a subscription's waiting list ----

type waitingPage struct {
	Subscription usher.Subscription
	Waiting      []groupWaiter
}

func (s *server) subscriptionWaiting(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	sub, err := s.access.Subscription(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	list, err := s.access.Waiting(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	data := waitingPage{Subscription: sub}
	loc := v.Account.Location()
	for _, wt := range list {
		data.Waiting = append(data.Waiting, groupWaiter{Waiter: wt, Since: usher.HumanDay(wt.Since, loc)})
	}
	s.render(w, r, http.StatusOK, "waiting", page{Title: "Waiting list: " + sub.Product.Name + " " + sub.ContractNumber, Data: data})
}
