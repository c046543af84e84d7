// Package mail renders usage notification emails (plain text and HTML in one
// multipart/alternative message) and delivers them over SMTP.
package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// Email is a rendered message, ready for delivery.
type Email struct {
	MessageID string // with angle brackets
	From      string // an address, optionally with a display name
	To        netmail.Address
	Date      time.Time
	Subject   string
	Text      string // the text/plain alternative
	HTML      string // the text/html alternative
}

//go:embed templates
var templateFS embed.FS

var funcs = map[string]any{
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}

var (
	textTmpl = texttemplate.Must(texttemplate.New("notification.txt.tmpl").Funcs(funcs).ParseFS(templateFS, "templates/notification.txt.tmpl"))
	htmlTmpl = htmltemplate.Must(htmltemplate.New("notification.html.tmpl").Funcs(funcs).ParseFS(templateFS, "templates/notification.html.tmpl"))
)

// renderBuffers holds the buffers Render writes the two parts into.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// view is what the templates see.
type view struct {
	Subject       string
	Name          string // the recipient's; "" greets without a name
	Account       string
	Period        string // "3 months", "year": reads after "the past"
	Since         string // first day inside the range, e.g. "14 Oct 2025"
	InactiveUsers int
	InactiveSeats int
	NeverUsed     int
	StoppedUsing  int
	Cost          []usher.Cost // yearly cost of the inactive seats, per currency
	Products      []usage.ProductSummary
	FirstUsers    []usher.User
	More          int    // inactive users not listed by name
	ReportURL     string // "" hides the button and the link
	SettingsURL   string
}

// period is the range as it reads after "over the past".
func period(r usage.Range) string {
	if r == usage.Range1y {
		return "year"
	}
	return r.Label()
}

// Subject says what the email holds, e.g. "12 inactive users in Demo Co
// over the past 3 months".
func Subject(m notify.Message) string {
	acct := strings.Join(strings.Fields(usher.DisplayName(m.Account.Name)), " ") // no line breaks in a header
	p := period(m.Summary.Range)
	if n := m.Summary.InactiveUsers; n > 0 {
		unit := "users"
		if n == 1 {
			unit = "user"
		}
		return fmt.Sprintf("%d inactive %s in %s over the past %s", n, unit, acct, p)
	}
	return fmt.Sprintf("No inactive users in %s over the past %s", acct, p)
}

// Render turns a notification into an email. The "View inactive users"
// button and the link to the filtered Usage Report appear only when someone
// is inactive and the message carries a ReportURL.
func Render(m notify.Message) (Email, error) {
	// Names are shown as text on one line: one stored with a line break or
	// another control character (before names were checked, or written by
	// another tool) must neither break a header nor stop the email.
	m.To.Name = usher.DisplayName(m.To.Name)
	m.Account.Name = usher.DisplayName(m.Account.Name)
	m.Summary.FirstUsers = slices.Clone(m.Summary.FirstUsers)
	for i := range m.Summary.FirstUsers {
		m.Summary.FirstUsers[i].Name = usher.DisplayName(m.Summary.FirstUsers[i].Name)
	}
	loc := m.Account.Location()
	s := m.Summary
	today := usage.DayOf(m.Date, loc)
	v := view{
		Subject: Subject(m), Name: m.To.Name, Account: m.Account.Name, Period: period(s.Range),
		Since:         s.Range.Cutoff(today).Date().Human(),
		InactiveUsers: s.InactiveUsers, InactiveSeats: s.InactiveSeats, Products: s.ByProduct,
		NeverUsed: s.NeverUsedSeats, StoppedUsing: s.StoppedUsingSeats, Cost: s.InactiveCost,
		FirstUsers: s.FirstUsers, More: s.InactiveUsers - len(s.FirstUsers), SettingsURL: m.SettingsURL,
	}
	if s.InactiveUsers > 0 {
		v.ReportURL = m.ReportURL
	} else {
		v.Products, v.FirstUsers, v.More = nil, nil, 0
	}
	// The templates were parsed once; the buffers are reused, so an email
	// allocates little beyond its two strings.
	text, html := renderBuffers.Get().(*bytes.Buffer), renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		text.Reset()
		html.Reset()
		renderBuffers.Put(text)
		renderBuffers.Put(html)
	}()
	if err := textTmpl.Execute(text, v); err != nil {
		return Email{}, fmt.Errorf("render text: %w", err)
	}
	if err := htmlTmpl.Execute(html, v); err != nil {
		return Email{}, fmt.Errorf("render html: %w", err)
	}
	return Email{
		MessageID: m.MessageID, From: m.From, To: netmail.Address{Name: m.To.Name, Address: m.To.Email},
		Date: m.Date, Subject: v.Subject, Text: text.String(), HTML: html.String(),
	}, nil
}
