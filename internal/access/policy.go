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
	IngestUsage        Action = "ingest_usage"         // send usage events
	EditSubscription   Action = "edit_subscription"    // change a contract's price
	ManageAccount      Action = "manage_account"       // account settings such as the new-seat grace
	ManageReclaim      Action = "manage_reclaim"       // create, edit, delete reclaim policies; undo reclaims
	ViewReclaim        Action = "view_reclaim"         // read reclaim policies, previews and history
)

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
		ViewReports: true, ViewAudit: true, ManageNotification: true, IngestUsage: true,
		EditSubscription: true, ManageAccount: true, ManageReclaim: true, ViewReclaim: true,
	},
	usher.RoleSecondaryAdmin: {
		ViewUsers: true, ManageUsers: true, GrantAdmin: true, GrantManager: true,
		AppointCoordinator: true, CreateSubscription: true, ViewSubscription: true, ManageSeats: true,
		ViewReports: true, ViewAudit: true, IngestUsage: true,
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
	if a.Scope == usher.ScopeIngest {
		return action == IngestUsage && (a.HasAny(usher.RolePrimaryAdmin) || a.HasAny(usher.RoleSecondaryAdmin))
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
	if a.Scope == usher.ScopeIngest {
		return Can(a, action, 0)
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
	if a.Scope == usher.ScopeIngest {
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
