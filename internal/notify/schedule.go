package notify

import (
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Frequency is how often a usage notification goes out.
type Frequency string

const (
	Weekly    Frequency = "weekly"    // every 7 calendar days
	Biweekly  Frequency = "biweekly"  // every 14 calendar days
	Monthly   Frequency = "monthly"   // every calendar month, on the start's day of month
	Quarterly Frequency = "quarterly" // every three calendar months, on the start's day of month
)

// Frequencies lists every frequency, most frequent first.
var Frequencies = []Frequency{Weekly, Biweekly, Monthly, Quarterly}

// Valid reports whether f is a known frequency.
func (f Frequency) Valid() bool {
	switch f {
	case Weekly, Biweekly, Monthly, Quarterly:
		return true
	}
	return false
}

// Label is the frequency as people read it.
func (f Frequency) Label() string {
	switch f {
	case Weekly:
		return "every week"
	case Biweekly:
		return "every two weeks"
	case Monthly:
		return "every month"
	case Quarterly:
		return "every three months"
	}
	return string(f)
}

// period returns the step between occurrences: days for weekly schedules,
// months for monthly ones. Exactly one of them is non-zero.
func (f Frequency) period() (days, months int) {
	switch f {
	case Weekly:
		return 7, 0
	case Biweekly:
		return 14, 0
	case Monthly:
		return 0, 1
	case Quarterly:
		return 0, 3
	}
	return 0, 0
}

// Occurrence returns occurrence k (k = 0 is the start date itself) of a
// schedule, as a UTC instant: start + k periods, at hour o'clock local time
// in loc.
//
// Weekly and biweekly schedules step calendar days, not 168-hour blocks, so
// the local hour holds across daylight-saving changes and the UTC instant
// shifts instead. Monthly and quarterly schedules keep the start's day of
// month, clamped to the length of the target month, and each occurrence is
// computed from the start, never from the previous occurrence: a schedule
// starting Jan 31 goes Feb 28 (29 in leap years), Mar 31, Apr 30, May 31.
//
// A local hour that a daylight-saving change skips or repeats is resolved by
// localTime.
func Occurrence(start usher.Date, f Frequency, hour int, loc *time.Location, k int) time.Time {
	y, m, d := start.Date()
	days, months := f.period()
	if months > 0 {
		y, m, d = addMonthsClamped(y, m, d, k*months)
	} else {
		y, m, d = time.Date(y, m, d+k*days, 0, 0, 0, 0, time.UTC).Date()
	}
	return localTime(y, m, d, hour, loc)
}

// addMonthsClamped moves a date by n calendar months, clamping the day of
// month to the target month's length.
func addMonthsClamped(y int, m time.Month, d, n int) (int, time.Month, int) {
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.Year(), first.Month(), min(d, last)
}

// localTime returns the UTC instant at which clocks in loc show y-m-d
// hour:00. Go's time.Date leaves the choice unspecified when that reading
// does not exist or exists twice, and schedules must not depend on it, so the
// rule is explicit:
//
//   - a reading skipped by a change (spring forward, 02:30 in Berlin on the
//     last Sunday of March) is read with the offset in force before the
//     change, which lands as far after the change as the reading was after
//     the start of the gap (02:30 CET becomes 03:30 CEST);
//   - a reading that occurs twice (fall back, 02:30 in Berlin on the last
//     Sunday of October) is the earlier of the two instants (02:30 CEST).
//
// Offset changes are assumed to be more than a day apart, which holds for
// every zone in the tz database.
func localTime(y int, m time.Month, d, hour int, loc *time.Location) time.Time {
	wall := time.Date(y, m, d, hour, 0, 0, 0, time.UTC) // the clock reading, as if it were UTC
	_, before := wall.Add(-24 * time.Hour).In(loc).Zone()
	_, after := wall.Add(24 * time.Hour).In(loc).Zone()
	var found time.Time
	for _, off := range []int{before, after} {
		t := wall.Add(-time.Duration(off) * time.Second)
		ly, lm, ld := t.In(loc).Date()
		if ly == y && lm == m && ld == d && t.In(loc).Hour() == hour && t.In(loc).Minute() == 0 {
			if found.IsZero() || t.Before(found) {
				found = t
			}
		}
	}
	if found.IsZero() { // in a gap
		found = wall.Add(-time.Duration(before) * time.Second)
	}
	return found.UTC()
}

// nextIndex returns the index of the first occurrence strictly after t.
func nextIndex(s Setting, loc *time.Location, t time.Time) int {
	// Start below the answer and walk up: the estimate stays at least one
	// whole period before t, so no occurrence at or before it can be after t.
	k := 0
	sy, sm, _ := s.StartDate.Date()
	ty, tm, _ := t.In(loc).Date()
	days, months := s.Frequency.period()
	switch {
	case months > 0:
		k = ((ty-sy)*12+int(tm-sm))/months - 1
	case days > 0:
		td := time.Date(ty, tm, t.In(loc).Day(), 0, 0, 0, 0, time.UTC)
		k = int(td.Sub(s.StartDate.Time).Hours()/24)/days - 1
	default:
		return 0
	}
	k = max(k, 0)
	for !Occurrence(s.StartDate, s.Frequency, s.SendHour, loc, k).After(t) {
		k++
	}
	return k
}

// NextAfter returns the first occurrence of s's schedule strictly after t.
func NextAfter(s Setting, loc *time.Location, t time.Time) time.Time {
	return Occurrence(s.StartDate, s.Frequency, s.SendHour, loc, nextIndex(s, loc, t))
}

// LatestAtOrBefore returns the last occurrence of s's schedule at or before
// t, and false when the schedule starts after t.
func LatestAtOrBefore(s Setting, loc *time.Location, t time.Time) (time.Time, bool) {
	k := nextIndex(s, loc, t)
	if k == 0 {
		return time.Time{}, false
	}
	return Occurrence(s.StartDate, s.Frequency, s.SendHour, loc, k-1), true
}

// FirstDue is the occurrence a setting saved at now waits for: the first one
// on or after the start of now's local day, unless that one has passed and
// was already planned (it is at or before s.LastRunFor), in which case the
// first one after now.
//
// So an admin who turns notifications on at 10:00 with today as the start
// date and 08:00 as the hour gets today's email at once rather than one
// period later, and an admin who edits a setting after today's email went
// out does not get a second one.
func FirstDue(s Setting, loc *time.Location, now time.Time) time.Time {
	y, m, d := now.In(loc).Date()
	midnight := localTime(y, m, d, 0, loc)
	t := NextAfter(s, loc, midnight.Add(-time.Nanosecond))
	if !t.After(now) && !t.After(s.LastRunFor) {
		return NextAfter(s, loc, now)
	}
	return t
}
