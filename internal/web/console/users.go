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

// usersPageSize is how many users one page of the list shows.
const usersPageSize = 25

type usersPage struct {
	Query   string
	Users   []usher.User
	CanEdit bool // whether "Edit Access" leads anywhere for this viewer
	CanAdd  bool // whether the viewer may add users
	pageLinks
}

func (s *server) users(w http.ResponseWriter, r *http.Request, v viewer) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	pg := pagerOf(r.URL.Query())
	list, err := s.access.ListUsers(r.Context(), v.Actor, q, pg.cursor, usersPageSize)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	data := usersPage{Query: q, Users: list.Items, CanEdit: access.CanAny(v.Actor, access.ManageSeats), CanAdd: access.Can(v.Actor, access.ManageUsers, 0),
		pageLinks: pg.links("/users", url.Values{"q": {q}}, list.NextCursor)}
	s.render(w, r, http.StatusOK, "users", page{Title: "Users", Data: data})
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
