package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
	"github.com/usherhq/usher/internal/web"
)

// reportPath is the Usage Report's page; notification emails link to it
// with ?status=inactive&range=….
const reportPath = notify.ReportPath

// reportPageSize is how many seats one page of the report shows.
const reportPageSize = 50

type option struct {
	Value, Label string
	Selected     bool
}

// reportFilter is the report's filter as the page's query string holds it.
type reportFilter struct {
	Status, Range, Product, Subscription, Query, Sort string
	// Snapshot shows the report as of an email or reclaim run.
	Snapshot string
}

func filterOf(q url.Values) reportFilter {
	return reportFilter{
		Status: q.Get("status"), Range: q.Get("range"), Product: q.Get("product"),
		Subscription: q.Get("subscription"), Query: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort"),
		Snapshot: q.Get("snapshot"),
	}
}

// values is the filter as a query string, leaving out what is unset.
func (f reportFilter) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"status": f.Status, "range": f.Range, "product": f.Product, "subscription": f.Subscription, "q": f.Query, "sort": f.Sort, "snapshot": f.Snapshot} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

func (f reportFilter) href(extra url.Values) string {
	v := f.values()
	for k, x := range extra {
		v[k] = x
	}
	if len(v) == 0 {
		return reportPath
	}
	return reportPath + "?" + v.Encode()
}

// service is the filter as the usage service takes it, and what is wrong
// with it before the service looks: a contract that is not a number.
func (f reportFilter) service() (usage.ReportFilter, usher.Problems) {
	out := usage.ReportFilter{Status: f.Status, Range: usage.Range(f.Range), Product: f.Product, Query: f.Query, Sort: f.Sort, Snapshot: f.Snapshot}
	var p usher.Problems
	if f.Subscription != "" {
		id, err := strconv.ParseInt(f.Subscription, 10, 64)
		if err != nil || id <= 0 {
			p.Addf("subscription", "%q is not a contract", f.Subscription)
		}
		out.SubscriptionID = id
	}
	return out, p
}

// withProblems adds what the page found wrong to the service's own
// validation error, so one answer names every wrong filter. Any other
// error (the person may not see the report) wins.
func withProblems(p usher.Problems, err error) error {
	if len(p) == 0 || err != nil && usher.ErrorCode(err) != usher.EINVALID {
		return err
	}
	return append(p, usher.ErrorFields(err)...).Err()
}

type reportPage struct {
	Filter    reportFilter
	Statuses  []option
	Ranges    []option
	Products  []option
	Contracts []option
	Heading   string // what the rows are, e.g. "Inactive users over the last 3 months"
	Totals    usage.ReportTotals
	Processed string // when usage was last processed, in the account's time zone
	Columns   []reportColumn
	Rows      []reportRow
	// Return is this page's address, where Unassign comes back to.
	Return  string
	CSVHref string
	pageLinks
	CanUnassign bool // at least one row has a checkbox
	Filtered    bool
	// Snapshot is set when the report is shown as of an email or run.
	Snapshot *snapshotView
}

// snapshotView says which email or run the report is shown as of, and
// where the same report is now.
type snapshotView struct {
	ID      string
	Of      string // "the email of 25 Nov 2026, 08:00 CET"
	NowHref string
	Changed int // seats changed since, among those matching
}

type reportColumn struct {
	Label string
	Class string        // the heading's class, e.g. "status"
	Also  *reportColumn // a second sort link in the same heading (Email under Name)
	Href  string        // sorts by this column; "" when it does not sort
	Sort  string        // "ascending", "descending" or "" for aria-sort
	Num   bool
	After string // text after the label, outside the sort link
}

type reportRow struct {
	usage.ReportRow
	Key      string // "userID/subscriptionID", the checkbox's value
	Assigned string
	Last     string
	// DaysInactive counts the days since the seat was last used, or since
	// it was assigned when it never was.
	DaysInactive int
	Unassigned   string // the day a seat freed in the range was freed
	// Group says through which groups the seat is held, or Direct.
	Group string
	// Change says, in words, how a snapshot's seat changed since; "" when
	// it did not.
	Change     string
	Selectable bool
	Selected   bool
}

