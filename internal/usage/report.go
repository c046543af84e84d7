package usage

import (
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// ReportFilter selects and orders Usage Report rows.
type ReportFilter struct {
	Status         string // "all" (default), "active", "inactive", "never_used", "stopped_using", "unavailable", "unassigned"
	Range          Range  // default 30d
	Product        string // product code; "" for all
	SubscriptionID int64  // 0 for all
	Query          string // substring of name or email
	Sort           string // name (default), email, product, last_used, days_used; "-" prefix for descending
	Cursor         string
	Limit          int
	// Snapshot shows the report as of an email or reclaim run (a snapshot
	// id such as "notification-42"): its seats, each marked with how it
	// changed since. Range comes from the snapshot; sort is by name.
	Snapshot string
}

// ReportRow is one assigned seat in the Usage Report.
type ReportRow struct {
	UserID         int64       `json:"user_id"`
	Name           string      `json:"name"`
	Email          string      `json:"email"`
	Product        string      `json:"product"`
	ProductName    string      `json:"product_name"`
	SubscriptionID int64       `json:"subscription_id"`
	ContractNumber string      `json:"contract_number"`
	Plan           usher.Plan  `json:"plan"`
	AssignedAt     time.Time   `json:"assigned_at"`
	LastUsed       *usher.Date `json:"last_used"`       // nil: never used
	DaysUsed       int         `json:"days_used"`       // days with use inside the range
	MonthlyAverage float64     `json:"monthly_average"` // days used per month of the range (30d counts as one)
	Status         Status      `json:"status"`
	// Inactivity says why an inactive seat is inactive; empty otherwise.
	Inactivity Inactivity `json:"inactivity,omitempty"`
	// StatusNote explains an unavailable status to people.
	StatusNote string `json:"status_note,omitempty"`
	// Sources says how the seat reaches the user: directly and/or through
	// groups. Unassigning a group-held seat excludes the user from those
	// groups' assignments (reversible; see docs/api.md).
	Sources []usher.SeatSource `json:"sources"`
	// DaysInactive counts the days from the seat's last use (or its
	// assignment, when later or never used) to today, or to the snapshot's
	// day; nil on plans without usage data.
	DaysInactive *int `json:"days_inactive"`
	// Change, on a snapshot's rows, says how the seat changed since:
	// used_since, unassigned or reassigned; absent when it did not.
	Change Change `json:"change,omitempty"`
	// LastUsedNow is the seat's last use now, on a snapshot's row used since.
	LastUsedNow *usher.Date `json:"last_used_now,omitempty"`
	// UnassignedAt is the day a seat freed in the range was freed, in the
	// account's time zone (status unassigned).
	UnassignedAt *usher.Date `json:"unassigned_at,omitempty"`
	// Action is what the reclaim run did or would do with the seat, on
	// rows of a reclaim run's snapshot.
	Action string `json:"action,omitempty"`
}

// ReportTotals summarise every row matching the filter, not just one page.
type ReportTotals struct {
	Seats             int `json:"seats"`
	Users             int `json:"users"`
	InactiveSeats     int `json:"inactive_seats"`
	InactiveUsers     int `json:"inactive_users"`
	NeverUsedSeats    int `json:"never_used_seats"`
	StoppedUsingSeats int `json:"stopped_using_seats"`
	// InactiveCost is what the inactive seats cost per year, per currency,
	// counting only subscriptions with a price.
	InactiveCost []usher.Cost `json:"inactive_cost"`
	// ChangedSeats counts, in a snapshot, the seats that changed since.
	ChangedSeats *int `json:"changed_seats,omitempty"`
}

// Report is one page of the Usage Report.
type Report struct {
	Range  Range      `json:"range"`
	Cutoff usher.Date `json:"cutoff"` // first day inside the range
	// AssignedBefore: seats assigned on or after it are active (the range
	// or the account's new-seat grace, whichever reaches further back).
	AssignedBefore time.Time    `json:"assigned_before"`
	Today          usher.Date   `json:"today"` // in the account's time zone
	Rows           []ReportRow  `json:"rows"`
	NextCursor     string       `json:"next_cursor,omitempty"`
	Totals         ReportTotals `json:"totals"`
	// ProcessedAt is when usage data was last processed; nil if never.
	ProcessedAt *time.Time `json:"processed_at"`
	// Snapshot is the email or run the report is shown as of; Today is then
	// the snapshot's day.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
}

// ProductSummary counts inactive seats and users of one product.
type ProductSummary struct {
	Product       string `json:"product"`
	ProductName   string `json:"product_name"`
	InactiveSeats int    `json:"inactive_seats"`
	InactiveUsers int    `json:"inactive_users"`
}

// InactiveSummary is what a usage notification says about a range.
type InactiveSummary struct {
	Range             Range `json:"range"`
	InactiveSeats     int   `json:"inactive_seats"`
	InactiveUsers     int   `json:"inactive_users"`
	NeverUsedSeats    int   `json:"never_used_seats"`
	StoppedUsingSeats int   `json:"stopped_using_seats"`
	// InactiveCost is what the inactive seats cost per year, per currency.
	InactiveCost []usher.Cost     `json:"inactive_cost"`
	ByProduct    []ProductSummary `json:"by_product"`
	// FirstUsers are the first inactive users by name, at most the limit asked for.
	FirstUsers []usher.User `json:"first_users"`
}
