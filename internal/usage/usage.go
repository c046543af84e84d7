// Package usage holds usage events, their per-day rollups, the inactivity
// rules and the Usage Report. No SQL and no HTTP: storage is behind Tx.
package usage

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Range is an inactivity window: 30 days, or 3, 6, 9 or 12 calendar months.
type Range string

const (
	Range30d Range = "30d"
	Range3m  Range = "3m"
	Range6m  Range = "6m"
	Range9m  Range = "9m"
	Range1y  Range = "1y"
)

// Ranges lists every range, shortest first.
var Ranges = []Range{Range30d, Range3m, Range6m, Range9m, Range1y}

// Valid reports whether r is a known range.
func (r Range) Valid() bool {
	for _, x := range Ranges {
		if r == x {
			return true
		}
	}
	return false
}

// MaxRangeDays bounds a range given as a number of days ("45d").
const MaxRangeDays = 730

// ParseRange reads a named range (30d, 3m, 6m, 9m, 1y) or a number of days
// such as 45d (1 to MaxRangeDays), which reclaim policies may use.
func ParseRange(s string) (Range, bool) {
	r := Range(s)
	if r.Valid() {
		return r, true
	}
	if n, ok := r.days(); ok && n >= 1 && n <= MaxRangeDays {
		return Range(strconv.Itoa(n) + "d"), true
	}
	return "", false
}

// days returns N of a range written "Nd".
func (r Range) days() (int, bool) {
	num, ok := strings.CutSuffix(string(r), "d")
	if !ok || num == "" || len(num) > 4 {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strings.HasPrefix(num, "+") {
		return 0, false
	}
	return n, true
}

// Label is the range as people read it.
func (r Range) Label() string {
	if n, ok := r.days(); ok && r != Range30d {
		return strconv.Itoa(n) + " days"
	}
	switch r {
	case Range30d:
		return "30 days"
	case Range3m:
		return "3 months"
	case Range6m:
		return "6 months"
	case Range9m:
		return "9 months"
	case Range1y:
		return "1 year"
	}
	return string(r)
}

func (r Range) months() int {
	switch r {
	case Range3m:
		return 3
	case Range6m:
		return 6
	case Range9m:
		return 9
	case Range1y:
		return 12
	}
	return 0
}

// Day is a calendar day in an account's time zone, counted in days since
// 1970-01-01. Usage is kept per day, so a day already counted costs no write.
type Day int32

// DayOf returns the calendar day of t in loc.
func DayOf(t time.Time, loc *time.Location) Day {
	y, m, d := t.In(loc).Date()
	return Day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// StartOfDay is the first instant of day d in loc: midnight, except where a
// clock change skips midnight (America/Havana in March goes from 23:59:59
// to 01:00), when it is the first instant after the change. Everything at or
// after it falls on d or later, everything before it earlier.
func StartOfDay(d Day, loc *time.Location) time.Time {
	date := d.Date()
	t := time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, loc)
	// time.Date picks an instant for a skipped midnight that may lie on the
	// day before, so search the hours around it, to the second (the
	// resolution of time zone changes): DayOf(lo) < d <= DayOf(hi).
	lo, hi := t.Add(-3*time.Hour).Unix(), t.Add(3*time.Hour).Unix()
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if DayOf(time.Unix(mid, 0), loc) >= d {
			hi = mid
		} else {
			lo = mid
		}
	}
	return time.Unix(hi, 0).In(loc)
}

// Date returns the day as a usher.Date.
func (d Day) Date() usher.Date {
	return usher.Date{Time: time.Unix(int64(d)*86400, 0).UTC()}
}

func (d Day) String() string { return d.Date().String() }

// Month is the first day of d's calendar month: how the dashboard's
// monthly counts are keyed.
func (d Day) Month() Day {
	t := d.Date().Time
	return d - Day(t.Day()-1)
}

// addMonthsClamped moves a date by n calendar months, clamping the day of
// month to the target month's length (May 31 − 3 months = Feb 28/29).
func addMonthsClamped(y int, m time.Month, d, n int) (int, time.Month, int) {
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.Year(), first.Month(), min(d, last)
}

// Cutoff returns the first day inside range r as seen on day today: a seat
// used or assigned on or after Cutoff is active. Months are calendar months,
// clamped to the month's end; 30d is 30 calendar days.
func (r Range) Cutoff(today Day) Day {
	t := today.Date().Time
	if n := r.months(); n > 0 {
		y, m, d := addMonthsClamped(t.Year(), t.Month(), t.Day(), -n)
		return Day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	}
	if n, ok := r.days(); ok {
		return today - Day(n)
	}
	return today - 30
}

