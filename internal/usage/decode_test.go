package usage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/usher"

	"github.com/usherhq/usher/internal/usage"
)

func collect(body string, f usage.Format) (events []usage.Event, bad map[int]string) {
	bad = map[int]string{}
	for it := range usage.Decode(strings.NewReader(body), f) {
		if it.Err != nil {
			bad[it.Line] = it.Err.Error()
			continue
		}
		events = append(events, it.Event)
	}
	return events, bad
}

func TestDecodeCSVKeepsGoodLinesAroundABrokenOne(t *testing.T) {
	body := "user,product,at\n" +
		"ada@x.test,draftpro,2026-03-01T09:00:00Z\n" +
		"bob@x.test,draftpro\n" +
		"cy@x.test,draftpro,yesterday\n" +
		"dee@x.test,modelstudio,2026-03-02T10:00:00+01:00\n"
	events, bad := collect(body, usage.FormatCSV)
	if len(events) != 2 || events[1].User != "dee@x.test" {
		t.Fatalf("events: got %+v, want ada and dee", events)
	}
	if len(bad) != 2 || !strings.Contains(bad[3], "fields") || !strings.Contains(bad[4], "RFC 3339") {
		t.Fatalf("rejections: got %v, want lines 3 and 4", bad)
	}
}

func TestDecodeCSVNeedsHeader(t *testing.T) {
	_, bad := collect("ada@x.test,draftpro,2026-03-01T09:00:00Z\n", usage.FormatCSV)
	if !strings.Contains(bad[1], "header") {
		t.Fatalf("got %v, want a header complaint on line 1", bad)
	}
}

func TestDecodeNDJSON(t *testing.T) {
	body := `{"user":"ada@x.test","product":"draftpro","at":"2026-03-01T09:00:00Z"}
not json

{"user":"bob@x.test","product":"draftpro","at":"2026-03-01T09:00:00Z","extra":1}
{"user":"cy@x.test","product":"draftpro"}
{"user":"dee@x.test","product":"draftpro","at":"2026-03-01T09:00:00.123Z"}
`
	events, bad := collect(body, usage.FormatNDJSON)
	if len(events) != 2 {
		t.Fatalf("events: got %d, want 2", len(events))
	}
	for line, want := range map[int]string{2: "not an event", 4: "unknown field", 5: "missing at"} {
		if !strings.Contains(bad[line], want) {
			t.Errorf("line %d: got %q, want it to mention %q", line, bad[line], want)
		}
	}
}

func TestDecodeJSONArray(t *testing.T) {
	events, bad := collect(`[{"user":"a@x.test","product":"p","at":"2026-03-01T09:00:00Z"},{"user":1}]`, usage.FormatJSON)
	if len(events) != 1 || !strings.Contains(bad[2], "must be a string") {
		t.Fatalf("got %v %v", events, bad)
	}
	events, bad = collect(`[1, {"user":"a@x.test","product":"p","at":"2026-03-01T09:00:00Z","x":[1,{"y":2}]}, "s",
		{"user":"b@x.test","product":"p","at":"2026-03-01T09:00:00Z"}, {"user":`, usage.FormatJSON)
	if len(events) != 1 || events[0].User != "b@x.test" || !strings.Contains(bad[1], "got a JSON number") ||
		!strings.Contains(bad[2], `unknown field "x"`) || !strings.Contains(bad[3], "got a JSON string") || !strings.Contains(bad[5], "malformed JSON") {
		t.Fatalf("wrong elements: got %v %v", events, bad)
	}
	_, bad = collect(``, usage.FormatJSON)
	if !strings.Contains(bad[0], "empty") {
		t.Fatalf("empty body: got %v", bad)
	}
	_, bad = collect(`{"user":"a"}`, usage.FormatJSON)
	if !strings.Contains(bad[0], "not a JSON array") {
		t.Fatalf("object body: got %v", bad)
	}
}

func TestRangeCutoffClampsToMonthEnd(t *testing.T) {
	day := func(s string) usage.Day {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return usage.DayOf(d, time.UTC)
	}
	cases := []struct {
		today string
		r     usage.Range
		want  string
	}{
		{"2026-05-31", usage.Range3m, "2026-02-28"},
		{"2028-05-31", usage.Range3m, "2028-02-29"},
		{"2026-03-31", usage.Range30d, "2026-03-01"},
		{"2026-03-15", usage.Range6m, "2025-09-15"},
		{"2026-12-31", usage.Range9m, "2026-03-31"},
		{"2028-02-29", usage.Range1y, "2027-02-28"},
	}
	for _, c := range cases {
		if got := c.r.Cutoff(day(c.today)).String(); got != c.want {
			t.Errorf("%s − %s: got %s, want %s", c.today, c.r, got, c.want)
		}
	}
}

