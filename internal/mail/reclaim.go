package mail

import (
	"bytes"
	"context"
	"fmt"
	htmltemplate "html/template"
	netmail "net/mail"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/usherhq/usher/internal/reclaim"
)

var (
	reclaimText = texttemplate.Must(texttemplate.New("reclaim.txt.tmpl").Funcs(reclaimFuncs).ParseFS(templateFS, "templates/reclaim.txt.tmpl"))
	reclaimHTML = htmltemplate.Must(htmltemplate.New("reclaim.html.tmpl").Funcs(reclaimFuncs).ParseFS(templateFS, "templates/reclaim.html.tmpl"))
)

var reclaimFuncs = map[string]any{
	"plural": funcs["plural"],
	// date writes a day as people read it; times arrive in the account's zone.
	"date": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.Format("2 January 2006")
		case *time.Time:
			if v != nil {
				return v.Format("2 January 2006")
			}
		}
		return ""
	},
}

type reclaimView struct {
	reclaim.Message
	Subject string
	Name    string
	Account string
	Period  string
}

// ReclaimSubject says what a reclaim email is about.
func ReclaimSubject(m reclaim.Message) string {
	acct := strings.Join(strings.Fields(m.Account.Name), " ")
	switch m.Kind {
	case reclaim.EmailWarning:
		if len(m.Seats) == 1 {
			return fmt.Sprintf("Your %s seat will be reclaimed on %s unless you keep it", m.Seats[0].ProductName, m.Seats[0].ReclaimAt.Format("2 January"))
		}
		return fmt.Sprintf("%d of your seats in %s will be reclaimed unless you keep them", len(m.Seats), acct)
	case reclaim.EmailNotice:
		if len(m.Seats) == 1 {
			return fmt.Sprintf("Your %s seat was reclaimed", m.Seats[0].ProductName)
		}
		return fmt.Sprintf("%d of your seats in %s were reclaimed", len(m.Seats), acct)
	}
	return fmt.Sprintf("Reclaim policy %q: %d reclaimed, %d warned, %d kept", m.Policy, len(m.Reclaimed), len(m.Warned), len(m.Kept))
}

// RenderReclaim turns a reclaim message into an email.
func RenderReclaim(m reclaim.Message) (Email, error) {
	loc := m.Account.Location()
	for _, list := range [][]reclaim.MessageSeat{m.Seats, m.Warned} {
		for i := range list {
			list[i].ReclaimAt = list[i].ReclaimAt.In(loc)
			if list[i].LastUsed != nil {
				t := list[i].LastUsed.In(loc)
				list[i].LastUsed = &t
			}
		}
	}
	v := reclaimView{Message: m, Subject: ReclaimSubject(m), Name: m.To.Name, Account: m.Account.Name, Period: period(m.Range)}
	if v.Name == "" {
		v.Name = m.To.Email
	}
	var text, html bytes.Buffer
	if err := reclaimText.Execute(&text, v); err != nil {
		return Email{}, fmt.Errorf("render text: %w", err)
	}
	if err := reclaimHTML.Execute(&html, v); err != nil {
		return Email{}, fmt.Errorf("render html: %w", err)
	}
	return Email{MessageID: m.MessageID, From: m.From, To: netmail.Address{Name: m.To.Name, Address: m.To.Email},
		Date: m.Date, Subject: v.Subject, Text: text.String(), HTML: html.String()}, nil
}

// SendReclaim renders a reclaim email and delivers it; it implements reclaim.Mailer.
func (s *SMTP) SendReclaim(ctx context.Context, m reclaim.Message) error {
	e, err := RenderReclaim(m)
	if err != nil {
		return err
	}
	return s.Deliver(ctx, e)
}
