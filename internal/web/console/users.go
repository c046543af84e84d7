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
	"github.com/usherhq/usher/internal/web"
)

// usersPageSize is how many users one page of the list shows.
const usersPageSize = 25

type usersPage struct {
	Query    string
	Filter   url.Values // q, product, role, status and sort as the address has them
	Filtered bool       // a search or a filter is in force
	Total    int
	Users    []userRow
	Products []option
	Roles    []option
	Statuses []option
	Sorts    []option
	Columns  []usersColumn
	CSVHref  string
	// Return is this page's address, where a bulk action comes back to.
	Return  string
	CanEdit bool // whether "Edit Access" leads anywhere for this viewer
	CanAdd  bool // whether the viewer may add users
	CanBulk bool // whether the viewer may disable users: rows get checkboxes
	pageLinks
}

type userRow struct {
	usher.User
	Created string
}

// usersColumn is a heading of the users table that sorts when clicked.
type usersColumn struct {
	Label, Href string
	Sort        string // "ascending", "descending" or "" for aria-sort
}

// usersFilterKeys are the query parameters the list keeps across pages,
// sorts and exports.
var usersFilterKeys = []string{"q", "product", "role", "status", "sort"}

func (s *server) users(w http.ResponseWriter, r *http.Request, v viewer) {
	q := r.URL.Query()
	query := web.UserQueryOf(q)
	query.Q = strings.TrimSpace(query.Q)
	pg := pagerOf(q)
	list, err := s.access.FindUsers(r.Context(), v.Actor, query, pg.cursor, usersPageSize)
	if usher.ErrorCode(err) == usher.EINVALID {
		// A filter from a hand-made address: say which, and show everyone.
		p := page{Title: "Users", ErrorsTitle: "The list shows everyone, because:", Errors: errorLines(err)}
		q, query, pg = url.Values{}, access.UserQuery{}, pager{}
		list, err = s.access.FindUsers(r.Context(), v.Actor, query, "", usersPageSize)
		if err == nil {
			p.Data = s.usersData(r, v, q, query, pg, list)
			s.render(w, r, http.StatusOK, "users", p)
			return
		}
	}
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	s.render(w, r, http.StatusOK, "users", page{Title: "Users", Data: s.usersData(r, v, q, query, pg, list)})
}

func (s *server) usersData(r *http.Request, v viewer, q url.Values, query access.UserQuery, pg pager, list access.UserList) usersPage {
	filter := url.Values{}
	for _, k := range usersFilterKeys {
		if x := strings.TrimSpace(q.Get(k)); x != "" {
			filter.Set(k, x)
		}
	}
	data := usersPage{
		Query: query.Q, Filter: filter, Total: list.Total,
		Filtered: query.Q != "" || query.Product != "" || query.Role != "" || query.Status != "",
		CanEdit:  access.CanAny(v.Actor, access.ManageSeats), CanAdd: access.Can(v.Actor, access.ManageUsers, 0),
		CanBulk:   access.Can(v.Actor, access.ManageUsers, 0),
		pageLinks: pg.links("/users", filter, list.NextCursor),
		CSVHref:   "/users.csv",
		Return:    r.URL.RequestURI(),
	}
	if len(filter) > 0 {
		data.CSVHref += "?" + filter.Encode()
	}
	loc := v.Account.Location()
	for _, u := range list.Items {
		data.Users = append(data.Users, userRow{User: u, Created: usher.HumanDay(u.CreatedAt, loc)})
	}
	data.Products = []option{{Value: "", Label: "Any product", Selected: query.Product == ""}}
	if products, err := s.access.ListProducts(r.Context(), v.Actor); err == nil {
		for _, p := range products {
			data.Products = append(data.Products, option{Value: p.Code, Label: p.Name, Selected: p.Code == query.Product})
		}
	}
	data.Roles = []option{{Value: "", Label: "Any role", Selected: query.Role == ""}}
	for _, role := range usher.Roles {
		data.Roles = append(data.Roles, option{Value: string(role), Label: roleName(role), Selected: role == query.Role})
	}
	data.Statuses = []option{
		{Value: "", Label: "Any status", Selected: query.Status == ""},
		{Value: string(usher.UserActive), Label: "Active", Selected: query.Status == usher.UserActive},
		{Value: string(usher.UserDisabled), Label: "Disabled", Selected: query.Status == usher.UserDisabled},
	}
	for _, o := range []option{{"name", "Name, A to Z", false}, {"-name", "Name, Z to A", false}, {"email", "Email, A to Z", false}, {"-email", "Email, Z to A", false},
		{"status", "Active first", false}, {"-status", "Disabled first", false}, {"-created", "Newest first", false}, {"created", "Oldest first", false}} {
		o.Selected = o.Value == query.Sort || query.Sort == "" && o.Value == "name"
		data.Sorts = append(data.Sorts, o)
	}
	current := strings.TrimPrefix(query.Sort, "-")
	if current == "" {
		current = string(access.SortUsersByName)
	}
	desc := strings.HasPrefix(query.Sort, "-")
	for _, c := range []struct{ label, key string }{{"Name", "name"}, {"Email", "email"}, {"Status", "status"}, {"Added", "created"}} {
		col := usersColumn{Label: c.label}
		next := c.key
		if c.key == current {
			col.Sort = "ascending"
			if desc {
				col.Sort = "descending"
			} else {
				next = "-" + c.key
			}
		}
		link := url.Values{}
		for k, x := range filter {
			link[k] = x
		}
		link.Set("sort", next)
		if next == "name" {
			link.Del("sort")
		}
		col.Href = "/users"
		if len(link) > 0 {
			col.Href += "?" + link.Encode()
		}
		data.Columns = append(data.Columns, col)
	}
	return data
}

