package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// The contract forms: create a subscription, and change the seats, term
// and price of one. Both ask the access service the API's POST and PATCH
// /api/v1/subscriptions ask, so the same permission matrix and rules hold.

// contractForm is the form's values as typed, so a refused form keeps them.
type contractForm struct {
	ID                             int64 // 0 when creating
	Product, Plan, ContractNumber  string
	Seats, TermStart, TermEnd      string
	Price, Currency, Manager       string
	ManagerSeat                    bool
	Benefits                       []string
	Products, Plans                []option
	BenefitBoxes                   []checkView
	Heading                        string // the contract, when changing one
	SeatsUsed                      int
	Holders                        []holderView // whom to unassign before the seats can go down
	HoldersMore                    int          // holders who must go besides those listed
	Action, Submit, Legend, Cancel string
}

type holderView struct {
	ID               int64
	Name, Email      string
	LastUse, Details string
}

func (s *server) newContractPage(w http.ResponseWriter, r *http.Request, v viewer) {
	if !access.Can(v.Actor, access.CreateSubscription, 0) {
		s.renderStatus(w, r, http.StatusForbidden, &v, "Forbidden", "Only primary and secondary admins can add contracts.")
		return
	}
	f := contractForm{Plan: string(usher.PlanStandard), ManagerSeat: true, Currency: "EUR"}
	s.renderContractForm(w, r, v, http.StatusOK, f, nil)
}

func (s *server) renderContractForm(w http.ResponseWriter, r *http.Request, v viewer, status int, f contractForm, err error) {
	p := page{Title: "Add a contract"}
	if f.ID != 0 {
		p.Title = "Change contract " + f.ContractNumber
		f.Action, f.Submit, f.Legend = fmt.Sprintf("/subscriptions/%d", f.ID), "Save", "Seats, term and price"
	} else {
		f.Action, f.Submit, f.Legend = "/subscriptions", "Add contract", "The contract"
		if products, perr := s.access.ListProducts(r.Context(), v.Actor); perr == nil {
			f.Products = []option{{Value: "", Label: "Choose a product", Selected: f.Product == ""}}
			for _, pr := range products {
				f.Products = append(f.Products, option{Value: pr.Code, Label: pr.Name, Selected: pr.Code == f.Product})
			}
		}
		for _, pl := range usher.Plans {
			f.Plans = append(f.Plans, option{Value: string(pl), Label: planName(pl), Selected: string(pl) == f.Plan})
		}
		for _, b := range usher.Benefits {
			f.BenefitBoxes = append(f.BenefitBoxes, checkView{Code: b.Code, Name: b.Name, Checked: slices.Contains(f.Benefits, b.Code)})
		}
	}
	f.Cancel = "/subscriptions"
	if err != nil {
		p.ErrorsTitle = "Nothing was saved:"
		p.Errors = contractErrors(err)
	}
	p.Data = f
	s.render(w, r, status, "contract", p)
}

// contractFieldLabels names the service's fields as the form does.
var contractFieldLabels = map[string]string{
	"product": "Product", "plan": "Plan", "seats": "Seats", "contract_number": "Contract number",
	"term_start": "Term start", "term_end": "Term end", "contract_manager_id": "Contract manager",
	"price_per_seat_year": "Price per seat and year", "currency": "Currency",
}

func contractErrors(err error) []string {
	fields := usher.ErrorFields(err)
	if len(fields) == 0 {
		return []string{errorText(err)}
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		label, ok := contractFieldLabels[f.Field]
		if !ok {
			label = f.Field
		}
		out[i] = label + ": " + f.Reason
	}
	return out
}

// formDate reads a date field; a bad one is kept as zero, which the
// service refuses naming the field, and noted in bad with the reason.
func formDate(bad *usher.Problems, field, raw string) usher.Date {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return usher.Date{}
	}
	d, err := usher.ParseDate(raw)
	if err != nil {
		bad.Addf(field, "%q is not a date such as 2026-12-31", raw)
	}
	return d
}

// withReasons puts the form's own reasons for fields it knows better.
func withReasons(err error, edge usher.Problems) error {
	if len(edge) == 0 || usher.ErrorCode(err) != usher.EINVALID {
		return err
	}
	fields := usher.ErrorFields(err)
	for i, f := range fields {
		for _, e := range edge {
			if e.Field == f.Field {
				fields[i].Reason = e.Reason
			}
		}
	}
	return usher.Problems(fields).Err()
}