var reportStatuses = []option{
	{Value: "all", Label: "All users"}, {Value: "inactive", Label: "Inactive users"},
	{Value: "never_used", Label: "Inactive: never used"}, {Value: "stopped_using", Label: "Inactive: stopped using"},
	{Value: "active", Label: "Active users"}, {Value: "unavailable", Label: "Plans without usage data"},
	{Value: "unassigned", Label: "Unassigned in the range"},
}

func (s *server) usageReport(w http.ResponseWriter, r *http.Request, v viewer) {
	if s.reportCSV(w, r, v) {
		return
	}
	data, err := s.reportView(r.Context(), v, r.URL.Query(), nil)
	if err != nil {
		s.renderReportError(w, r, v, err)
		return
	}
	p := page{Title: "Usage Report", Data: data}
	s.render(w, r, http.StatusOK, "report", p)
}

// renderReportError shows why the report cannot be shown. Wrong filters
// come from a hand-edited or outdated address: it names each of them.
func (s *server) renderReportError(w http.ResponseWriter, r *http.Request, v viewer, err error) {
	if usher.ErrorCode(err) != usher.EINVALID {
		s.renderError(w, r, &v, err)
		return
	}
	s.render(w, r, http.StatusUnprocessableEntity, "status", page{Title: "Usage Report", ErrorsTitle: "The report's filters are not valid:",
		Errors: errorLines(err), Data: statusPage{Heading: "Usage Report", Text: "Change the address, or open the report without filters from the navigation."}})
}

// reportView asks the usage service for one page of the report. selected
// keeps the given rows ticked, for a page shown again after a refusal.
func (s *server) reportView(ctx context.Context, v viewer, q url.Values, selected []string) (reportPage, error) {
	f := filterOf(q)
	sf, problems := f.service()
	if len(problems) > 0 {
		sf.SubscriptionID = 0 // let the service check the rest
	}
	pg := pagerOf(q)
	sf.Cursor, sf.Limit = pg.cursor, reportPageSize
	rep, err := s.usage.Report(ctx, v.Actor, sf)
	if err = withProblems(problems, err); err != nil {
		return reportPage{}, err
	}
	subs, err := s.access.ListSubscriptions(ctx, v.Actor, "", subscriptionsPageLimit)
	if err != nil {
		return reportPage{}, err
	}
	loc := v.Account.Location()
	status := cmpOr(f.Status, "all")
	data := reportPage{
		Filter: f, Totals: rep.Totals,
		Return:   f.href(pg.values()),
		CSVHref:  f.href(url.Values{"format": {"csv"}}),
		Filtered: f.Status != "" && f.Status != "all" || f.Product != "" || f.Subscription != "" || f.Query != "",
	}
	for _, o := range reportStatuses {
		o.Selected = o.Value == status
		data.Statuses = append(data.Statuses, o)
	}
	for _, rg := range usage.Ranges {
		data.Ranges = append(data.Ranges, option{Value: string(rg), Label: rg.Label(), Selected: rg == rep.Range})
	}
	data.Products = []option{{Value: "", Label: "All products", Selected: f.Product == ""}}
	data.Contracts = []option{{Value: "", Label: "All contracts", Selected: f.Subscription == ""}}
	seen := map[string]bool{}
	for _, sub := range subs.Items {
		if !seen[sub.Product.Code] {
			seen[sub.Product.Code] = true
			data.Products = append(data.Products, option{Value: sub.Product.Code, Label: sub.Product.Name, Selected: sub.Product.Code == f.Product})
		}
		id := strconv.FormatInt(sub.ID, 10)
		data.Contracts = append(data.Contracts, option{Value: id, Label: sub.Product.Name + " " + sub.ContractNumber + " (" + planName(sub.Plan) + ")", Selected: id == f.Subscription})
	}
	slices.SortStableFunc(data.Products[1:], func(a, b option) int { return strings.Compare(a.Label, b.Label) })

	data.Heading = reportHeading(status, rep.Range)
	if snap := rep.Snapshot; snap != nil {
		data.Snapshot = snapshotOf(*snap, rep.Totals, loc)
		data.Heading = "Inactive users as of " + data.Snapshot.Of
		data.Filtered = f.Product != "" || f.Subscription != "" || f.Query != ""
	}
	if rep.ProcessedAt != nil {
		data.Processed = usher.HumanTime(*rep.ProcessedAt, loc)
	}
	data.Columns = reportColumns(f, rep.Snapshot != nil || f.Status == string(usage.StatusUnassigned))
	for _, row := range rep.Rows {
		rv := reportRow{
			ReportRow: row, Key: fmt.Sprintf("%d/%d", row.UserID, row.SubscriptionID),
			Assigned:   usher.HumanDay(row.AssignedAt, loc),
			Selectable: access.Can(v.Actor, access.ManageSeats, row.SubscriptionID) && row.Status != usage.StatusUnassigned,
		}
		if row.UnassignedAt != nil {
			rv.Unassigned = row.UnassignedAt.Human()
		}
		rv.Group = groupLabel(row.Sources)
		rv.Change = changeText(row)
		if rv.Change != "" {
			// A seat that changed since the email is not the email's to
			// take: it cannot be selected from this view.
			rv.Selectable = false
		}
		rv.Selected = rv.Selectable && slices.Contains(selected, rv.Key)
		switch {
		case row.Status == usage.StatusUnavailable:
			rv.Last = "—"
		case row.LastUsed == nil:
			rv.Last = "Never"
		default:
			rv.Last = row.LastUsed.Human()
		}
		if row.DaysInactive != nil {
			rv.DaysInactive = *row.DaysInactive
		}
		data.CanUnassign = data.CanUnassign || rv.Selectable
		data.Rows = append(data.Rows, rv)
	}
	data.pageLinks = pg.links(reportPath, f.values(), rep.NextCursor)
	return data, nil
}

