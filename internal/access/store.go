package access

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Store runs functions in database transactions. Write transactions are
// serialised where the engine needs it (SQLite); Read ones may run in parallel.
// A function's error rolls its transaction back.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
}

// UserFilter selects a page of users, ordered by (lower(name), id).
type UserFilter struct {
	Query     string // substring of name or email, case-insensitive
	AfterName string // keyset cursor: lower(name) of the last row seen
	AfterID   int64  // keyset cursor: id of the last row seen
	Limit     int
}

// SubscriptionFilter selects a page of subscriptions ordered by id.
type SubscriptionFilter struct {
	IDs     []int64 // when not nil, only these
	AfterID int64
	Limit   int
}

// AuditFilter selects a page of audit entries, newest first.
type AuditFilter struct {
	UserID   int64  // entries by or about this user
	Action   string // exact action, e.g. "seat.assign"
	BeforeID int64  // keyset cursor: entries with a smaller id
	Limit    int
}

// Tx is what the access service needs from storage inside one transaction.
// Every method that takes an accountID confines itself to that account and
// answers usher.ENOTFOUND for objects of other accounts.
type Tx interface {
	CreateAccount(ctx context.Context, a *usher.Account) error
	AccountByID(ctx context.Context, id int64) (usher.Account, error)
	ListAccounts(ctx context.Context) ([]usher.Account, error)
	// SetAccountGrace stores the account's new-seat grace in days.
	SetAccountGrace(ctx context.Context, accountID int64, days int) error

	// CreateUser fails with usher.ECONFLICT when the email is taken in the account.
	CreateUser(ctx context.Context, u *usher.User) error
	UserByID(ctx context.Context, accountID, id int64) (usher.User, error)
	UserByEmail(ctx context.Context, accountID int64, email string) (usher.User, error)
	ListUsers(ctx context.Context, accountID int64, f UserFilter) ([]usher.User, error)
	UpdateUser(ctx context.Context, u usher.User) error
	// DeleteUser removes the user with their roles, tokens, seats and benefits.
	DeleteUser(ctx context.Context, accountID, id int64) error

	// GrantRole is idempotent.
	GrantRole(ctx context.Context, accountID int64, g usher.RoleGrant) error
	// RevokeRole fails with usher.ENOTFOUND when the grant does not exist.
	RevokeRole(ctx context.Context, accountID int64, g usher.RoleGrant) error
	RolesOf(ctx context.Context, accountID, userID int64) ([]usher.RoleGrant, error)
	// LockRoleGrants holds the account's grants of role until the
	// transaction ends, so that concurrent decisions about them queue.
	LockRoleGrants(ctx context.Context, accountID int64, role usher.Role) error
	// UsersWithRole lists grants of role in the account (all subscriptions).
	UsersWithRole(ctx context.Context, accountID int64, role usher.Role) ([]usher.RoleGrant, error)

	CreateToken(ctx context.Context, t *usher.Token) error
	TokenByHash(ctx context.Context, hash []byte) (usher.Token, error)

	ListProducts(ctx context.Context) ([]usher.Product, error)
	ProductByCode(ctx context.Context, code string) (usher.Product, error)
	CreateProduct(ctx context.Context, p *usher.Product) error

	// CreateSubscription stores s with SeatsUsed 0; it fails with
	// usher.ECONFLICT when the contract number is taken in the account.
	CreateSubscription(ctx context.Context, s *usher.Subscription) error
	SubscriptionByID(ctx context.Context, accountID, id int64) (usher.Subscription, error)
	ListSubscriptions(ctx context.Context, accountID int64, f SubscriptionFilter) ([]usher.Subscription, error)
	// SetSubscriptionPrice stores the price per seat per year; nil removes it.
	SetSubscriptionPrice(ctx context.Context, accountID, id int64, p *usher.Price) error

	// ReserveSeat adds one to the subscription's seats used if a seat is
	// free, atomically with respect to every other transaction; otherwise it
	// fails with usher.ENOSEATS.
	ReserveSeat(ctx context.Context, accountID, subscriptionID int64) error
	// ReleaseSeat subtracts one from the subscription's seats used.
	ReleaseSeat(ctx context.Context, accountID, subscriptionID int64) error
	// InsertAssignment fails with usher.ECONFLICT when the user holds a seat already.
	InsertAssignment(ctx context.Context, a usher.Assignment) error
	// DeleteAssignment removes the seat and its services; usher.ENOTFOUND when absent.
	DeleteAssignment(ctx context.Context, accountID, userID, subscriptionID int64) error
	// SetAssignmentServices replaces the services of an existing seat.
	SetAssignmentServices(ctx context.Context, accountID, userID, subscriptionID int64, services []string) error
	AssignmentsOfUser(ctx context.Context, accountID, userID int64) ([]usher.Assignment, error)
	// BenefitsOfUser returns granted benefit codes by subscription id.
	BenefitsOfUser(ctx context.Context, accountID, userID int64) (map[int64][]string, error)
	// SetBenefits replaces the user's benefits on one subscription.
	SetBenefits(ctx context.Context, accountID, userID, subscriptionID int64, codes []string) error

	// InsertBatch stores a reclaim batch with its items and sets its ID.
	InsertBatch(ctx context.Context, b *usher.ReclaimBatch) error
	// BatchByID returns a batch with its items.
	BatchByID(ctx context.Context, accountID, id int64) (usher.ReclaimBatch, error)
	// ListBatches returns at most limit batches with their items, newest
	// first, with ID < beforeID when beforeID > 0.
	ListBatches(ctx context.Context, accountID, beforeID int64, limit int) ([]usher.ReclaimBatch, error)
	// MarkBatchUndone records the undo of a batch not undone yet and reports
	// whether it did; false means it was undone already.
	MarkBatchUndone(ctx context.Context, accountID, id int64, at time.Time, by string) (bool, error)

	InsertAudit(ctx context.Context, e *usher.AuditEntry) error
	ListAudit(ctx context.Context, accountID int64, f AuditFilter) ([]usher.AuditEntry, error)
}

// Clock returns the current time; tests replace it.
type Clock func() time.Time