func (s *server) createContract(w http.ResponseWriter, r *http.Request, v viewer) {
	if !s.readForm(w, r, v) {
		return
	}
	pf := r.PostForm
	f := contractForm{
		Product: pf.Get("product"), Plan: pf.Get("plan"), ContractNumber: strings.TrimSpace(pf.Get("contract_number")),
		Seats: strings.TrimSpace(pf.Get("seats")), TermStart: pf.Get("term_start"), TermEnd: pf.Get("term_end"),
		Price: strings.TrimSpace(pf.Get("price_per_seat_year")), Currency: strings.TrimSpace(pf.Get("currency")),
		Manager: strings.TrimSpace(pf.Get("contract_manager")), ManagerSeat: pf.Get("assign_manager_seat") != "", Benefits: pf["benefit"],
	}
	if f.Price == "" {
		f.Currency = "" // a currency alone is no price
	}
	var edge usher.Problems
	in := access.NewSubscription{
		Product: f.Product, Plan: usher.Plan(f.Plan), ContractNumber: f.ContractNumber,
		TermStart: formDate(&edge, "term_start", f.TermStart), TermEnd: formDate(&edge, "term_end", f.TermEnd),
		Benefits: f.Benefits, PricePerSeatYear: f.Price, Currency: f.Currency, AssignManagerSeat: &f.ManagerSeat,
	}
	if f.Seats != "" {
		n, err := strconv.Atoi(f.Seats)
		if err != nil {
			n = -1
			edge.Addf("seats", "%q is not a whole number", f.Seats)
		}
		in.Seats = &n
	}
	if f.Manager != "" {
		if u, err := s.access.UserByEmail(r.Context(), v.Actor, usher.NormalizeEmail(f.Manager)); err == nil {
			in.ContractManagerID = u.ID
		} else if usher.ErrorCode(err) == usher.ENOTFOUND {
			edge.Addf("contract_manager_id", "no user has the email %s; add them on the Users page first", f.Manager)
		} else {
			s.renderError(w, r, &v, err)
			return
		}
	}
	sub, err := s.access.CreateSubscription(r.Context(), v.Actor, in)
	if err != nil {
		if c := usher.ErrorCode(err); c != usher.EINVALID && c != usher.ECONFLICT {
			s.renderError(w, r, &v, err)
			return
		}
		s.renderContractForm(w, r, v, errorStatus(usher.ErrorCode(err)), f, withReasons(err, edge))
		return
	}
	s.redirectWith(w, r, v, "/subscriptions", fmt.Sprintf("Contract %s for %s has been added, with %s.", sub.ContractNumber, sub.Product.Name, plural(sub.Seats, "seat")))
}

func (s *server) editContractPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	sub, err := s.access.Subscription(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	if !access.Can(v.Actor, access.EditSubscription, id) {
		s.renderStatus(w, r, http.StatusForbidden, &v, "Forbidden", "Only primary and secondary admins can change contracts.")
		return
	}
	s.renderContractForm(w, r, v, http.StatusOK, contractFormOf(sub), nil)
}

// contractFormOf fills the change form with the contract as stored.
func contractFormOf(sub usher.Subscription) contractForm {
	f := contractForm{
		ID: sub.ID, ContractNumber: sub.ContractNumber, Seats: strconv.Itoa(sub.Seats),
		TermStart: sub.TermStart.String(), TermEnd: sub.TermEnd.String(), SeatsUsed: sub.SeatsUsed,
		Heading: sub.Product.Name + " · " + planName(sub.Plan) + " · " + sub.ContractNumber,
	}
	if sub.Price != nil {
		f.Price, f.Currency = usher.FormatCents(sub.Price.Cents), sub.Price.Currency
	}
	return f
}

func (s *server) updateContract(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok || !s.readForm(w, r, v) {
		return
	}
	sub, err := s.access.Subscription(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	pf := r.PostForm
	f := contractFormOf(sub)
	f.Seats, f.TermStart, f.TermEnd = strings.TrimSpace(pf.Get("seats")), pf.Get("term_start"), pf.Get("term_end")
	f.Price, f.Currency = strings.TrimSpace(pf.Get("price_per_seat_year")), strings.TrimSpace(pf.Get("currency"))
	var edge usher.Problems
	seats, err := strconv.Atoi(f.Seats)
	if err != nil {
		seats = -1
		edge.Addf("seats", "%q is not a whole number", f.Seats)
	}
	start, end := formDate(&edge, "term_start", f.TermStart), formDate(&edge, "term_end", f.TermEnd)
	price, currency := f.Price, f.Currency
	if price == "" {
		currency = "" // an empty price removes it, whatever the currency says
	}
	in := access.SubscriptionPatch{Seats: &seats, TermStart: &start, TermEnd: &end, PricePerSeatYear: &price, Currency: &currency}
	if _, err := s.access.UpdateSubscription(r.Context(), v.Actor, id, in); err != nil {
		c := usher.ErrorCode(err)
		if c != usher.EINVALID && c != usher.ECONFLICT {
			s.renderError(w, r, &v, err)
			return
		}
		if seats > 0 && seats < sub.SeatsUsed && slices.ContainsFunc(usher.ErrorFields(err), func(fe usher.FieldError) bool { return fe.Field == "seats" }) {
			s.holdersToFree(r, v, sub, seats, &f)
			if len(f.Holders) > 0 {
				// The page lists them, with links and dates as the console
				// writes them; the service's reason is written for the API.
				inUse := plural(sub.SeatsUsed, "seat") + " are"
				if sub.SeatsUsed == 1 {
					inUse = "1 seat is"
				}
				edge.Add("seats", fmt.Sprintf("cannot be %d while %s in use: unassign %s first (listed below)", seats, inUse, plural(sub.SeatsUsed-seats, "seat")))
			}
		}
		s.renderContractForm(w, r, v, errorStatus(c), f, withReasons(err, edge))
		return
	}
	s.redirectWith(w, r, v, "/subscriptions", "Your changes to contract "+sub.ContractNumber+" have been saved.")
}

// holdersToFree lists on the form whom to unassign before the contract's
// seats can go down to seats, the longest inactive first, each linking to
// their page.
func (s *server) holdersToFree(r *http.Request, v viewer, sub usher.Subscription, seats int, f *contractForm) {
	excess := sub.SeatsUsed - seats
	holders, err := s.access.SeatHoldersToFree(r.Context(), v.Actor, sub.ID, min(excess, 25))
	if err != nil {
		return // the error message names them already
	}
	loc := v.Account.Location()
	for _, h := range holders {
		hv := holderView{ID: h.User.ID, Name: displayName(h.User), Email: h.User.Email}
		if h.LastUsed == nil {
			hv.LastUse = "never used"
		} else {
			hv.LastUse = "last used " + h.LastUsed.Human()
		}
		hv.Details = "seat assigned " + usher.HumanDay(h.AssignedAt, loc)
		f.Holders = append(f.Holders, hv)
	}
	f.HoldersMore = excess - len(holders)
}
