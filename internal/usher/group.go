package usher

import "time"

// Group is a set of users of one account. A group can be given seats of
// subscriptions (GroupAssignment); every member then holds one.
type Group struct {
	ID          int64  `json:"id"`
	AccountID   int64  `json:"-"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// ExternalID is the identity provider's id of a provisioned group.
	ExternalID string `json:"external_id,omitempty"`
	// Synced groups are provisioned by an identity provider: their name,
	// description and members change only through provisioning.
	Synced      bool      `json:"synced"`
	MemberCount int       `json:"member_count"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// GroupMember is a user's membership of a group.
type GroupMember struct {
	User
	AddedAt time.Time `json:"added_at"`
}

// GroupAssignment gives every member of a group a seat of a subscription,
// with services, and benefits of the contract.
type GroupAssignment struct {
	AccountID      int64     `json:"-"`
	GroupID        int64     `json:"group_id"`
	SubscriptionID int64     `json:"subscription_id"`
	Services       []string  `json:"services"`
	Benefits       []string  `json:"benefits"`
	CreatedAt      time.Time `json:"created_at"`
}

// GroupExclusion keeps one member of a group from the seat the group's
// assignment would give them, e.g. after an admin unassigned it.
type GroupExclusion struct {
	AccountID      int64     `json:"-"`
	GroupID        int64     `json:"group_id"`
	SubscriptionID int64     `json:"subscription_id"`
	UserID         int64     `json:"user_id"`
	Email          string    `json:"email"`
	CreatedAt      time.Time `json:"created_at"`
}

// Waiter is a user whose groups give them a seat of a subscription that has
// none left. Waiters are seated oldest first as seats free up.
type Waiter struct {
	UserID         int64     `json:"user_id"`
	Email          string    `json:"email"`
	Name           string    `json:"name"`
	SubscriptionID int64     `json:"subscription_id"`
	Since          time.Time `json:"since"`
	// Position is 1 for the next user to be seated.
	Position int `json:"position"`
}

// SeatSource is one way a seat reaches its holder: directly, or through a group.
type SeatSource struct {
	Direct    bool   `json:"direct,omitempty"`
	GroupID   int64  `json:"group_id,omitempty"`
	GroupName string `json:"group_name,omitempty"`
}
