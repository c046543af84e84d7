package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// notificationSetting is the caller's setting as the API shows it: the
// stored setting plus the account's time zone and the next email in local
// time, so people need not convert next_at from UTC themselves.
type notificationSetting struct {
	notify.Setting
	TimeZone    string `json:"time_zone"`
	NextAtLocal string `json:"next_at_local,omitempty"` // RFC 3339 with the account's offset

	loc *time.Location
}

// notificationChange answers PUT and DELETE: the setting, what the call
// changed and a sentence saying so.
type notificationChange struct {
	notificationSetting
	// Change is "turned_on", "edited" or "turned_off".
	Change  string `json:"change"`
	Message string `json:"message"`
}

// notificationRequest is the body of PUT. The start date is read as a
// string so that a malformed date is reported naming start_date, alongside
// every other problem the domain finds.
type notificationRequest struct {
	StartDate *string          `json:"start_date"`
	Frequency notify.Frequency `json:"frequency"`
	Range     usage.Range      `json:"range"`
	SendHour  *int             `json:"send_hour"`
}

func (s *server) getNotifications(w http.ResponseWriter, r *http.Request) {
	a := actorFrom(r.Context())
	st, err := s.notify.Setting(r.Context(), a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.notificationSetting(r.Context(), a, st)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

func (s *server) setNotifications(w http.ResponseWriter, r *http.Request) {
	var in notificationRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var dates usher.Problems
	input := notify.Input{StartDate: parseDate(&dates, "start_date", in.StartDate), Frequency: in.Frequency, Range: in.Range, SendHour: in.SendHour}
	a := actorFrom(r.Context())
	st, turnedOn, err := s.notify.Set(r.Context(), a, input)
	if err != nil {
		s.writeError(w, r, withFieldReasons(err, dates))
		return
	}
	view, err := s.notificationSetting(r.Context(), a, st)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := notificationChange{notificationSetting: view, Change: "edited", Message: "Your changes have been saved. " + nextEmail(view)}
	if turnedOn {
		out.Change, out.Message = "turned_on", "Usage notifications have been turned on. "+nextEmail(view)
	}
	s.writeJSON(w, r, http.StatusOK, out)
}

func (s *server) turnOffNotifications(w http.ResponseWriter, r *http.Request) {
	a := actorFrom(r.Context())
	st, err := s.notify.TurnOff(r.Context(), a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	view, err := s.notificationSetting(r.Context(), a, st)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, notificationChange{notificationSetting: view, Change: "turned_off",
		Message: "Usage notifications have been turned off. No more emails will be sent until you turn them on again."})
}

func (s *server) notificationRuns(w http.ResponseWriter, r *http.Request) {
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.notify.Runs(r.Context(), actorFrom(r.Context()), cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

// notificationSetting adds the account's time zone to a setting.
func (s *server) notificationSetting(ctx context.Context, a usher.Actor, st notify.Setting) (notificationSetting, error) {
	acct, err := s.access.Account(ctx, a)
	if err != nil {
		return notificationSetting{}, fmt.Errorf("account of usage notifications: %w", err)
	}
	out := notificationSetting{Setting: st, TimeZone: acct.TimeZone, loc: acct.Location()}
	if !st.NextAt.IsZero() {
		out.NextAtLocal = st.NextAt.In(acct.Location()).Format(time.RFC3339)
	}
	return out, nil
}

// nextEmail says when the next email goes, in the account's time zone.
func nextEmail(v notificationSetting) string {
	t := v.NextAt.In(v.loc)
	return fmt.Sprintf("The next email goes on %s at %s (%s).", t.Format("Monday 2 January 2006"), t.Format("15:04"), v.TimeZone)
}