// reportHeading says what the report's rows are.
func reportHeading(status string, rg usage.Range) string {
	switch status {
	case "inactive":
		return "Inactive users over the last " + rg.Label()
	case "never_used":
		return "Inactive users over the last " + rg.Label() + ": never used since assigned"
	case "stopped_using":
		return "Inactive users over the last " + rg.Label() + ": stopped using"
	case "active":
		return "Active users over the last " + rg.Label()
	case "unavailable":
		return "Seats on plans without usage data"
	case "unassigned":
		return "Seats unassigned in the last " + rg.Label()
	default:
		return "All users, usage over the last " + rg.Label()
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reportColumns are the table's headings; those that sort link to the
// report sorted by them, the current one in the other direction.
func reportColumns(f reportFilter, nameOnly bool) []reportColumn {
	cur, desc := strings.CutPrefix(cmpOr(f.Sort, "name"), "-")
	col := func(label, key string, num bool) reportColumn {
		c := reportColumn{Label: label, Num: num}
		if key == "" || nameOnly && key != "name" {
			return c
		}
		next := key
		if key == cur {
			c.Sort = "ascending"
			if desc {
				c.Sort = "descending"
			} else {
				next = "-" + key
			}
		}
		g := f
		g.Sort = next
		if next == "name" {
			g.Sort = ""
		}
		c.Href = g.href(nil)
		return c
	}
	// Name and email share a column, as do product and contract, so that
	// every column fits 1280 px.
	name, email := col("Name", "name", false), col("Email", "email", false)
	name.Also, name.Class = &email, "person"
	status := col("Status", "", false)
	status.Class = "status"
	product := col("Product", "product", false)
	product.After = " · Group"
	return []reportColumn{
		name, product,
		col("Assigned", "", false), col("Last used", "last_used", false),
		col("Days used", "days_used", true), col("Days a month", "", true), col("Days inactive", "", true), status,
	}
}

// reportCSV downloads every row matching the page's filter, through the
// same writer as the API's CSV export.
func (s *server) reportCSV(w http.ResponseWriter, r *http.Request, v viewer) bool {
	if r.URL.Query().Get("format") != "csv" {
		return false
	}
	sf, problems := filterOf(r.URL.Query()).service()
	err := problems.Err()
	if err == nil {
		err = web.WriteReportCSV(w, r, s.usage, v.Actor, sf, s.log)
	}
	if err != nil {
		s.renderReportError(w, r, v, err)
	}
	return true
}

// ---- unassign ----

type unassignPage struct {
	Return string
	Keys   []string
	Seats  []unassignSeat
	Users  int
	// All is a selection by filter: every seat matching the report's
	// filter, Expected of them when the page was shown.
	All      bool
	Expected int
	Heading  string // the filter's description, for a selection by filter
	More     int    // seats not listed by name
}

// seatKey names one seat: a user on a subscription.
type seatKey struct{ user, sub int64 }

func keyOf(it access.UnassignItem) seatKey { return seatKey{it.UserID, it.SubscriptionID} }

type unassignSeat struct {
	Name, Email, Contract string
}

// unassignSeats reads the ticked rows of the report.
func unassignSeats(values []string) ([]access.UnassignItem, []string) {
	var items []access.UnassignItem
	var keys []string
	seen := map[string]bool{}
	for _, raw := range values {
		u, sub, ok := strings.Cut(raw, "/")
		uid, err1 := strconv.ParseInt(u, 10, 64)
		sid, err2 := strconv.ParseInt(sub, 10, 64)
		if !ok || err1 != nil || err2 != nil || seen[raw] {
			continue
		}
		seen[raw] = true
		keys = append(keys, raw)
		items = append(items, access.UnassignItem{UserID: uid, SubscriptionID: sid})
	}
	return items, keys
}

// unassign takes the seats ticked in the report. Without confirm=1 it
// shows a confirmation page (the script shows a dialog instead and sends
// confirm=1); with it, the access service unassigns them all or none.
func (s *server) unassign(w http.ResponseWriter, r *http.Request, v viewer) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, &v, "Bad request", "The form could not be read.")
		return
	}
	back := localPath(r.PostForm.Get("return"))
	if !strings.HasPrefix(back, reportPath) {
		back = reportPath
	}
	backURL, _ := url.Parse(back)
	if r.PostForm.Get("all") == "1" {
		s.unassignMatching(w, r, v, back, backURL.Query())
		return
	}
	items, keys := unassignSeats(r.PostForm["seat"])
	if len(items) == 0 {
		s.reportWithErrors(w, r, v, backURL.Query(), nil, http.StatusUnprocessableEntity, "Nothing was unassigned:", []string{"Select at least one user to unassign."})
		return
	}
	if r.PostForm.Get("confirm") != "1" {
		names, err := s.seatNames(r.Context(), v, items)
		if err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		data := unassignPage{Return: back, Keys: keys}
		users := map[int64]bool{}
		for _, it := range items {
			users[it.UserID] = true
			data.Seats = append(data.Seats, names[keyOf(it)])
		}
		data.Users = len(users)
		s.render(w, r, http.StatusOK, "unassign", page{Title: "Unassign", Data: data})
		return
	}
	if err := s.unusedSince(r.Context(), v, backURL.Query(), items); err != nil {
		s.renderReportError(w, r, v, err)
		return
	}
	res, err := s.access.Unassign(r.Context(), v.Actor, items)
	if err != nil {
		status := errorStatus(usher.ErrorCode(err))
		if status == http.StatusInternalServerError {
			s.renderError(w, r, &v, err)
			return
		}
		names, nerr := s.seatNames(r.Context(), v, items)
		if nerr != nil {
			s.renderError(w, r, &v, nerr)
			return
		}
		s.reportWithErrors(w, r, v, backURL.Query(), keys, status, "Nothing was unassigned:", describeUnassignErrors(err, items, names))
		return
	}
	q := backURL.Query()
	q.Del("cursor")
	q.Del("trail")
	s.redirectWith(w, r, v, reportHref(q), withUndo(unassignedMessage(res), res.BatchID))
}

