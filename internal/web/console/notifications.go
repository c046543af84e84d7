package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// notificationsPath is the Usage Notifications page; the emails' settings
// link points here (notify.SettingsPath).
const notificationsPath = notify.SettingsPath

// notificationRuns is how many recent emails the page lists.
const notificationRuns = 10

type notificationsPage struct {
	SetUp   bool // a setting exists, on or off
	Enabled bool
	// Form shows the Set Up or Edit form instead of the summary.
	Form      bool
	StartDate string // YYYY-MM-DD, the form's value
	MinDate   string // today in the account's time zone
	SendTime  string // the local time emails go at, e.g. 08:00
	Frequency string
	Range     string

	Frequencies []option
	Ranges      []option

	// The summary of a setting.
	StartsLabel    string
	FrequencyLabel string
	RangeLabel     string
	NextSend       string // in the account's time zone; "" when off
	// NextDue says the next email's time has come: the scheduler sends it
	// on its next pass (today chosen as the start after the hour).
	NextDue    bool
	TimeZone   string
	CanDeliver bool
	Runs       []runView
}

type runView struct {
	When     string
	Range    string
	Inactive string
	Result   string
	Failed   bool
}

func (s *server) notificationsPage(w http.ResponseWriter, r *http.Request, v viewer) {
	st, err := s.notify.Setting(r.Context(), v.Actor)
	exists := err == nil
	if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
		s.renderError(w, r, &v, err)
		return
	}
	q := r.URL.Query()
	data := s.notificationsView(v, st, exists)
	data.Form = q.Get("edit") == "1" || q.Get("setup") == "1" && !exists
	if exists {
		runs, err := s.notify.Runs(r.Context(), v.Actor, "", notificationRuns)
		if err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		loc := v.Account.Location()
		for _, run := range runs.Items {
			data.Runs = append(data.Runs, runOf(run, loc))
		}
	}
	p := page{Title: "Usage Notifications", Data: data}
	s.render(w, r, http.StatusOK, "notifications", p)
}

// notificationsView shows a setting; exists is false before Set Up.
func (s *server) notificationsView(v viewer, st notify.Setting, exists bool) notificationsPage {
	loc := v.Account.Location()
	today := usher.DateOf(s.now().In(loc)).String()
	data := notificationsPage{
		SetUp: exists, Enabled: exists && st.Enabled, MinDate: today, TimeZone: v.Account.TimeZone,
		StartDate: today, Frequency: string(notify.Monthly), Range: string(usage.Range3m),
		CanDeliver: s.notify.CanDeliver(), SendTime: sendTime(s.now(), loc, notify.DefaultSendHour),
	}
	if exists {
		data.StartDate, data.Frequency, data.Range = st.StartDate.String(), string(st.Frequency), string(st.Range)
		data.SendTime = sendTime(s.now(), loc, st.SendHour)
		data.StartsLabel = st.StartDate.Human()
		data.FrequencyLabel = upperFirst(st.Frequency.Label())
		data.RangeLabel = "No use in the last " + st.Range.Label()
		if st.Enabled && !st.NextAt.IsZero() {
			data.NextSend = usher.HumanTime(st.NextAt, loc)
			data.NextDue = !st.NextAt.After(s.now())
		}
		// A start date kept from before today stays allowed when editing.
		if data.StartDate < data.MinDate {
			data.MinDate = data.StartDate
		}
	}
	data.setOptions()
	return data
}

func (d *notificationsPage) setOptions() {
	d.Frequencies, d.Ranges = nil, nil
	for _, f := range notify.Frequencies {
		d.Frequencies = append(d.Frequencies, option{Value: string(f), Label: upperFirst(f.Label()), Selected: string(f) == d.Frequency})
	}
	for _, rg := range usage.Ranges {
		d.Ranges = append(d.Ranges, option{Value: string(rg), Label: rg.Label(), Selected: string(rg) == d.Range})
	}
}

func nextEmail(d notificationsPage) string {
	if d.NextSend == "" {
		return ""
	}
	if d.NextDue {
		return "The first email goes out within a minute."
	}
	return fmt.Sprintf("The next email goes on %s.", d.NextSend)
}

func runOf(run notify.Run, loc *time.Location) runView {
	out := runView{
		When:     usher.HumanTime(run.ScheduledFor, loc),
		Range:    run.Range.Label(),
		Inactive: plural(run.InactiveUsers, "user") + ", " + plural(run.InactiveSeats, "seat"),
	}
	switch run.Status {
	case notify.StatusDelivered:
		out.Result = "Delivered " + usher.HumanTime(run.DeliveredAt, loc)
	case notify.StatusFailed:
		out.Result, out.Failed = "Failed: "+run.LastError, true
	case notify.StatusSending:
		out.Result, out.Inactive = "Sending", ""
	default:
		out.Result, out.Inactive = "Waiting to be sent", ""
		if run.Attempts > 0 {
			out.Result = fmt.Sprintf("Not delivered yet (%s): %s; next try %s", plural(run.Attempts, "attempt"), run.LastError, usher.HumanTime(run.NextAttemptAt, loc))
		}
	}
	return out
}

