package notify_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/usher"
)

func date(s string) usher.Date {
	d, err := usher.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func TestOccurrence(t *testing.T) {
	type occ struct {
		k    int
		want string // UTC instant
	}
	tests := []struct {
		name  string
		start string
		freq  notify.Frequency
		hour  int
		zone  string
		occs  []occ
	}{
		{"MonthlyFromJan31ClampsAndRecovers", "2027-01-31", notify.Monthly, 8, "UTC", []occ{
			{0, "2027-01-31T08:00:00Z"}, {1, "2027-02-28T08:00:00Z"}, {2, "2027-03-31T08:00:00Z"},
			{3, "2027-04-30T08:00:00Z"}, {4, "2027-05-31T08:00:00Z"}, {12, "2028-01-31T08:00:00Z"},
			{13, "2028-02-29T08:00:00Z"}, {14, "2028-03-31T08:00:00Z"},
		}},
		{"MonthlyFromJan31InLeapYear", "2028-01-31", notify.Monthly, 8, "UTC", []occ{
			{0, "2028-01-31T08:00:00Z"}, {1, "2028-02-29T08:00:00Z"}, {2, "2028-03-31T08:00:00Z"}, {13, "2029-02-28T08:00:00Z"},
		}},
		{"QuarterlyFromJan31InLeapYear", "2028-01-31", notify.Quarterly, 8, "UTC", []occ{
			{0, "2028-01-31T08:00:00Z"}, {1, "2028-04-30T08:00:00Z"}, {2, "2028-07-31T08:00:00Z"},
			{3, "2028-10-31T08:00:00Z"}, {4, "2029-01-31T08:00:00Z"},
		}},
		{"QuarterlyFromNov30KeepsTheStartsDay", "2027-11-30", notify.Quarterly, 8, "UTC", []occ{
			{0, "2027-11-30T08:00:00Z"}, {1, "2028-02-29T08:00:00Z"}, {2, "2028-05-30T08:00:00Z"}, {3, "2028-08-30T08:00:00Z"},
		}},
		{"WeeklyFromJan31InLeapYear", "2028-01-31", notify.Weekly, 8, "UTC", []occ{
			{0, "2028-01-31T08:00:00Z"}, {1, "2028-02-07T08:00:00Z"}, {4, "2028-02-28T08:00:00Z"}, {5, "2028-03-06T08:00:00Z"},
		}},
		{"WeeklyFromJan31", "2027-01-31", notify.Weekly, 8, "UTC", []occ{
			{4, "2027-02-28T08:00:00Z"}, {5, "2027-03-07T08:00:00Z"},
		}},
		{"BiweeklyFromJan31InLeapYear", "2028-01-31", notify.Biweekly, 8, "UTC", []occ{
			{0, "2028-01-31T08:00:00Z"}, {1, "2028-02-14T08:00:00Z"}, {2, "2028-02-28T08:00:00Z"}, {3, "2028-03-13T08:00:00Z"},
		}},
		{"WeeklyKeepsLocalHourAcrossBerlinSpringForward", "2026-03-21", notify.Weekly, 8, "Europe/Berlin", []occ{
			{0, "2026-03-21T07:00:00Z"}, {1, "2026-03-28T07:00:00Z"}, {2, "2026-04-04T06:00:00Z"},
		}},
		{"BiweeklyKeepsLocalHourAcrossBerlinFallBack", "2026-10-17", notify.Biweekly, 8, "Europe/Berlin", []occ{
			{0, "2026-10-17T06:00:00Z"}, {1, "2026-10-31T07:00:00Z"},
		}},
		{"BiweeklyKeepsLocalHourAcrossNewYorkFallBack", "2026-10-24", notify.Biweekly, 8, "America/New_York", []occ{
			{0, "2026-10-24T12:00:00Z"}, {1, "2026-11-07T13:00:00Z"},
		}},
		{"WeeklyKeepsLocalHourAcrossNewYorkSpringForward", "2026-03-01", notify.Weekly, 8, "America/New_York", []occ{
			{0, "2026-03-01T13:00:00Z"}, {1, "2026-03-08T12:00:00Z"},
		}},
		{"MonthlyKeepsLocalHourAcrossBerlinFallBack", "2026-10-15", notify.Monthly, 8, "Europe/Berlin", []occ{
			{0, "2026-10-15T06:00:00Z"}, {1, "2026-11-15T07:00:00Z"}, {6, "2027-04-15T06:00:00Z"},
		}},
		{"SkippedHourInBerlinMovesPastTheGap", "2026-03-22", notify.Weekly, 2, "Europe/Berlin", []occ{
			{0, "2026-03-22T01:00:00Z"}, // 02:00 CET
			{1, "2026-03-29T01:00:00Z"}, // 02:00 does not exist: 03:00 CEST
			{2, "2026-04-05T00:00:00Z"}, // 02:00 CEST
		}},
		{"SkippedHourInNewYorkMovesPastTheGap", "2026-03-08", notify.Monthly, 2, "America/New_York", []occ{
			{0, "2026-03-08T07:00:00Z"}, // 03:00 EDT
			{1, "2026-04-08T06:00:00Z"},
		}},
		{"RepeatedHourInBerlinIsTheEarlierOne", "2026-10-18", notify.Weekly, 2, "Europe/Berlin", []occ{
			{1, "2026-10-25T00:00:00Z"}, // 02:00 CEST, not 02:00 CET
			{2, "2026-11-01T01:00:00Z"},
		}},
		{"RepeatedHourInNewYorkIsTheEarlierOne", "2026-11-01", notify.Weekly, 1, "America/New_York", []occ{
			{0, "2026-11-01T05:00:00Z"}, // 01:00 EDT, not 01:00 EST
			{1, "2026-11-08T06:00:00Z"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := zone(t, tt.zone)
			for _, o := range tt.occs {
				got := notify.Occurrence(date(tt.start), tt.freq, tt.hour, loc, o.k)
				if want := utc(o.want); !got.Equal(want) {
					t.Errorf("occurrence %d: got %v (%v), want %v", o.k, got, got.In(loc), want)
				}
				if got.Location() != time.UTC {
					t.Errorf("occurrence %d: got location %v, want UTC", o.k, got.Location())
				}
			}
		})
	}
}

func setting(start string, f notify.Frequency, hour int) notify.Setting {
	return notify.Setting{StartDate: date(start), Frequency: f, SendHour: hour, Enabled: true}
}

func TestNextAfterAndLatestAtOrBefore(t *testing.T) {
	tests := []struct {
		name       string
		s          notify.Setting
		zone       string
		t          string
		wantNext   string
		wantLatest string // "" when there is none
	}{
		{"MidPeriod", setting("2026-01-05", notify.Weekly, 8), "UTC", "2026-01-14T10:00:00Z", "2026-01-19T08:00:00Z", "2026-01-12T08:00:00Z"},
		{"ExactlyAtAnOccurrence", setting("2026-01-05", notify.Weekly, 8), "UTC", "2026-01-12T08:00:00Z", "2026-01-19T08:00:00Z", "2026-01-12T08:00:00Z"},
		{"BeforeTheStart", setting("2026-02-01", notify.Monthly, 8), "UTC", "2026-01-14T10:00:00Z", "2026-02-01T08:00:00Z", ""},
		{"OnTheStartDayBeforeTheHour", setting("2026-01-14", notify.Monthly, 8), "UTC", "2026-01-14T07:59:59Z", "2026-01-14T08:00:00Z", ""},
		{"MonthlyAfterLeapDay", setting("2028-01-31", notify.Monthly, 8), "UTC", "2028-03-01T00:00:00Z", "2028-03-31T08:00:00Z", "2028-02-29T08:00:00Z"},
		{"QuarterlyYearsLater", setting("2026-01-31", notify.Quarterly, 8), "UTC", "2036-06-01T00:00:00Z", "2036-07-31T08:00:00Z", "2036-04-30T08:00:00Z"},
		{"BerlinLocalDayDiffersFromUTC", setting("2026-06-01", notify.Weekly, 0), "Europe/Berlin", "2026-06-07T22:30:00Z", "2026-06-14T22:00:00Z", "2026-06-07T22:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := zone(t, tt.zone)
			at := utc(tt.t)
			if got, want := notify.NextAfter(tt.s, loc, at), utc(tt.wantNext); !got.Equal(want) {
				t.Errorf("next after: got %v, want %v", got, want)
			}
			got, ok := notify.LatestAtOrBefore(tt.s, loc, at)
			if tt.wantLatest == "" {
				if ok {
					t.Errorf("latest at or before: got %v, want none", got)
				}
			} else if want := utc(tt.wantLatest); !ok || !got.Equal(want) {
				t.Errorf("latest at or before: got %v %v, want %v", got, ok, want)
			}
		})
	}
}

// TestNextAfterAgreesWithEnumeration checks the shortcut NextAfter takes
// against walking every occurrence from the start.
func TestNextAfterAgreesWithEnumeration(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia"}
	for i := range 2000 {
		loc := zone(t, zones[i%len(zones)])
		f := notify.Frequencies[rng.IntN(len(notify.Frequencies))]
		start := usher.Date{Time: time.Date(2010+rng.IntN(20), time.Month(1+rng.IntN(12)), 1+rng.IntN(31), 0, 0, 0, 0, time.UTC)}
		s := notify.Setting{StartDate: start, Frequency: f, SendHour: rng.IntN(24)}
		at := start.Add(time.Duration(rng.Int64N(int64(3*365*24*time.Hour))) - 48*time.Hour)
		k := 0
		for !notify.Occurrence(s.StartDate, f, s.SendHour, loc, k).After(at) {
			k++
		}
		want := notify.Occurrence(s.StartDate, f, s.SendHour, loc, k)
		if got := notify.NextAfter(s, loc, at); !got.Equal(want) {
			t.Fatalf("%s %s from %s at %d:00 after %v: got %v, want %v", loc, f, start, s.SendHour, at, got, want)
		}
		latest, ok := notify.LatestAtOrBefore(s, loc, at)
		if ok != (k > 0) || (ok && !latest.Equal(notify.Occurrence(s.StartDate, f, s.SendHour, loc, k-1))) {
			t.Fatalf("%s %s from %s after %v: latest got %v %v, want occurrence %d", loc, f, start, at, latest, ok, k-1)
		}
	}
}

func TestFirstDue(t *testing.T) {
	tests := []struct {
		name       string
		s          notify.Setting
		lastRunFor string
		now        string
		want       string
	}{
		{"StartTodayBeforeTheHourWaitsForIt", setting("2026-01-14", notify.Weekly, 8), "", "2026-01-14T07:00:00Z", "2026-01-14T08:00:00Z"},
		{"StartTodayAfterTheHourGoesAtOnce", setting("2026-01-14", notify.Weekly, 8), "", "2026-01-14T10:00:00Z", "2026-01-14T08:00:00Z"},
		{"TodaysOccurrenceAlreadyPlannedWaitsForTheNext", setting("2026-01-14", notify.Weekly, 8), "2026-01-14T08:00:00Z", "2026-01-14T10:00:00Z", "2026-01-21T08:00:00Z"},
		{"EarlierRunTodayUnderAnotherScheduleCounts", setting("2026-01-14", notify.Weekly, 8), "2026-01-14T09:00:00Z", "2026-01-14T10:00:00Z", "2026-01-21T08:00:00Z"},
		{"StartInTheFuture", setting("2026-03-01", notify.Monthly, 8), "", "2026-01-14T10:00:00Z", "2026-03-01T08:00:00Z"},
		{"EditMidPeriodToANewStart", setting("2026-01-16", notify.Weekly, 8), "2026-01-12T08:00:00Z", "2026-01-14T10:00:00Z", "2026-01-16T08:00:00Z"},
		{"EditMidPeriodToAnotherFrequency", setting("2026-01-05", notify.Monthly, 8), "2026-01-12T08:00:00Z", "2026-01-14T10:00:00Z", "2026-02-05T08:00:00Z"},
		{"OnAgainAfterBeingOffSkipsMissedOccurrences", setting("2025-10-06", notify.Weekly, 8), "2025-11-03T08:00:00Z", "2026-01-14T10:00:00Z", "2026-01-19T08:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if tt.lastRunFor != "" {
				s.LastRunFor = utc(tt.lastRunFor)
			}
			if got, want := notify.FirstDue(s, time.UTC, utc(tt.now)), utc(tt.want); !got.Equal(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, time.Hour, time.Hour, time.Hour}
	for i, w := range want {
		if got := notify.Backoff(i + 1); got != w {
			t.Errorf("attempt %d: got %v, want %v", i+1, got, w)
		}
	}
	if got := notify.Backoff(1000); got != time.Hour {
		t.Errorf("attempt 1000: got %v, want 1h", got)
	}
}