// unassignMatching unassigns every seat matching the report's filter: "Select
// all N matching". The server finds the seats again; if they are no longer
// the N the person confirmed, nothing changes. Either all of them go or none.
func (s *server) unassignMatching(w http.ResponseWriter, r *http.Request, v viewer, back string, q url.Values) {
	rows, heading, err := s.matchingSeats(r.Context(), v, q)
	if err != nil {
		if usher.ErrorCode(err) == usher.EINVALID {
			s.reportWithErrors(w, r, v, q, nil, http.StatusUnprocessableEntity, "Nothing was unassigned:", errorLines(err))
			return
		}
		s.renderError(w, r, &v, err)
		return
	}
	items := make([]access.UnassignItem, len(rows))
	users := map[int64]bool{}
	for i, row := range rows {
		items[i] = access.UnassignItem{UserID: row.UserID, SubscriptionID: row.SubscriptionID}
		users[row.UserID] = true
	}
	expected, _ := strconv.Atoi(r.PostForm.Get("expected"))
	if r.PostForm.Get("confirm") != "1" {
		data := unassignPage{Return: back, All: true, Expected: len(items), Users: len(users), Heading: heading}
		for i, row := range rows {
			if i == unassignListed {
				data.More = len(rows) - i
				break
			}
			data.Seats = append(data.Seats, unassignSeat{Name: row.Name, Email: row.Email, Contract: row.ProductName + " " + row.ContractNumber})
		}
		s.render(w, r, http.StatusOK, "unassign", page{Title: "Unassign", Data: data})
		return
	}
	if len(items) == 0 || len(items) != expected {
		s.reportWithErrors(w, r, v, q, nil, http.StatusConflict, "Nothing was unassigned:", []string{fmt.Sprintf(
			"The seats matching the filter changed since you selected them: %s now, not %d. Check the report and select again.", plural(len(items), "seat"), expected)})
		return
	}
	if err := s.unusedSince(r.Context(), v, q, items); err != nil {
		s.renderReportError(w, r, v, err)
		return
	}
	res, err := s.access.Unassign(r.Context(), v.Actor, items)
	if err != nil {
		status := errorStatus(usher.ErrorCode(err))
		if status == http.StatusInternalServerError {
			s.renderError(w, r, &v, err)
			return
		}
		names := map[seatKey]unassignSeat{}
		for _, row := range rows {
			names[seatKey{row.UserID, row.SubscriptionID}] = unassignSeat{Name: row.Name, Email: row.Email, Contract: row.ProductName + " " + row.ContractNumber}
		}
		s.reportWithErrors(w, r, v, q, nil, status, "Nothing was unassigned:", describeUnassignErrors(err, items, names))
		return
	}
	q.Del("cursor")
	q.Del("trail")
	s.redirectWith(w, r, v, reportHref(q), withUndo(unassignedMessage(res), res.BatchID))
}

