package access_test

import (
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// TestCan pins the whole permission matrix: every role × every action, on the
// role's own subscription (1) and on another one (2).
func TestCan(t *testing.T) {
	const own, other = 1, 2
	type want struct{ own, other bool }
	all := want{true, true}
	none := want{false, false}
	mine := want{true, false}
	actions := []access.Action{
		access.ViewUsers, access.ManageUsers, access.GrantPrimaryAdmin, access.GrantAdmin, access.GrantManager,
		access.AppointCoordinator, access.CreateSubscription, access.ViewSubscription, access.ManageSeats,
		access.ViewReports, access.ViewAudit, access.ManageNotification, access.IngestUsage,
		access.ViewTokens, access.RevokeTokens, access.ViewNotification, access.ManageSSO, access.ManageGroups,
	}
	table := map[usher.Role]map[access.Action]want{
		usher.RolePrimaryAdmin: {
			access.ViewUsers: all, access.ManageUsers: all, access.GrantPrimaryAdmin: all, access.GrantAdmin: all,
			access.GrantManager: all, access.AppointCoordinator: all, access.CreateSubscription: all,
			access.ViewSubscription: all, access.ManageSeats: all, access.ViewReports: all, access.ViewAudit: all,
			access.ManageNotification: all, access.IngestUsage: all, access.ViewTokens: all, access.RevokeTokens: all,
			access.ViewNotification: all, access.ManageSSO: all, access.ManageGroups: all,
		},
		usher.RoleSecondaryAdmin: {
			access.ViewUsers: all, access.ManageUsers: all, access.GrantPrimaryAdmin: none, access.GrantAdmin: all,
			access.GrantManager: all, access.AppointCoordinator: all, access.CreateSubscription: all,
			access.ViewSubscription: all, access.ManageSeats: all, access.ViewReports: all, access.ViewAudit: all,
			access.ManageNotification: none, access.IngestUsage: all, access.ManageSSO: none, access.ManageGroups: all,
		},
		usher.RoleContractManager: {
			access.ViewUsers: all, access.ManageUsers: none, access.GrantPrimaryAdmin: none, access.GrantAdmin: none,
			access.GrantManager: none, access.AppointCoordinator: mine, access.CreateSubscription: none,
			access.ViewSubscription: mine, access.ManageSeats: mine, access.ViewReports: mine, access.ViewAudit: none,
			access.ManageNotification: none, access.IngestUsage: none, access.ManageSSO: none, access.ManageGroups: none,
		},
		usher.RoleSoftwareCoordinator: {
			access.ViewUsers: all, access.ManageUsers: none, access.GrantPrimaryAdmin: none, access.GrantAdmin: none,
			access.GrantManager: none, access.AppointCoordinator: none, access.CreateSubscription: none,
			access.ViewSubscription: mine, access.ManageSeats: mine, access.ViewReports: mine, access.ViewAudit: none,
			access.ManageNotification: none, access.IngestUsage: none, access.ManageSSO: none, access.ManageGroups: none,
		},
		"": {}, // a plain user: nothing beyond their own access
	}
	for role, wants := range table {
		a := usher.Actor{AccountID: 1, UserID: 9, Scope: usher.ScopeFull}
		if role != "" {
			g := usher.RoleGrant{UserID: 9, Role: role}
			if role.PerSubscription() {
				g.SubscriptionID = own
			}
			a.Grants = []usher.RoleGrant{g}
		}
		for _, act := range actions {
			w := wants[act]
			name := string(role)
			if name == "" {
				name = "plain_user"
			}
			if got := access.Can(a, act, own); got != w.own {
				t.Errorf("%s %s own subscription: got %v, want %v", name, act, got, w.own)
			}
			if got := access.Can(a, act, other); got != w.other {
				t.Errorf("%s %s other subscription: got %v, want %v", name, act, got, w.other)
			}
		}
	}
}

func TestCanIngestScopeAllowsOnlyIngest(t *testing.T) {
	a := usher.Actor{AccountID: 1, UserID: 1, Scope: usher.ScopeIngest, Grants: []usher.RoleGrant{{UserID: 1, Role: usher.RolePrimaryAdmin}}}
	if !access.Can(a, access.IngestUsage, 0) {
		t.Fatal("ingest token of an admin cannot ingest")
	}
	for _, act := range []access.Action{access.ViewUsers, access.ManageSeats, access.ViewAudit, access.ManageNotification} {
		if access.Can(a, act, 1) {
			t.Errorf("ingest token may %s", act)
		}
	}
}

func TestCanReadScopeOnlyLooks(t *testing.T) {
	a := usher.Actor{AccountID: 1, UserID: 1, Scope: usher.ScopeRead, Grants: []usher.RoleGrant{{UserID: 1, Role: usher.RolePrimaryAdmin}}}
	for _, act := range []access.Action{access.ViewUsers, access.ViewSubscription, access.ViewReports, access.ViewAudit, access.ViewTokens, access.ViewNotification} {
		if !access.Can(a, act, 1) {
			t.Errorf("read token of a primary admin may not %s", act)
		}
	}
	for _, act := range []access.Action{access.ManageUsers, access.ManageSeats, access.GrantAdmin, access.CreateSubscription,
		access.ManageNotification, access.IngestUsage, access.RevokeTokens} {
		if access.Can(a, act, 1) || access.CanAny(a, act) {
			t.Errorf("read token may %s", act)
		}
	}
	if access.CanWrite(a) {
		t.Error("read token may write")
	}
}

func TestCanSCIMScopeDoesNothingInTheAPI(t *testing.T) {
	a := usher.Actor{AccountID: 1, UserID: 1, Scope: usher.ScopeSCIM, Grants: []usher.RoleGrant{{UserID: 1, Role: usher.RolePrimaryAdmin}}}
	for _, act := range []access.Action{access.ViewUsers, access.ManageUsers, access.ManageSeats, access.IngestUsage, access.ViewTokens} {
		if access.Can(a, act, 1) || access.CanAny(a, act) {
			t.Errorf("SCIM token may %s", act)
		}
	}
	if access.CanWrite(a) {
		t.Error("SCIM token may write through the API")
	}
}
