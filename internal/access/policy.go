package access

import "github.com/usherhq/usher/internal/usher"

// Action is something an actor may be allowed to do. Per-subscription
// actions are checked against one subscription.
type Action string

// The actions of the permission matrix.
const (
	ViewUsers          Action = "view_users"           // list and read users
	ManageUsers        Action = "manage_users"         // create, edit, delete users
	GrantPrimaryAdmin  Action = "grant_primary_admin"  // grant or revoke primary admin
	GrantAdmin         Action = "grant_admin"          // grant or revoke secondary admin
	GrantManager       Action = "grant_manager"        // name or remove a subscription's contract manager (per subscription)
	AppointCoordinator Action = "appoint_coordinator"  // grant or revoke software coordinator (per subscription)
	CreateSubscription Action = "create_subscription"  // record a new contract
	ViewSubscription   Action = "view_subscription"    // see a contract and its seats (per subscription)
	ManageSeats        Action = "manage_seats"         // assign and unassign seats, services, benefits (per subscription)
	ViewReports        Action = "view_reports"         // usage report rows (per subscription)
	ViewAudit          Action = "view_audit"           // read the audit log
	ManageNotification Action = "manage_notifications" // usage notification settings
	ViewNotification   Action = "view_notifications"   // see one's own notification setting and its emails
	IngestUsage        Action = "ingest_usage"         // send usage events
	Provision          Action = "provision"            // create, update and deprovision users as an identity provider (SCIM)
	EditSubscription   Action = "edit_subscription"    // change a contract's seats, term and price
	ManageAccount      Action = "manage_account"       // account settings such as the new-seat grace
	ManageReclaim      Action = "manage_reclaim"       // create, edit, delete reclaim policies; undo reclaims
	ViewReclaim        Action = "view_reclaim"         // read reclaim policies, previews and history
	ViewTokens         Action = "view_tokens"          // list every API token of the account, with its owner
	RevokeTokens       Action = "revoke_tokens"        // revoke any API token of the account
	ManageSSO          Action = "manage_sso"           // single sign-on (OpenID Connect) settings of the account
	ManageGroups       Action = "manage_groups"        // create, edit, delete groups and their members and assignments
)

// Everyone may list, create and revoke their own API tokens; ViewTokens and
// RevokeTokens are about other people's.

// readActions are what a read token may do: look, never change.
var readActions = map[Action]bool{
	ViewUsers: true, ViewSubscription: true, ViewReports: true, ViewAudit: true, ViewTokens: true,
	ViewNotification: true,
}

// perSubscription marks the actions checked against one subscription.
var perSubscription = map[Action]bool{
	GrantManager: true, AppointCoordinator: true, ViewSubscription: true, ManageSeats: true, ViewReports: true,
}

// matrix says which role may do which action. Per-subscription roles allow
// an action only on the subscription they were granted for.
var matrix = map[usher.Role]map[Action]bool{
	usher.RolePrimaryAdmin: {
		ViewUsers: true, ManageUsers: true, GrantPrimaryAdmin: true, GrantAdmin: true, GrantManager: true,
		AppointCoordinator: true, CreateSubscription: true, ViewSubscription: true, ManageSeats: true,
		ViewReports: true, ViewAudit: true, ManageNotification: true, IngestUsage: true, Provision: true,
		EditSubscription: true, ManageAccount: true, ManageReclaim: true, ViewReclaim: true,
		ViewTokens: true, RevokeTokens: true, ViewNotification: true, ManageSSO: true, ManageGroups: true,
	},
	usher.RoleSecondaryAdmin: {
		ViewUsers: true, ManageUsers: true, GrantAdmin: true, GrantManager: true,
		AppointCoordinator: true, CreateSubscription: true, ViewSubscription: true, ManageSeats: true,
		ViewReports: true, ViewAudit: true, IngestUsage: true, Provision: true, ManageGroups: true,
		EditSubscription: true, ViewReclaim: true,
	},
	usher.RoleContractManager: {
		ViewUsers: true, AppointCoordinator: true, ViewSubscription: true, ManageSeats: true, ViewReports: true,
	},
	usher.RoleSoftwareCoordinator: {
		ViewUsers: true, ViewSubscription: true, ManageSeats: true, ViewReports: true,
	},
}

// Can reports whether the actor may do action, on subscriptionID for
// per-subscription actions (ignored otherwise). It is the one place that
// decides permissions; the edges only ask it to hide what cannot be used.
func Can(a usher.Actor, action Action, subscriptionID int64) bool {
	switch a.Scope {
	case usher.ScopeIngest:
		return action == IngestUsage && (a.HasAny(usher.RolePrimaryAdmin) || a.HasAny(usher.RoleSecondaryAdmin))
	case usher.ScopeRead:
		if !readActions[action] {
			return false
		}
	}
	// A SCIM token provisions and does nothing else; provisioning needs one,
	// so that what an identity provider does is told apart in the audit log.
	if (a.Scope == usher.ScopeSCIM) != (action == Provision) {
		return false
	}
	for _, g := range a.Grants {
		if !matrix[g.Role][action] {
			continue
		}
		if !g.Role.PerSubscription() || !perSubscription[action] || g.SubscriptionID == subscriptionID {
			return true
		}
	}
	return false
}

// CanAny reports whether the actor may do a per-subscription action on at
// least one subscription (or account-wide).
func CanAny(a usher.Actor, action Action) bool {
	switch a.Scope {
	case usher.ScopeIngest, usher.ScopeSCIM:
		return Can(a, action, 0)
	case usher.ScopeRead:
		if !readActions[action] {
			return false
		}
	}
	for _, g := range a.Grants {
		if matrix[g.Role][action] {
			return true
		}
	}
	return false
}

// allSubscriptions reports whether the actor holds action account-wide, so
// lists need not be narrowed to their subscriptions.
func allSubscriptions(a usher.Actor, action Action) bool {
	if a.Scope == usher.ScopeIngest || a.Scope == usher.ScopeSCIM || a.Scope == usher.ScopeRead && !readActions[action] {
		return false
	}
	for _, g := range a.Grants {
		if !g.Role.PerSubscription() && matrix[g.Role][action] {
			return true
		}
	}
	return false
}

func forbidden(what string) error {
	return usher.Errorf(usher.EFORBIDDEN, "you may not %s", what)
}

// CanWrite reports whether the actor's credentials allow changing anything
// at all: a read token only looks, and a SCIM token acts only through SCIM.
// The API refuses such a token's writes before they reach a service.
func CanWrite(a usher.Actor) bool {
	return a.Scope == usher.ScopeFull || a.Scope == usher.ScopeIngest
}

// seesOwn reports whether the actor may read their own things (seats,
// benefits, tokens) whatever their roles: a session or a full or read token.
func seesOwn(a usher.Actor) bool {
	return a.Scope == usher.ScopeFull || a.Scope == usher.ScopeRead
}
