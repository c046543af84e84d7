package access

import (
	"context"
	"time"

	"github.com/usherhq/usher/internal/usher"
)

// Store runs functions in database transactions. Write transactions are
// serialised where the engine needs it (SQLite); Read ones may run in parallel.
// A function's error rolls its transaction back.
//
// Peek runs a read outside a transaction: each statement sees what was
// committed when it started. For reads of a single statement, consistent on
// its own, it saves a transaction's begin and commit, two round trips to a
// database server that every API request would pay for.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
	Peek(ctx context.Context, fn func(Tx) error) error
}

// UserFilter selects a page of users, ordered by Sort (by default
// (lower(name), id)).
type UserFilter struct {
	Query string // substring of name or email, case-insensitive
	// Product keeps users holding a seat of a subscription of the product
	// (a product code), among SubscriptionIDs when that is not nil.
	Product         string
	SubscriptionIDs []int64
	Role            usher.Role       // users granted this role ("" = any)
	Status          usher.UserStatus // "" = any
	Sort            UserSort         // "" = by name
	Desc            bool             // the sort's order reversed, ties included

	// The keyset cursor: the sort key of the last row seen. AfterName is
	// lower(name) (name and status sorts); AfterKey the email or status;
	// AfterCreated the creation time (created sort).
	AfterName    string
	AfterKey     string
	AfterCreated time.Time
	AfterID      int64 // id of the last row seen; 0 = from the start
	Limit        int
}

// UserSort is an order of the users list; ties are broken by id.
type UserSort string

// The orders of the users list.
const (
	SortUsersByName    UserSort = "name"    // lower(name), id
	SortUsersByEmail   UserSort = "email"   // email, id
	SortUsersByStatus  UserSort = "status"  // status, lower(name), id
	SortUsersByCreated UserSort = "created" // created_at, id
)

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

// GroupFilter selects a page of groups, ordered by (lower(name), id).
type GroupFilter struct {
	Query     string // substring of the name, case-insensitive
	AfterName string // keyset cursor: lower(name) of the last row seen
	AfterID   int64
	Limit     int
}

// WaiterFilter selects waiting users: of one subscription, or of the
// subscriptions one group gives (members of that group only), or of one user.
// Waiters come oldest first per subscription.
type WaiterFilter struct {
	SubscriptionID int64
	GroupID        int64
	UserID         int64
	Limit          int
}