// saveNotifications turns notifications on (Set Up → Turn On) or edits
// them (Edit → Save).
func (s *server) saveNotifications(w http.ResponseWriter, r *http.Request, v viewer) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderStatus(w, r, http.StatusBadRequest, &v, "Bad request", "The form could not be read.")
		return
	}
	in := notify.Input{Frequency: notify.Frequency(r.PostForm.Get("frequency")), Range: usage.Range(r.PostForm.Get("range"))}
	var dates usher.Problems
	if raw := r.PostForm.Get("start_date"); raw != "" {
		d, err := usher.ParseDate(raw)
		if err != nil {
			dates.Add("start_date", "must be a date such as 2026-02-01")
		}
		in.StartDate = d
	}
	// A date that does not parse stays zero, which Set refuses naming
	// start_date; the page then says why the date was not read.
	st, turnedOn, err := s.notify.Set(r.Context(), v.Actor, in)
	if err != nil {
		status := errorStatus(usher.ErrorCode(err))
		if status != http.StatusUnprocessableEntity {
			s.renderError(w, r, &v, err)
			return
		}
		prev, perr := s.notify.Setting(r.Context(), v.Actor)
		data := s.notificationsView(v, prev, perr == nil)
		data.Form = true
		data.StartDate, data.Frequency, data.Range = r.PostForm.Get("start_date"), string(in.Frequency), string(in.Range)
		data.setOptions()
		s.render(w, r, status, "notifications", page{Title: "Usage Notifications", ErrorsTitle: "Nothing was saved:",
			Errors: notificationErrors(err, dates), Data: data})
		return
	}
	msg := "Your changes have been saved. "
	if turnedOn {
		msg = "Usage notifications have been turned on. "
	}
	s.redirectWith(w, r, v, notificationsPath, msg+nextEmail(s.notificationsView(v, st, true)))
}

var notificationFields = map[string]string{
	"start_date": "Start date", "frequency": "Frequency", "range": "Inactive range", "send_hour": "Hour",
}

// notificationErrors names the form's fields as the page labels them; a
// start date that did not parse is reported as such, not as missing.
func notificationErrors(err error, dates usher.Problems) []string {
	var out []string
	for _, f := range dates {
		out = append(out, notificationFields[f.Field]+": "+f.Reason)
	}
	fields := usher.ErrorFields(err)
	if len(fields) == 0 {
		return append(out, errorText(err))
	}
	for _, f := range fields {
		if f.Field == "start_date" && len(dates) > 0 {
			continue
		}
		label := notificationFields[f.Field]
		if label == "" {
			label = f.Field
		}
		out = append(out, label+": "+f.Reason)
	}
	return out
}

// switchNotifications is the on/off switch: off stops every later email;
// on turns the stored schedule back on as it was.
func (s *server) switchNotifications(w http.ResponseWriter, r *http.Request, v viewer) {
	switch r.PathValue("state") {
	case "off":
		if _, err := s.notify.TurnOff(r.Context(), v.Actor); err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		s.redirectWith(w, r, v, notificationsPath, "Usage notifications have been turned off. No more emails will be sent until you turn them on again.")
	case "on":
		st, err := s.notify.Setting(r.Context(), v.Actor)
		if usher.ErrorCode(err) == usher.ENOTFOUND {
			http.Redirect(w, r, notificationsPath+"?setup=1", http.StatusSeeOther)
			return
		}
		if err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		hour := st.SendHour
		st, _, err = s.notify.Set(r.Context(), v.Actor, notify.Input{StartDate: st.StartDate, Frequency: st.Frequency, Range: st.Range, SendHour: &hour})
		if err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		s.redirectWith(w, r, v, notificationsPath, "Usage notifications have been turned on. "+nextEmail(s.notificationsView(v, st, true)))
	default:
		s.renderStatus(w, r, http.StatusNotFound, &v, "Not found", "There is no such page.")
	}
}

// sendTime is the hour emails go at with the zone's abbreviation, e.g.
// "08:00 CET", as every time in the console is written.
func sendTime(now time.Time, loc *time.Location, hour int) string {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d, hour, 0, 0, 0, loc).Format("15:04 MST")
}