func TestSeatStatus(t *testing.T) {
	cutoff := usage.Day(100)
	used := func(d usage.Day) *usage.Day { return &d }
	cases := []struct {
		name     string
		plan     usher.Plan
		assigned usage.Day
		last     *usage.Day
		want     usage.Status
	}{
		{"NeverUsedAssignedLongAgo", usher.PlanStandard, 10, nil, usage.StatusInactive},
		{"NeverUsedAssignedInsideRange", usher.PlanPremium, 100, nil, usage.StatusActive},
		{"UsedOnCutoffDay", usher.PlanStandard, 10, used(100), usage.StatusActive},
		{"UsedDayBeforeCutoff", usher.PlanStandard, 10, used(99), usage.StatusInactive},
		{"BasicNeverInactive", usher.PlanBasic, 10, nil, usage.StatusUnavailable},
	}
	for _, c := range cases {
		if got := usage.SeatStatus(c.plan, c.assigned, c.last, cutoff); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestDayOfUsesTheAccountsTimeZone(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC) // 00:30 on Mar 2 in Berlin
	if got := usage.DayOf(at, berlin).String(); got != "2026-03-02" {
		t.Fatalf("got %s, want 2026-03-02", got)
	}
	if got := usage.DayOf(at, time.UTC).String(); got != "2026-03-01" {
		t.Fatalf("got %s, want 2026-03-01", got)
	}
}

func TestDecodeCSVStrayQuoteCostsOneLine(t *testing.T) {
	body := "\ufeffUser, Product ,at\r\n" +
		"ada@x.test,draftpro,2026-03-01T09:00:00Z\r\n" +
		"bob@x.test,draftpro,\"2026-03-01T09:00:00Z\r\n" + // never closed
		"\"cy@x.test\",\"draft\"\"pro\",\"2026-03-01T09:00:00Z\"\r\n" +
		"dee@x.test,draft\"pro,2026-03-01T09:00:00Z\r\n" +
		"eve@x.test,\"draftpro\"x,2026-03-01T09:00:00Z\r\n" +
		"fay@x.test,draftpro,2026-03-01T09:00:00Z,\r\n" +
		"\r\n" +
		"gus@x.test, draftpro, 2026-03-01T09:00:00Z\n"
	events, bad := collect(body, usage.FormatCSV)
	if len(events) != 3 || events[0].User != "ada@x.test" || events[1].Product != `draft"pro` || events[2].User != "gus@x.test" || events[2].Product != "draftpro" {
		t.Fatalf("events: got %+v, want ada, cy and gus", events)
	}
	for line, want := range map[int]string{3: "not closed", 5: "quote inside", 6: "after the closing quote", 7: "has 4 fields"} {
		if !strings.Contains(bad[line], want) {
			t.Errorf("line %d: got %q, want it to mention %q", line, bad[line], want)
		}
	}
	if len(bad) != 4 {
		t.Errorf("rejections: got %v, want lines 3, 5, 6 and 7", bad)
	}
}

func TestDecodeCSVEmptyBody(t *testing.T) {
	_, bad := collect("\n\n", usage.FormatCSV)
	if !strings.Contains(bad[0], "empty") {
		t.Fatalf("got %v", bad)
	}
}

func TestStartOfDay(t *testing.T) {
	havana, err := time.LoadLocation("America/Havana")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		day  string
		want string // UTC
	}{
		{"2025-03-09", "2025-03-09T05:00:00Z"}, // midnight skipped: the day starts at 01:00 CDT
		{"2025-11-02", "2025-11-02T04:00:00Z"}, // midnight twice: the first one
		{"2025-06-15", "2025-06-15T04:00:00Z"},
	} {
		d, _ := time.Parse(time.DateOnly, c.day)
		if got := usage.StartOfDay(usage.DayOf(d, time.UTC), havana).UTC().Format(time.RFC3339); got != c.want {
			t.Errorf("%s in Havana: got %s, want %s", c.day, got, c.want)
		}
	}
	// Every day of three years in zones with and without clock changes at
	// or near midnight: the instant before the start is on the day before.
	for _, name := range []string{"UTC", "Europe/Berlin", "America/Havana", "America/Santiago", "Asia/Beirut", "Pacific/Apia", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		first := usage.DayOf(time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC), time.UTC)
		for d := first; d < first+3*366; d++ {
			s := usage.StartOfDay(d, loc)
			if usage.DayOf(s, loc) != d || usage.DayOf(s.Add(-time.Second), loc) != d-1 {
				t.Fatalf("%s %s: start %s is on %s, a second before on %s", name, d, s, usage.DayOf(s, loc), usage.DayOf(s.Add(-time.Second), loc))
			}
		}
	}
}
