package bench

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// Seats fall into three kinds by a hash of their index: regular users, who
// use their product throughout the year; lapsed users, who stopped more
// than recentDays ago; and seats never used.
const (
	regularPercent = 45
	lapsedPercent  = 20
	// recentDays is the window at the end of the year that only regular
	// users use, so that lapsed seats are inactive for 3 months and more.
	recentDays = 120
)

type seatKind int

const (
	kindRegular seatKind = iota
	kindLapsed
	kindNever
)

func kindOf(seat int) seatKind {
	switch h := (uint64(seat) * 2654435761) % 100; {
	case h < regularPercent:
		return kindRegular
	case h < regularPercent+lapsedPercent:
		return kindLapsed
	}
	return kindNever
}

// events generates the benchmark's usage: EventsPerUseDay events for each
// (seat, day) of use, day by day in time order, as products would send them.
// The same config and world always give the same events, so the HTTP ingest
// and the raw baseline load the same rows.
type events struct {
	cfg   Config
	w     *world
	today time.Time // midnight of the day after the last day with use, in the account's zone
}

func newEvents(cfg Config, w *world, now time.Time) *events {
	y, m, d := now.In(w.loc).Date()
	return &events{cfg: cfg, w: w, today: time.Date(y, m, d, 0, 0, 0, 0, w.loc)}
}

// each calls fn with every event: its seat index and instant (unix ms).
func (g *events) each(fn func(seat int, at int64) error) error {
	return g.eachIn(0, g.cfg.Days, fn)
}

// eachIn calls fn with the events of days [from, to) of the history only;
// the days before are generated and skipped, so every part is the same as
// in the whole.
func (g *events) eachIn(from, to int, fn func(seat int, at int64) error) error {
	var regular, lapsed []int
	for i := range g.w.seats {
		switch kindOf(i) {
		case kindRegular:
			regular = append(regular, i)
		case kindLapsed:
			lapsed = append(lapsed, i)
		}
	}
	rnd := rand.New(rand.NewPCG(5, 8))
	useDays := g.cfg.Events / g.cfg.EventsPerUseDay
	for d := range min(to, g.cfg.Days) {
		n := useDays / g.cfg.Days
		if d < useDays%g.cfg.Days {
			n++
		}
		day := g.today.AddDate(0, 0, d-g.cfg.Days) // Days days ago … yesterday
		recent := d >= g.cfg.Days-recentDays
		// A seat is used at most once a day, so no two events coincide and
		// the raw baseline can load them without a conflict clause.
		picked := make(map[int]bool, n)
		for range min(n, len(regular)) {
			var seat int
			for {
				if recent || len(lapsed) == 0 || rnd.IntN(10) < 6 {
					seat = regular[rnd.IntN(len(regular))]
				} else {
					seat = lapsed[rnd.IntN(len(lapsed))]
				}
				if !picked[seat] {
					break
				}
			}
			picked[seat] = true
			// A working day's events, a minute and a half apart from 8:00.
			start := day.Add(8*time.Hour + time.Duration(seat%60)*time.Second).UnixMilli()
			if d < from {
				continue
			}
			for k := range g.cfg.EventsPerUseDay {
				if err := fn(seat, start+int64(k)*97_000); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// appendNDJSON appends one event as an NDJSON line.
func (g *events) appendNDJSON(b []byte, seat int, at int64) []byte {
	s := g.w.seats[seat]
	b = append(b, `{"user":"`...)
	b = append(b, email(int(s.user))...)
	b = append(b, `","product":"`...)
	b = append(b, g.w.products[s.product].code...)
	b = append(b, `","at":"`...)
	b = time.UnixMilli(at).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, "\"}\n"...)
	return b
}

// total is how many events each generates.
func (g *events) total() int {
	n := 0
	_ = g.each(func(int, int64) error { n++; return nil })
	return n
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