// unusedSince makes an unassign from the report as of an email refuse
// every seat used or given again since the email: the page leaves such
// seats out of the selection, and this holds when someone uses the product
// between the page and the click.
func (s *server) unusedSince(ctx context.Context, v viewer, q url.Values, items []access.UnassignItem) error {
	id := q.Get("snapshot")
	if id == "" {
		return nil
	}
	taken, since, err := s.usage.UnusedSince(ctx, v.Actor, id)
	if err != nil {
		return err
	}
	for i, it := range items {
		t, ok := since[usage.SeatKey{UserID: it.UserID, SubscriptionID: it.SubscriptionID}]
		if !ok {
			t = taken
		}
		items[i].UnusedSince = &t
	}
	return nil
}

// unassignListed is how many seats the confirmation of a selection by
// filter names; it counts the rest.
const unassignListed = 20

// matchingSeats reads every row of the report's filter, page by page, up to
// what one unassign may take.
func (s *server) matchingSeats(ctx context.Context, v viewer, q url.Values) ([]usage.ReportRow, string, error) {
	f := filterOf(q)
	sf, problems := f.service()
	if err := problems.Err(); err != nil {
		return nil, "", err
	}
	sf.Limit = 1000
	var rows []usage.ReportRow
	var heading string
	for {
		rep, err := s.usage.Report(ctx, v.Actor, sf)
		if err != nil {
			return nil, "", fmt.Errorf("seats matching the filter: %w", err)
		}
		heading = reportHeading(cmpOr(f.Status, "all"), rep.Range)
		rows = append(rows, rep.Rows...)
		if len(rows) > access.MaxUnassignItems {
			return nil, "", usher.Errorf(usher.EINVALID, "more than %d seats match the filter; narrow it and unassign in parts", access.MaxUnassignItems)
		}
		if rep.NextCursor == "" {
			return rows, heading, nil
		}
		sf.Cursor = rep.NextCursor
	}
}

func (s *server) reportWithErrors(w http.ResponseWriter, r *http.Request, v viewer, q url.Values, keys []string, status int, title string, errs []string) {
	data, err := s.reportView(r.Context(), v, q, keys)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	s.render(w, r, status, "report", page{Title: "Usage Report", ErrorsTitle: title, Errors: errs, Data: data})
}