// usersCSV streams the users list with the page's filters and order.
func (s *server) usersCSV(w http.ResponseWriter, r *http.Request, v viewer) {
	query := web.UserQueryOf(r.URL.Query())
	if err := web.WriteUsersCSV(w, r, s.access, v.Actor, query, s.log); err != nil {
		s.renderError(w, r, &v, err)
	}
}

// disableUsers disables the ticked users at once: all of them or none.
func (s *server) disableUsers(w http.ResponseWriter, r *http.Request, v viewer) {
	if !s.readForm(w, r, v) {
		return
	}
	back := r.PostForm.Get("return")
	if !strings.HasPrefix(back, "/users") || strings.HasPrefix(back, "//") {
		back = "/users"
	}
	var ids []int64
	for _, raw := range r.PostForm["user"] {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			s.renderStatus(w, r, http.StatusBadRequest, &v, "Bad request", "Nothing was changed: the selection could not be read.")
			return
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		s.renderStatus(w, r, http.StatusUnprocessableEntity, &v, "Nothing was changed", "Nothing was changed: tick the users to disable first.")
		return
	}
	n, err := s.access.SetUsersStatus(r.Context(), v.Actor, ids, usher.UserDisabled)
	if err != nil {
		s.actionError(w, r, v, err)
		return
	}
	msg := "Disabled " + plural(n, "user") + ": they can no longer sign in."
	if skipped := len(ids) - n; skipped == 1 {
		msg += " 1 was disabled already."
	} else if skipped > 1 {
		msg += fmt.Sprintf(" %d were disabled already.", skipped)
	}
	s.redirectWith(w, r, v, back, msg)
}

// ---- Edit Access ----

const (
	tabProducts = "products"
	tabBenefits = "benefits"
)

type accessPage struct {
	User      usher.User
	Self      bool
	Tab       string
	Contracts []contractView
	Editable  bool // at least one contract can be changed: show Save
	// Version is the access the page shows; Save sends it back so that a
	// change someone made meanwhile is not silently replaced.
	Version string
}

type contractView struct {
	ID             int64
	Product        string
	ContractNumber string
	Plan           usher.Plan
	Seats          int
	SeatsAvailable int
	Assigned       bool
	Editable       bool
	Services       []checkView
	Benefits       []checkView
}

type checkView struct {
	Code, Name string
	Checked    bool
}

func (s *server) accessPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	ua, err := s.access.Access(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	p := page{Title: accessTitle(v, ua.User), Data: accessView(v, ua, tabOf(r.URL.Query().Get("tab")), nil)}
	s.render(w, r, http.StatusOK, "access", p)
}

// accessTitle names the page as the navigation does for one's own access.
func accessTitle(v viewer, u usher.User) string {
	if u.ID == v.Actor.UserID {
		return "My access"
	}
	return "Edit Access: " + u.Name
}

func tabOf(s string) string {
	if s == tabBenefits {
		return tabBenefits
	}
	return tabProducts
}

func (s *server) pathID(w http.ResponseWriter, r *http.Request, v viewer) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderStatus(w, r, http.StatusNotFound, &v, "Not found", "There is no such page.")
		return 0, false
	}
	return id, true
}

