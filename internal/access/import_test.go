package access_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/store/storetest"
	"github.com/usherhq/usher/internal/usher"
)

func TestImportUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		// C-9: 2 seats, the target holds one as contract manager.
		sub := f.subscription(t, f.primary, "C-9", "modelstudio", usher.PlanStandard, 2, f.target.ID)
		rows := func() []access.ImportRow {
			return []access.ImportRow{
				{Line: 2, Email: "Ada@Acme.test", Name: "Ada", Groups: []string{"Design"},
					Roles: []access.ImportRole{{Role: usher.RoleSoftwareCoordinator, Contract: "c-9"}}},
				{Line: 3, Email: "bob@acme.test", Groups: []string{"design"}},
				{Line: 4, Email: "target@acme.test", Name: "Tara", Subscriptions: []access.ImportSeat{{Contract: "C-1", Services: []string{"rendering"}}}},
			}
		}
		g := f.group(t, f.primary, "Design")
		_, err := f.svc.AssignGroup(ctx, f.primary, g.ID, sub.ID, access.GroupAssignmentInput{})
		must(t, err)

		t.Run("DryRunChangesNothing", func(t *testing.T) {
			var calls int
			res, err := f.svc.ImportUsers(ctx, f.primary, rows(), true, func(done, total int) { calls++ })
			must(t, err)
			if !res.DryRun || res.UsersCreated != 2 || res.UsersUpdated != 1 || res.MembersAdded != 2 || res.RolesGranted != 1 ||
				res.SeatsAssigned != 2 || res.Waiting != 1 || calls != 3 {
				t.Fatalf("dry run: %+v, progress calls %d", res, calls)
			}
			if len(res.Changes) != 3 || !slices.Contains(res.Changes[1].Changes, "add to group Design (waiting for 1)") {
				t.Fatalf("changes: %+v", res.Changes)
			}
			if _, err := f.svc.UserByEmail(ctx, f.primary, "ada@acme.test"); usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Fatalf("dry run created a user: %v", err)
			}
		})
		t.Run("ProblemsNamedByLineChangeNothing", func(t *testing.T) {
			bad := rows()
			bad[0].Subscriptions = []access.ImportSeat{{Contract: "C-404"}}
			bad[1].Email = "not an email"
			bad[2].Roles = []access.ImportRole{{Role: "boss"}}
			_, err := f.svc.ImportUsers(ctx, f.primary, bad, false, nil)
			wantCode(t, err, usher.EINVALID)
			var fields []string
			for _, fe := range usher.ErrorFields(err) {
				fields = append(fields, fe.Field)
			}
			if strings.Join(fields, ",") != "line 2: subscriptions[0],line 3: email,line 4: roles[0]" {
				t.Fatalf("fields: %v", fields)
			}
			// A seat that runs out half way fails the whole import.
			full := rows()
			full[0].Subscriptions = []access.ImportSeat{{Contract: "C-9"}}
			full[1].Subscriptions = []access.ImportSeat{{Contract: "C-9"}}
			_, err = f.svc.ImportUsers(ctx, f.primary, full, false, nil)
			wantCode(t, err, usher.EINVALID)
			if fs := usher.ErrorFields(err); len(fs) != 1 || fs[0].Field != "line 3: subscriptions[0]" {
				t.Fatalf("fields: %+v", fs)
			}
			if _, err := f.svc.UserByEmail(ctx, f.primary, "ada@acme.test"); usher.ErrorCode(err) != usher.ENOTFOUND {
				t.Fatalf("failed import created a user: %v", err)
			}
			_, err = f.svc.ImportUsers(ctx, f.coordinator, rows(), false, nil)
			wantCode(t, err, usher.EFORBIDDEN)
		})
		t.Run("Imports", func(t *testing.T) {
			res, err := f.svc.ImportUsers(ctx, f.primary, rows(), false, nil)
			must(t, err)
			if res.DryRun || res.UsersCreated != 2 || res.SeatsAssigned != 2 || res.Waiting != 1 {
				t.Fatalf("import: %+v", res)
			}
			ada, err := f.svc.UserByEmail(ctx, f.primary, "ada@acme.test")
			must(t, err)
			if e, ok := f.seat(t, ada.ID, sub.ID); !ok || e.Sources[0].GroupName != "Design" {
				t.Fatalf("ada's seat: %v %+v", ok, e)
			}
			roles, err := f.svc.User(ctx, f.primary, ada.ID)
			must(t, err)
			if len(roles.Roles) != 1 || roles.Roles[0].Role != usher.RoleSoftwareCoordinator || roles.Roles[0].SubscriptionID != sub.ID {
				t.Fatalf("ada's roles: %+v", roles.Roles)
			}
			w, err := f.svc.Waiting(ctx, f.primary, sub.ID)
			must(t, err)
			if len(w) != 1 || w[0].Email != "bob@acme.test" {
				t.Fatalf("waiting: %+v", w)
			}
			if e, ok := f.seat(t, f.target.ID, f.sub1.ID); !ok || !slices.Equal(e.Services, []string{"rendering"}) {
				t.Fatalf("target's direct seat: %v %+v", ok, e)
			}
			// Importing again changes nothing.
			res, err = f.svc.ImportUsers(ctx, f.primary, rows(), false, nil)
			must(t, err)
			if len(res.Changes) != 0 {
				t.Fatalf("second import: %+v", res.Changes)
			}
		})
	})
}
