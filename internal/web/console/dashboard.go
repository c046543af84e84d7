package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// endingWithin is how far ahead the dashboard looks for contracts ending.
const endingWithin = 90

type dashboardPage struct {
	Contracts   []dashboardContract
	Ending      []dashboardContract
	ShowUsage   bool
	RangeLabel  string
	Charts      []chart
	Today       string
	EndingLabel string
	ChartRight  int // where the grid lines end
	// Reclaimed is what reclaims took back since ReclaimedSince and was not
	// undone, per currency; shown when ShowReclaimed (actors who see the
	// whole account).
	ShowReclaimed  bool
	ReclaimedSeats int
	Reclaimed      []usher.Cost // priced seats only
	ReclaimedSince string
	HistoryHref    string // the reclaim history, for those who may see it
}

type dashboardContract struct {
	usher.Subscription
	Inactive     int
	InactiveHref string
	InactiveCost string // what the inactive seats cost a year; "" without a price
	Waiting      int    // people waiting for a seat
	EndsIn       int    // days from today to the term's end
}

// chart is one product's monthly seats as a server-rendered SVG with a
// table of the same numbers for screen readers.
type chart struct {
	ID, Product string
	Summary     string
	Bars        []chartBar
	Width       int
	Height      int
	Ticks       []chartTick
}

type chartBar struct {
	Month, Label                    string // "Nov", "Nov 2026"
	Held, Active, Inactive          int
	X, YActive, HActive, YInactive  int
	HInactive, LabelX, W, LabelYPos int
}

type chartTick struct {
	Y     int
	Label string
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH   = 720, 220
	chartTop         = 10
	chartBottom      = 190 // the bars' base line
	chartLeft        = 44
	chartBarGap      = 14
	chartLabelOffset = 20
)

// dashboard is the home page of people who see contracts: seats bought,
// used, inactive and waited for per contract with what the inactive ones
// cost, contracts ending soon, a year of active and inactive seats per
// product, and what reclaims saved.
func (s *server) dashboard(w http.ResponseWriter, r *http.Request, v viewer) {
	ctx := r.Context()
	subs, err := s.access.ListSubscriptions(ctx, v.Actor, "", subscriptionsPageLimit)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	loc := v.Account.Location()
	today := usher.DateOf(s.now().In(loc))
	data := dashboardPage{Today: today.Human(), EndingLabel: fmt.Sprintf("Contracts ending in the next %d days", endingWithin), ChartRight: chartW}
	var dash usage.Dashboard
	if s.usage != nil && access.CanAny(v.Actor, access.ViewReports) {
		if dash, err = s.usage.Dashboard(ctx, v.Actor); err != nil {
			s.renderError(w, r, &v, err)
			return
		}
		data.ShowUsage = true
		data.RangeLabel = dash.Range.Label()
	}
	names := map[int64]string{}
	for _, sub := range subs.Items {
		names[sub.Product.ID] = sub.Product.Name
		c := dashboardContract{Subscription: sub, Inactive: dash.InactiveBySubscription[sub.ID],
			EndsIn: int(sub.TermEnd.Sub(today.Time).Hours() / 24)}
		c.Waiting = dash.WaitingBySubscription[sub.ID]
		if sub.Price != nil && c.Inactive > 0 {
			c.InactiveCost = usher.Cost{Currency: sub.Price.Currency, Seats: c.Inactive, Cents: sub.Price.Cents * int64(c.Inactive)}.String()
		}
		c.InactiveHref = reportPath + "?" + url.Values{"status": {"inactive"}, "range": {string(usage.DashboardRange)}, "subscription": {strconv.FormatInt(sub.ID, 10)}}.Encode()
		data.Contracts = append(data.Contracts, c)
		if c.EndsIn >= 0 && c.EndsIn <= endingWithin {
			data.Ending = append(data.Ending, c)
		}
	}
	if dash.Reclaimed != nil && len(dash.Months) > 0 {
		data.ShowReclaimed = true
		data.ReclaimedSince = dash.Months[0].Human()
		if s.reclaim != nil && access.Can(v.Actor, access.ViewReclaim, 0) {
			data.HistoryHref = "/reclaims"
		}
		for _, c := range dash.Reclaimed {
			data.ReclaimedSeats += c.Seats
			if c.Currency != "" {
				data.Reclaimed = append(data.Reclaimed, c)
			}
		}
	}
	slices.SortStableFunc(data.Ending, func(a, b dashboardContract) int { return a.EndsIn - b.EndsIn })
	for _, p := range dash.Products {
		name := names[p.ProductID]
		if name == "" {
			continue
		}
		data.Charts = append(data.Charts, buildChart(name, p, dash.Months))
	}
	slices.SortFunc(data.Charts, func(a, b chart) int { return strings.Compare(a.Product, b.Product) })
	s.render(w, r, http.StatusOK, "dashboard", page{Title: "Dashboard", Data: data})
}

// buildChart lays out one product's bars: the whole bar is the seats held,
// its lower part the active ones.
func buildChart(name string, p usage.ProductMonths, months []usher.Date) chart {
	c := chart{ID: "chart-" + strconv.FormatInt(p.ProductID, 10), Product: name, Width: chartW, Height: chartH}
	top := 1
	for _, h := range p.Held {
		top = max(top, h)
	}
	top = niceCeil(top)
	plotH := chartBottom - chartTop
	n := len(months)
	slot := (chartW - chartLeft) / max(n, 1)
	barW := slot - chartBarGap
	scale := func(v int) int { return v * plotH / top }
	for i, m := range months {
		held, active := p.Held[i], p.Active[i]
		b := chartBar{Month: m.Format("Jan"), Label: m.Format("Jan 2006"), Held: held, Active: active, Inactive: held - active, W: barW}
		b.X = chartLeft + i*slot + chartBarGap/2
		b.HActive = scale(active)
		b.YActive = chartBottom - b.HActive
		b.HInactive = scale(held) - b.HActive
		b.YInactive = b.YActive - b.HInactive
		b.LabelX = b.X + barW/2
		b.LabelYPos = chartBottom + chartLabelOffset
		c.Bars = append(c.Bars, b)
	}
	for _, v := range []int{0, top / 2, top} {
		c.Ticks = append(c.Ticks, chartTick{Y: chartBottom - scale(v), Label: strconv.Itoa(v)})
	}
	if n > 0 {
		last := c.Bars[n-1]
		c.Summary = fmt.Sprintf("%s: %s held in %s, %d active and %d inactive; %s held in %s.", name,
			plural(last.Held, "seat"), last.Label, last.Active, last.Inactive, plural(c.Bars[0].Held, "seat"), c.Bars[0].Label)
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for the axis.
func niceCeil(v int) int {
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= v {
				return m * p
			}
		}
	}
}
