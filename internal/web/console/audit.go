package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/usher"
)

// auditPageSize is how many entries one page of the audit log shows.
const auditPageSize = 50

// auditActions are the actions offered as suggestions in the filter: every
// action the log can hold.
var auditActions = usher.AuditActions

type auditPage struct {
	User    string // the email filter as typed
	Action  string
	Actions []string
	Entries []auditRow
	pageLinks
	Filtered bool
}

type auditRow struct {
	usher.AuditEntry
	When     string // in the account's time zone
	Contract string
	Before   string // indented JSON, "" when none
	After    string
}

func (s *server) auditLog(w http.ResponseWriter, r *http.Request, v viewer) {
	q := r.URL.Query()
	data := auditPage{User: strings.TrimSpace(q.Get("user")), Action: strings.TrimSpace(q.Get("action")), Actions: auditActions}
	data.Filtered = data.User != "" || data.Action != ""
	cursor := q.Get("cursor")

	// The filter names a person by email, as admins know them; the audit
	// log is kept by user id. An email nobody has shows an empty log.
	var userID int64
	if data.User != "" {
		list, err := s.access.ListUsers(r.Context(), v.Actor, data.User, "", 10)
		if err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		for _, u := range list.Items {
			if u.Email == usher.NormalizeEmail(data.User) {
				userID = u.ID
			}
		}
		if userID == 0 {
			s.render(w, r, http.StatusOK, "audit", page{Title: "Audit log", Errors: []string{"user: nobody in this account has the email " + data.User}, Data: data})
			return
		}
	}
	log, err := s.access.AuditLog(r.Context(), v.Actor, userID, data.Action, cursor, auditPageSize)
	if usher.ErrorCode(err) == usher.EINVALID {
		// A mistyped action or an edited address: say so above the filter.
		s.render(w, r, http.StatusUnprocessableEntity, "audit", page{Title: "Audit log", Errors: errorLines(err), Data: data})
		return
	} else if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	subs, err := s.access.ListSubscriptions(r.Context(), v.Actor, "", subscriptionsPageLimit)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	contracts := map[int64]string{}
	for _, sub := range subs.Items {
		contracts[sub.ID] = sub.Product.Name + " " + sub.ContractNumber
	}
	loc := v.Account.Location()
	for _, e := range log.Items {
		row := auditRow{AuditEntry: e, When: usher.HumanTime(e.At, loc), Before: indent(e.Before), After: indent(e.After)}
		if e.SubscriptionID != 0 {
			row.Contract = contracts[e.SubscriptionID]
			if row.Contract == "" {
				row.Contract = "subscription " + strconv.FormatInt(e.SubscriptionID, 10)
			}
		}
		data.Entries = append(data.Entries, row)
	}
	filter := url.Values{}
	if data.User != "" {
		filter.Set("user", data.User)
	}
	if data.Action != "" {
		filter.Set("action", data.Action)
	}
	data.pageLinks = pagerOf(r.URL.Query()).links("/audit-log", filter, log.NextCursor)
	s.render(w, r, http.StatusOK, "audit", page{Title: "Audit log", Data: data})
}

func indent(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}