// Days is the number of days in range r ending on today, cutoff included.
func (r Range) Days(today Day) int { return int(today-r.Cutoff(today)) + 1 }

// Status of a seat in the Usage Report.
type Status string

const (
	StatusActive      Status = "active"
	StatusInactive    Status = "inactive"
	StatusUnavailable Status = "unavailable" // the plan carries no usage data
	// StatusUnassigned: a seat freed in the range, listed with its date
	// (ReportFilter status "unassigned").
	StatusUnassigned Status = "unassigned"
)

// SeatStatus applies the inactivity rule: a seat on a Standard or Premium
// plan is inactive for a range when neither its last use nor its assignment
// falls on or after the range's cutoff day.
func SeatStatus(plan usher.Plan, assigned Day, lastUsed *Day, cutoff Day) Status {
	if !plan.HasUsageData() {
		return StatusUnavailable
	}
	latest := assigned
	if lastUsed != nil && *lastUsed > latest {
		latest = *lastUsed
	}
	if latest < cutoff {
		return StatusInactive
	}
	return StatusActive
}

// Inactivity says why an inactive seat is inactive.
type Inactivity string

const (
	// NeverUsed: no use of the product since the seat was assigned.
	NeverUsed Inactivity = "never_used"
	// StoppedUsing: used since it was assigned, but not within the range.
	StoppedUsing Inactivity = "stopped_using"
)

// Cutoffs are the instants that decide a seat's status for a range on a
// day: it is inactive when its last use falls before UsedBefore and its
// assignment before AssignedBefore. AssignedBefore is the range's first
// midnight, or the start of the new-seat grace when that is earlier, so a
// seat assigned within the grace is never inactive.
type Cutoffs struct {
	Day            Day // first day inside the range
	UsedBefore     time.Time
	AssignedBefore time.Time
}

// CutoffsOn returns the cutoffs of range r on day today in loc, with a
// new-seat grace of graceDays.
func (r Range) CutoffsOn(today Day, loc *time.Location, graceDays int) Cutoffs {
	day := r.Cutoff(today)
	c := Cutoffs{Day: day, UsedBefore: StartOfDay(day, loc)}
	c.AssignedBefore = c.UsedBefore
	if grace := StartOfDay(today-Day(graceDays), loc); graceDays > 0 && grace.Before(c.AssignedBefore) {
		c.AssignedBefore = grace
	}
	return c
}

// Classify applies the inactivity rule to a seat's row: a seat on a plan
// with usage data is inactive when its last use (lastUsed, the zero time or
// any instant before the assignment when none since) and its assignment both
// fall before the cutoffs; never used when it has no use since it was
// assigned. Storage applies the same rule in SQL.
func Classify(plan usher.Plan, assigned, lastUsed time.Time, c Cutoffs) (Status, Inactivity) {
	if !plan.HasUsageData() {
		return StatusUnavailable, ""
	}
	if !lastUsed.Before(c.UsedBefore) || !assigned.Before(c.AssignedBefore) {
		return StatusActive, ""
	}
	if lastUsed.Before(assigned) {
		return StatusInactive, NeverUsed
	}
	return StatusInactive, StoppedUsing
}

// Event is one use of a product by a user, as sent by products and integrations.
type Event struct {
	User    string    `json:"user"`    // email
	Product string    `json:"product"` // product code
	At      time.Time `json:"at"`
}

// Rejection says why one input line was not stored.
type Rejection struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// IngestResult counts what an ingest did.
type IngestResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   int         `json:"rejected"`
	Rejections []Rejection `json:"rejections"` // the first MaxRejections
}

// MaxRejections bounds the rejections listed in an IngestResult.
const MaxRejections = 1000

// maxReason bounds one rejection's reason, which may quote the input: a
// thousand reasons quoting 64 kB lines would be a 64 MB answer.
const maxReason = 300

// add counts o, the result of one batch, into r.
func (r *IngestResult) add(o IngestResult) {
	r.Accepted += o.Accepted
	r.Duplicates += o.Duplicates
	r.Rejected += o.Rejected
	for _, rej := range o.Rejections {
		if len(r.Rejections) >= MaxRejections {
			break
		}
		r.Rejections = append(r.Rejections, rej)
	}
}

func (r *IngestResult) reject(line int, format string, args ...any) {
	r.Rejected++
	if len(r.Rejections) < MaxRejections {
		reason := fmt.Sprintf(format, args...)
		if len(reason) > maxReason {
			reason = strings.ToValidUTF8(reason[:maxReason], "") + "…"
		}
		r.Rejections = append(r.Rejections, Rejection{Line: line, Reason: reason})
	}
}