// Tx is what the access service needs from storage inside one transaction.
// Every method that takes an accountID confines itself to that account and
// answers usher.ENOTFOUND for objects of other accounts.
type Tx interface {
	KeyTx // the key that signs cursors

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
	// CountUsers counts the users f selects, ignoring its keyset and limit.
	CountUsers(ctx context.Context, accountID int64, f UserFilter) (int, error)
	UpdateUser(ctx context.Context, u usher.User) error
	// DeleteUser removes the user with their roles, tokens, seats and benefits.
	DeleteUser(ctx context.Context, accountID, id int64) error
	ProvisionTx // SCIM provisioning of users, provision.go

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

	// UsersByEmail lists the users with this email in every account.
	UsersByEmail(ctx context.Context, email string) ([]usher.User, error)
	// DeleteSessionsOfUser signs the user out of every browser.
	DeleteSessionsOfUser(ctx context.Context, accountID, userID int64) error

	CreateToken(ctx context.Context, t *usher.Token) error
	// TokenByHash finds a token in any account; usher.ENOTFOUND when absent.
	TokenByHash(ctx context.Context, hash []byte) (usher.Token, error)
	// TokenHolder finds a token in any account with its holder's status
	// and grants (as RolesOf orders them), in one read: every API request
	// starts with it. usher.ENOTFOUND when absent.
	TokenHolder(ctx context.Context, hash []byte) (usher.Token, usher.UserStatus, []usher.RoleGrant, error)
	// TokenByID finds a token of the account, of any account when accountID is 0.
	TokenByID(ctx context.Context, accountID, id int64) (usher.Token, error)
	// ListTokens lists the account's tokens with their owners' emails, of
	// one user unless userID is 0, oldest first.
	ListTokens(ctx context.Context, accountID, userID int64) ([]usher.Token, error)
	// DeleteToken answers usher.ENOTFOUND when the token is absent.
	DeleteToken(ctx context.Context, accountID, id int64) error
	DeleteTokensOfUser(ctx context.Context, accountID, userID int64) (int, error)
	// TouchToken records a use at at, unless one at or after staleBefore is recorded.
	TouchToken(ctx context.Context, id int64, at, staleBefore time.Time) error

	ListProducts(ctx context.Context) ([]usher.Product, error)
	ProductByCode(ctx context.Context, code string) (usher.Product, error)
	CreateProduct(ctx context.Context, p *usher.Product) error

	// CreateSubscription stores s with SeatsUsed 0; it fails with
	// usher.ECONFLICT when the contract number is taken in the account.
	CreateSubscription(ctx context.Context, s *usher.Subscription) error
	SubscriptionByID(ctx context.Context, accountID, id int64) (usher.Subscription, error)
	ListSubscriptions(ctx context.Context, accountID int64, f SubscriptionFilter) ([]usher.Subscription, error)
	// SetSubscriptionTerms stores the seats and term unless more seats are in
	// use than seats, which it reports as false (changing nothing).
	SetSubscriptionTerms(ctx context.Context, accountID, id int64, seats int, start, end usher.Date) (bool, error)
	// SeatHolders lists at most limit holders of the subscription's seats,
	// the longest inactive first (the later of last use and assignment).
	SeatHolders(ctx context.Context, accountID, subscriptionID int64, limit int) ([]SeatHolder, error)
	// SetSubscriptionPrice stores the price per seat per year; nil removes it.
	SetSubscriptionPrice(ctx context.Context, accountID, id int64, p *usher.Price) error

	// LockUser holds the user's row until the transaction ends, so that no
	// other change adds seats to the user meanwhile: changes that add seats
	// to a user lock the user first, before any seat (see LockSeats).
	LockUser(ctx context.Context, accountID, userID int64) error
	// LockSeats holds, until the transaction ends, the seat counters of the
	// listed subscriptions and then the listed users' seats of them, each
	// in ascending id order. Every change of several seats calls it before
	// reading them. Locks are taken in one global order — the user whose
	// seats are added (LockUser), then subscriptions, then seats — so no two
	// changes wait for each other in a cycle. Ids of other accounts or
	// without seats lock nothing.
	LockSeats(ctx context.Context, accountID int64, subscriptionIDs, userIDs []int64) error
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
	// AccessView reads, in one statement, what a view of the user's access
	// shows; usher.ENOTFOUND when the account has no such user.
	AccessView(ctx context.Context, accountID, userID int64, maxSubscriptions int) (AccessData, error)
	// TokenAccessView is TokenHolder and AccessView of a user of the
	// token's account in one read, for a GET of a user's access with a
	// bearer token. usher.ENOTFOUND when no token has the hash; the view's
	// User is zero when the token's account has no such user.
	TokenAccessView(ctx context.Context, hash []byte, userID int64, maxSubscriptions int) (TokenHolder, AccessData, error)
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
	// SetUndoOutcome records the undo outcome (usher.UndoRestored or
	// usher.UndoNotRestored) of one user's items of a batch unless it is
	// recorded already, and reports whether it did.
	SetUndoOutcome(ctx context.Context, batchID, userID int64, state, reason string) (bool, error)
	// LockSubscriptions holds the subscriptions' rows until the transaction
	// ends, taken in id order. Every change of who holds or waits for a seat
	// of a subscription takes its lock first, so that waiting lists and
	// seat counts move one transaction at a time.
	LockSubscriptions(ctx context.Context, accountID int64, ids []int64) error
	// LockGroups holds the groups' rows (in id order); changes of a group's
	// members or assignments take it before any subscription lock.
	LockGroups(ctx context.Context, accountID int64, ids []int64) error

	// CreateGroup fails with usher.ECONFLICT when the name (in any case) or
	// the external id is taken in the account.
	CreateGroup(ctx context.Context, g *usher.Group) error
	GroupByID(ctx context.Context, accountID, id int64) (usher.Group, error)
	GroupByName(ctx context.Context, accountID int64, name string) (usher.Group, error)
	GroupByExternalID(ctx context.Context, accountID int64, externalID string) (usher.Group, error)
	ListGroups(ctx context.Context, accountID int64, f GroupFilter) ([]usher.Group, error)
	UpdateGroup(ctx context.Context, g usher.Group) error
	// DeleteGroup removes the group with its members, assignments and
	// exclusions. Seats it gave must have been settled first.
	DeleteGroup(ctx context.Context, accountID, id int64) error
	// AddGroupMember reports false when the user was a member already.
	AddGroupMember(ctx context.Context, accountID, groupID, userID int64, at time.Time) (bool, error)
	// RemoveGroupMember reports false when the user was not a member.
	RemoveGroupMember(ctx context.Context, accountID, groupID, userID int64) (bool, error)
	// GroupMembers lists members ordered by (lower(name), id), from the
	// keyset position in f (Query is ignored).
	GroupMembers(ctx context.Context, accountID, groupID int64, f UserFilter) ([]usher.GroupMember, error)
	// GroupMemberIDs lists every member, longest-standing first.
	GroupMemberIDs(ctx context.Context, accountID, groupID int64) ([]int64, error)
	GroupsOfUser(ctx context.Context, accountID, userID int64) ([]usher.Group, error)
	// GroupSeatCounts counts the seats held through the group, by subscription id.
	GroupSeatCounts(ctx context.Context, accountID, groupID int64) (map[int64]int, error)

	// SetGroupAssignment creates or replaces a group's assignment.
	SetGroupAssignment(ctx context.Context, ga usher.GroupAssignment) error
	// DeleteGroupAssignment removes it with its exclusions; ENOTFOUND when absent.
	DeleteGroupAssignment(ctx context.Context, accountID, groupID, subscriptionID int64) error
	GroupAssignments(ctx context.Context, accountID, groupID int64) ([]usher.GroupAssignment, error)
	// GroupGrantsFor lists the assignments of subscriptionID that reach the
	// user: of groups they are a member of, without an exclusion for them.
	GroupGrantsFor(ctx context.Context, accountID, userID, subscriptionID int64) ([]usher.GroupAssignment, error)
	// GroupSubscriptionsOfUser lists the subscriptions the user's groups are assigned.
	GroupSubscriptionsOfUser(ctx context.Context, accountID, userID int64) ([]int64, error)
	// InsertExclusion reports false when it existed.
	InsertExclusion(ctx context.Context, e usher.GroupExclusion) (bool, error)
	// DeleteExclusion fails with usher.ENOTFOUND when it does not exist.
	DeleteExclusion(ctx context.Context, accountID, groupID, subscriptionID, userID int64) error
	GroupExclusions(ctx context.Context, accountID, groupID int64) ([]usher.GroupExclusion, error)

	// SetSeatSources replaces how a held seat reaches its holder.
	SetSeatSources(ctx context.Context, accountID, userID, subscriptionID int64, direct bool, groups []int64) error
	// AddWaiter puts the user at the end of the subscription's waiting list;
	// it reports false (keeping their place) when they wait already.
	AddWaiter(ctx context.Context, accountID, subscriptionID, userID int64, since time.Time) (bool, error)
	// DeleteWaiter reports false when the user was not waiting.
	DeleteWaiter(ctx context.Context, accountID, subscriptionID, userID int64) (bool, error)
	// NextWaiter returns the user waiting longest; usher.ENOTFOUND when none.
	NextWaiter(ctx context.Context, accountID, subscriptionID int64) (int64, error)
	Waiters(ctx context.Context, accountID int64, f WaiterFilter) ([]usher.Waiter, error)
	// WaitingCounts counts waiters per subscription.
	WaitingCounts(ctx context.Context, accountID int64) (map[int64]int, error)

	InsertAudit(ctx context.Context, e *usher.AuditEntry) error
	ListAudit(ctx context.Context, accountID int64, f AuditFilter) ([]usher.AuditEntry, error)

	GroupTx
}