// accessView turns a user's access into the page's contracts. With want,
// the contracts show what the person asked for rather than what is stored,
// so a refused save keeps their choices on screen.
func accessView(v viewer, ua access.UserAccess, tab string, want map[int64]access.AccessChange) accessPage {
	out := accessPage{User: ua.User, Self: ua.User.ID == v.Actor.UserID, Tab: tab, Version: ua.Version}
	for _, e := range ua.Subscriptions {
		assigned, services, benefits := e.Assigned, e.Services, e.Benefits
		if c, ok := want[e.Subscription.ID]; ok {
			assigned, services, benefits = c.Assigned, c.Services, c.Benefits
		}
		c := contractView{
			ID: e.Subscription.ID, Product: e.Subscription.Product.Name, ContractNumber: e.Subscription.ContractNumber,
			Plan: e.Subscription.Plan, Seats: e.Subscription.Seats, SeatsAvailable: e.Subscription.SeatsAvailable(),
			Assigned: assigned, Editable: e.Editable,
		}
		for _, svc := range e.Subscription.Product.Services {
			c.Services = append(c.Services, checkView{Code: svc.Code, Name: svc.Name, Checked: slices.Contains(services, svc.Code)})
		}
		for _, b := range e.Subscription.Benefits {
			c.Benefits = append(c.Benefits, checkView{Code: b, Name: usher.BenefitName(b), Checked: slices.Contains(benefits, b)})
		}
		out.Editable = out.Editable || e.Editable
		out.Contracts = append(out.Contracts, c)
	}
	return out
}

// saveAccess applies one tab's form. The form carries only that tab's
// controls, so the other tab's stored state is sent along unchanged; the
// access service then replaces everything the viewer manages at once.
func (s *server) saveAccess(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, &v, "Bad request", "The form could not be read.")
		return
	}
	tab := tabOf(r.PostForm.Get("tab"))
	ua, err := s.access.Access(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	assign := map[int64]bool{}
	for _, raw := range r.PostForm["assign"] {
		if sid, err := strconv.ParseInt(raw, 10, 64); err == nil {
			assign[sid] = true
		}
	}
	services := pairs(r.PostForm["service"])
	benefits := pairs(r.PostForm["benefit"])

	var changes []access.AccessChange
	want := map[int64]access.AccessChange{}
	for _, e := range ua.Subscriptions {
		if !e.Editable {
			continue
		}
		c := access.AccessChange{SubscriptionID: e.Subscription.ID, Assigned: e.Assigned, Services: e.Services, Benefits: e.Benefits}
		switch tab {
		case tabProducts:
			c.Assigned, c.Services = assign[c.SubscriptionID], services[c.SubscriptionID]
		case tabBenefits:
			c.Benefits = benefits[c.SubscriptionID]
		}
		changes = append(changes, c)
		want[c.SubscriptionID] = c
	}
	var ifMatch []string
	if version := r.PostForm.Get("version"); version != "" {
		ifMatch = []string{version}
	}
	if _, err := s.access.SetAccess(r.Context(), v.Actor, id, changes, ifMatch...); err != nil {
		status := errorStatus(usher.ErrorCode(err))
		if usher.ErrorCode(err) == usher.EPRECONDITION {
			// Show what is stored now, not what was ticked on the outdated page.
			s.render(w, r, status, "access", page{
				Title:       accessTitle(v, ua.User),
				ErrorsTitle: "Nothing was saved:",
				Errors:      []string{"Someone else changed " + ua.User.Name + "'s access after you opened this page. It now shows the current access; make your change again."},
				Data:        accessView(v, ua, tab, nil),
			})
			return
		}
		if status == http.StatusInternalServerError || status == http.StatusNotFound {
			s.renderError(w, r, &v, err)
			return
		}
		s.render(w, r, status, "access", page{
			Title:       accessTitle(v, ua.User),
			ErrorsTitle: "Nothing was saved:",
			Errors:      describeAccessErrors(err, changes, ua),
			Data:        accessView(v, ua, tab, want),
		})
		return
	}
	s.redirectWith(w, r, v, fmt.Sprintf("/users/%d/access?tab=%s", id, tab), "Your changes to "+displayName(ua.User)+"'s access have been saved.")
}

// pairs reads "subscriptionID/code" values into codes by subscription.
func pairs(values []string) map[int64][]string {
	out := map[int64][]string{}
	for _, raw := range values {
		sid, code, ok := strings.Cut(raw, "/")
		id, err := strconv.ParseInt(sid, 10, 64)
		if !ok || err != nil || code == "" {
			continue
		}
		out[id] = append(out[id], code)
	}
	return out
}

// describeAccessErrors names contracts instead of the API's field paths
// (subscriptions[2].services), which mean nothing on a page.
func describeAccessErrors(err error, changes []access.AccessChange, ua access.UserAccess) []string {
	fields := usher.ErrorFields(err)
	if len(fields) == 0 {
		return []string{errorText(err)}
	}
	names := map[int64]string{}
	for _, e := range ua.Subscriptions {
		names[e.Subscription.ID] = e.Subscription.Product.Name + " " + e.Subscription.ContractNumber
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		label := f.Field
		var i int
		if _, err := fmt.Sscanf(f.Field, "subscriptions[%d]", &i); err == nil && i >= 0 && i < len(changes) {
			label = names[changes[i].SubscriptionID]
		}
		out = append(out, label+": "+f.Reason)
	}
	return out
}

// displayName is how the console names a person: their name, or their
// address when no name is set.
func displayName(u usher.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}