// seatNames names each item's user and contract as the viewer may see
// them; an item the viewer cannot see keeps its ids, and the access
// service refuses it when asked to unassign it.
func (s *server) seatNames(ctx context.Context, v viewer, items []access.UnassignItem) (map[seatKey]unassignSeat, error) {
	out := map[seatKey]unassignSeat{}
	byUser := map[int64]access.UserAccess{}
	for _, it := range items {
		ua, ok := byUser[it.UserID]
		if !ok {
			var err error
			ua, err = s.access.Access(ctx, v.Actor, it.UserID)
			if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
				return nil, fmt.Errorf("name seats to unassign: %w", err)
			}
			byUser[it.UserID] = ua
		}
		n := unassignSeat{Name: ua.User.Name, Email: ua.User.Email, Contract: "subscription " + strconv.FormatInt(it.SubscriptionID, 10)}
		if n.Name == "" {
			n.Name = "user " + strconv.FormatInt(it.UserID, 10)
		}
		for _, e := range ua.Subscriptions {
			if e.Subscription.ID == it.SubscriptionID {
				n.Contract = e.Subscription.Product.Name + " " + e.Subscription.ContractNumber
			}
		}
		out[keyOf(it)] = n
	}
	return out, nil
}

// describeUnassignErrors names people and contracts instead of the API's
// field paths (items[2]), which mean nothing on a page.
func describeUnassignErrors(err error, items []access.UnassignItem, names map[seatKey]unassignSeat) []string {
	fields := usher.ErrorFields(err)
	if len(fields) == 0 {
		return []string{errorText(err)}
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		label := f.Field
		var i int
		if _, err := fmt.Sscanf(f.Field, "items[%d]", &i); err == nil && i >= 0 && i < len(items) {
			n := names[keyOf(items[i])]
			label = n.Name + ", " + n.Contract
		}
		out = append(out, label+": "+f.Reason)
	}
	return out
}

func reportHref(q url.Values) string {
	if len(q) == 0 {
		return reportPath
	}
	return reportPath + "?" + q.Encode()
}

// unassignedMessage says what an unassign did.
func unassignedMessage(res access.UnassignResult) string {
	seats, users, services, benefits := res.Seats, res.Users, res.Services, res.Benefits
	msg := fmt.Sprintf("Unassigned %s from %s", plural(seats, "seat"), plural(users, "user"))
	var with []string
	if services > 0 {
		with = append(with, plural(services, "service"))
	}
	if benefits > 0 {
		with = append(with, plural(benefits, "benefit"))
	}
	if len(with) > 0 {
		msg += ", with " + strings.Join(with, " and ")
	}
	return msg + ". The seats are free to assign to someone else."
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// snapshotOf describes the email or run a report is shown as of.
func snapshotOf(snap usage.Snapshot, t usage.ReportTotals, loc *time.Location) *snapshotView {
	v := &snapshotView{ID: snap.ID, Of: "the email of " + usher.HumanTime(snap.TakenAt, loc)}
	if snap.Kind == usage.SnapshotReclaim {
		v.Of = "the reclaim run of " + usher.HumanTime(snap.TakenAt, loc)
	}
	now := url.Values{"status": {"inactive"}}
	if snap.Range.Valid() {
		now.Set("range", string(snap.Range))
	}
	v.NowHref = reportPath + "?" + now.Encode()
	if t.ChangedSeats != nil {
		v.Changed = *t.ChangedSeats
	}
	return v
}

// changeText says how a snapshot's seat changed since, in words.
func changeText(row usage.ReportRow) string {
	switch row.Change {
	case usage.UsedSince:
		if row.LastUsedNow != nil {
			return "Used since: last use " + row.LastUsedNow.Human()
		}
		return "Used since"
	case usage.Unassigned:
		return "Unassigned since"
	case usage.Reassigned:
		return "Assigned again since"
	}
	return ""
}

// groupLabel says through which groups a seat is held: "Direct", "via
// Design", or "Direct, via Design".
func groupLabel(src []usher.SeatSource) string {
	var direct bool
	var groups []string
	for _, x := range src {
		if x.Direct {
			direct = true
		} else {
			groups = append(groups, x.GroupName)
		}
	}
	var parts []string
	if direct {
		parts = append(parts, "Direct")
	}
	if len(groups) > 0 {
		parts = append(parts, "via "+strings.Join(groups, ", "))
	}
	return strings.Join(parts, ", ")
}