// SeatRef names one user's seat of one subscription.
type SeatRef struct{ UserID, SubscriptionID int64 }

// GroupTx is the set-based part of Tx, for changes that handle many people
// in one transaction (ReclaimGroup): a few statements for all of them
// instead of several per person. Each does what the per-person methods do.
type GroupTx interface {
	// UsersByIDs returns the users of the account among ids, by id; ids
	// not found are absent.
	UsersByIDs(ctx context.Context, accountID int64, ids []int64) (map[int64]usher.User, error)
	// AssignmentsOfUsers is AssignmentsOfUser for several users, by user id.
	AssignmentsOfUsers(ctx context.Context, accountID int64, userIDs []int64) (map[int64][]usher.Assignment, error)
	// BenefitsOfUsers is BenefitsOfUser for several users, by user id.
	BenefitsOfUsers(ctx context.Context, accountID int64, userIDs []int64) (map[int64]map[int64][]string, error)
	// GroupGrantedSeats returns those of seats that some group assignment
	// reaches (as GroupGrantsFor, exclusions honoured).
	GroupGrantedSeats(ctx context.Context, accountID int64, seats []SeatRef) ([]SeatRef, error)
	// DeleteSeats removes the seat records (with their services and group
	// sources) and takes the users off the subscriptions' waiting lists,
	// as DeleteAssignment and DeleteWaiter do; usher.ENOTFOUND unless every
	// seat was held. It does not release the seats: call ReleaseSeats.
	DeleteSeats(ctx context.Context, accountID int64, seats []SeatRef) error
	// ReleaseSeats gives back n seats of each subscription, as n
	// ReleaseSeat would.
	ReleaseSeats(ctx context.Context, accountID int64, n map[int64]int) error
	// ClearBenefits removes every benefit of the users on those subscriptions.
	ClearBenefits(ctx context.Context, accountID int64, seats []SeatRef) error
	// InsertAudits appends the entries to the audit log, in order; it does
	// not set their IDs.
	InsertAudits(ctx context.Context, es []usher.AuditEntry) error
	// InsertBatches stores the batches with their items, in order, and
	// sets their IDs, as InsertBatch does for one.
	InsertBatches(ctx context.Context, bs []*usher.ReclaimBatch) error
}

// SeatHolder is a holder of one of a subscription's seats, with when the
// seat was assigned and when its product was last used (nil: never).
type SeatHolder struct {
	User       usher.User
	AssignedAt time.Time
	LastUsed   *usher.Date
}

// Clock returns the current time; tests replace it.
type Clock func() time.Time

// AccessData is what a view of a user's access is built from, as
// holdings, ListSubscriptions and groupings read it.
type AccessData struct {
	User usher.User
	// Subscriptions of the account by id, at most the limit asked for,
	// each with its product's services and its benefits.
	Subscriptions []usher.Subscription
	Held          map[int64]usher.Assignment // the user's seats by subscription id
	Benefits      map[int64][]string         // the user's benefits by subscription id
	// Groups are the user's groups that seats come through (id and name).
	Groups []usher.Group
	// Waits are the subscriptions the user waits for (SubscriptionID only).
	Waits []usher.Waiter
}

// TokenHolder is a token with its holder's status and role grants now.
type TokenHolder struct {
	Token  usher.Token
	Status usher.UserStatus
	Grants []usher.RoleGrant
}
