package access

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/usher"
)

// This file is the domain side of provisioning by an identity provider
// (SCIM 2.0): users created, changed and deprovisioned by a client acting
// with a SCIM token. The SCIM edge (package web/scim) only translates.

// ScimState says whether an identity provider manages a user.
type ScimState string

const (
	ScimNone        ScimState = "none"        // made in Usher
	ScimProvisioned ScimState = "provisioned" // created or taken over by a SCIM client
	ScimDeleted     ScimState = "deleted"     // deleted by the SCIM client: disabled, hidden from SCIM
)

// ProvisionedUser is a user as an identity provider sees them.
type ProvisionedUser struct {
	usher.User
	State      ScimState
	ExternalID string // the provider's id of the user; "" when unknown
	// UserName is the provider's login name, unique per account without
	// regard to case; a user made in Usher answers to their email.
	UserName string
	// Profile holds the other attributes the provider sent (name parts,
	// title, the enterprise extension, …) as a JSON object, kept verbatim.
	Profile json.RawMessage
}

// Identity is what a provisioning client says about a user.
type Identity struct {
	UserName   string
	ExternalID string
	Email      string
	Name       string
	Active     bool
	Profile    json.RawMessage // a JSON object or nil
}

// UserAttr names a user attribute a provisioning filter may test.
type UserAttr string

const (
	AttrUserName    UserAttr = "userName"    // compared without case
	AttrExternalID  UserAttr = "externalId"  // compared with case
	AttrDisplayName UserAttr = "displayName" // compared without case
	AttrEmail       UserAttr = "email"       // compared without case
	// AttrID is a group's id, as decimal text. Group filters use it,
	// AttrDisplayName (the name) and AttrExternalID.
	AttrID UserAttr = "id"
)

// Operators of a UserMatch.
const (
	MatchAnd = "and"
	MatchOr  = "or"
	MatchNot = "not"
	MatchEq  = "eq"
	MatchNe  = "ne"
	MatchCo  = "co"
	MatchSw  = "sw"
	MatchEw  = "ew"
	MatchPr  = "pr"
)

// UserMatch selects users: a comparison of Attr with Value, or (Op and, or,
// not) a combination of Terms. The zero UserMatch, with no Op, matches all.
type UserMatch struct {
	Op    string
	Attr  UserAttr
	Value string
	Terms []UserMatch
}

// MaxProvisionPage bounds one page of a provisioning list.
const MaxProvisionPage = 200

// ProvisionTx is what provisioning needs from storage beyond Tx.
type ProvisionTx interface {
	// ProvisionedUserByID answers usher.ENOTFOUND for users of other
	// accounts, not for deleted ones: callers decide what those mean.
	ProvisionedUserByID(ctx context.Context, accountID, id int64) (ProvisionedUser, error)
	// ProvisionedUserByUserName finds the user whose userName (or, for a
	// user without one, whose email) is userName, without regard to case.
	ProvisionedUserByUserName(ctx context.Context, accountID int64, userName string) (ProvisionedUser, error)
	// FindProvisionedUsers lists users not deleted by SCIM that match m,
	// ordered by id, skipping offset; it also counts every match.
	FindProvisionedUsers(ctx context.Context, accountID int64, m UserMatch, offset, limit int) ([]ProvisionedUser, int, error)
	// FindGroups lists the groups m matches in id order from offset, and
	// counts all it matches.
	FindGroups(ctx context.Context, accountID int64, m UserMatch, offset, limit int) ([]usher.Group, int, error)
	// SetScimIdentity stores the user's SCIM state, externalId, userName and profile.
	SetScimIdentity(ctx context.Context, u ProvisionedUser) error
	// DeleteSessionsOfUser signs the user out of the console everywhere.
	DeleteSessionsOfUser(ctx context.Context, accountID, userID int64) error
	// DeleteTokensOfUser revokes every API token of the user.
	DeleteTokensOfUser(ctx context.Context, accountID, userID int64) (int, error)
}

func canProvision(a usher.Actor) error {
	if !Can(a, Provision, 0) {
		return forbidden("provision users (this needs a SCIM token of an admin)")
	}
	return nil
}

// provisionPage checks that a may provision and that a SCIM page is sane,
// and caps its size.
func provisionPage(a usher.Actor, offset, limit int) (int, error) {
	if err := canProvision(a); err != nil {
		return 0, err
	}
	var p usher.Problems
	if offset < 0 {
		p.Add("startIndex", "must be 1 or more")
	}
	if limit < 0 {
		p.Add("count", "must not be negative")
	}
	if err := p.Err(); err != nil {
		return 0, err
	}
	return min(limit, MaxProvisionPage), nil
}

// ProvisionedUsers lists the users a SCIM client sees, matching m, from
// offset (0-based), with the number of all matches.
func (s *Service) ProvisionedUsers(ctx context.Context, a usher.Actor, m UserMatch, offset, limit int) ([]ProvisionedUser, int, error) {
	limit, err := provisionPage(a, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	var out []ProvisionedUser
	var total int
	err = s.store.Read(ctx, func(tx Tx) (err error) {
		out, total, err = tx.FindProvisionedUsers(ctx, a.AccountID, m, offset, limit)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list provisioned users: %w", err)
	}
	return out, total, nil
}

// ProvisionedGroups lists the groups a provisioning filter matches, in id
// order, a page from offset, with how many match in all. The filter is
// applied by the database.
func (s *Service) ProvisionedGroups(ctx context.Context, a usher.Actor, m UserMatch, offset, limit int) ([]usher.Group, int, error) {
	limit, err := provisionPage(a, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	var out []usher.Group
	var total int
	err = s.store.Read(ctx, func(tx Tx) (err error) {
		out, total, err = tx.FindGroups(ctx, a.AccountID, m, offset, limit)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list provisioned groups: %w", err)
	}
	return out, total, nil
}

// ProvisionedUser returns one user as a SCIM client sees them; users the
// client deleted are not found.
func (s *Service) ProvisionedUser(ctx context.Context, a usher.Actor, id int64) (ProvisionedUser, error) {
	if err := canProvision(a); err != nil {
		return ProvisionedUser{}, err
	}
	var u ProvisionedUser
	err := s.store.Read(ctx, func(tx Tx) (err error) {
		u, err = visibleUser(ctx, tx, a.AccountID, id)
		return err
	})
	if err != nil {
		return u, fmt.Errorf("get provisioned user %d: %w", id, err)
	}
	return u, nil
}

func visibleUser(ctx context.Context, tx Tx, accountID, id int64) (ProvisionedUser, error) {
	u, err := tx.ProvisionedUserByID(ctx, accountID, id)
	if err == nil && u.State == ScimDeleted {
		err = usher.Errorf(usher.ENOTFOUND, "user %d not found", id)
	}
	return u, err
}

func (in *Identity) validate() error {
	var p usher.Problems
	in.UserName = strings.TrimSpace(in.UserName)
	// A SCIM body reaches here as it came (the REST API refuses bad text as
	// it decodes), so NULs and control characters are refused here.
	if in.UserName == "" || utf8.RuneCountInString(in.UserName) > 254 {
		p.Add("userName", "is required, at most 254 characters")
	} else if reason := usher.TextProblem(in.UserName); reason != "" {
		p.Add("userName", reason)
	}
	if utf8.RuneCountInString(in.ExternalID) > 254 {
		p.Add("externalId", "is at most 254 characters")
	} else if reason := usher.TextProblem(in.ExternalID); reason != "" {
		p.Add("externalId", reason)
	}
	in.Email = usher.NormalizeEmail(in.Email)
	if in.Email == "" && usher.ValidEmail(usher.NormalizeEmail(in.UserName)) {
		in.Email = usher.NormalizeEmail(in.UserName) // Okta and Entra often send only userName
	}
	if !usher.ValidEmail(in.Email) {
		p.Add("emails", "needs an email address such as ada@example.com (or a userName that is one)")
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		in.Name = in.Email
	}
	if utf8.RuneCountInString(in.Name) > 200 {
		p.Add("displayName", "is at most 200 characters")
	} else if reason := usher.TextProblem(in.Name); reason != "" {
		p.Add("displayName", reason)
	}
	if len(in.Profile) > 0 {
		var obj map[string]any
		if json.Unmarshal(in.Profile, &obj) != nil {
			p.Add("profile", "is not a JSON object")
		} else if len(in.Profile) > 16<<10 {
			p.Add("profile", "is larger than 16 KiB")
		}
	}
	return p.Err()
}

// taken is the conflict of a value another user holds; it names the field,
// which SCIM answers as a uniqueness error.
func taken(field, value string) error {
	return &usher.Error{Code: usher.ECONFLICT, Message: "already taken",
		Fields: []usher.FieldError{{Field: field, Reason: fmt.Sprintf("%s belongs to another user", value)}}}
}

// ProvisionUser creates a user for a SCIM client. A user the client
// deleted earlier, with the same userName or email, is brought back
// instead, so that their history stays one person's.
func (s *Service) ProvisionUser(ctx context.Context, a usher.Actor, in Identity) (ProvisionedUser, error) {
	if err := canProvision(a); err != nil {
		return ProvisionedUser{}, err
	}
	if err := in.validate(); err != nil {
		return ProvisionedUser{}, err
	}
	var out ProvisionedUser
	err := s.store.Write(ctx, func(tx Tx) error {
		// A user made in Usher, or deleted by the client before, with this
		// userName or email is taken over rather than refused, so that an
		// organisation connecting its provider keeps its people's history.
		prior, err := tx.ProvisionedUserByUserName(ctx, a.AccountID, in.UserName)
		// Most clients send the email as userName: then the first lookup
		// was the second one already.
		if usher.ErrorCode(err) == usher.ENOTFOUND && in.Email != usher.NormalizeEmail(in.UserName) {
			prior, err = tx.ProvisionedUserByUserName(ctx, a.AccountID, in.Email)
		}
		switch {
		case err == nil && prior.State != ScimProvisioned:
			out, err = s.applyIdentity(ctx, tx, a, prior, in, "user.provision")
			return err
		case err == nil:
			return taken("userName", in.UserName)
		case usher.ErrorCode(err) != usher.ENOTFOUND:
			return err
		}
		now := s.Now()
		u := usher.User{AccountID: a.AccountID, Email: in.Email, Name: in.Name, Status: usher.UserActive, CreatedAt: now, UpdatedAt: now}
		if !in.Active {
			u.Status = usher.UserDisabled
		}
		if err := tx.CreateUser(ctx, &u); usher.ErrorCode(err) == usher.ECONFLICT {
			return taken("emails", in.Email)
		} else if err != nil {
			return err
		}
		out = ProvisionedUser{User: u, State: ScimProvisioned, ExternalID: in.ExternalID, UserName: in.UserName, Profile: in.Profile}
		if err := tx.SetScimIdentity(ctx, out); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "user.provision", u, 0, nil, identityView(out))
	})
	if err != nil {
		return ProvisionedUser{}, fmt.Errorf("provision user %s: %w", in.UserName, err)
	}
	return out, nil
}

// UpdateProvisionedUser changes a user as a SCIM client asks: change
// computes the wanted identity from the current one, inside the
// transaction, so that a PATCH applies to what is stored. Taking a user who
// was made in Usher marks them as provisioned. Turning a user inactive
// deprovisions them (see DeprovisionUser).
func (s *Service) UpdateProvisionedUser(ctx context.Context, a usher.Actor, id int64, change func(ProvisionedUser) (Identity, error)) (ProvisionedUser, error) {
	if err := canProvision(a); err != nil {
		return ProvisionedUser{}, err
	}
	var out ProvisionedUser
	err := s.store.Write(ctx, func(tx Tx) error {
		cur, err := visibleUser(ctx, tx, a.AccountID, id)
		if err != nil {
			return err
		}
		in, err := change(cur)
		if err != nil {
			return err
		}
		if err := in.validate(); err != nil {
			return err
		}
		if other, err := tx.ProvisionedUserByUserName(ctx, a.AccountID, in.UserName); err == nil && other.ID != id {
			return taken("userName", in.UserName)
		} else if err != nil && usher.ErrorCode(err) != usher.ENOTFOUND {
			return err
		}
		out, err = s.applyIdentity(ctx, tx, a, cur, in, "user.update")
		return err
	})
	if err != nil {
		return ProvisionedUser{}, fmt.Errorf("update provisioned user %d: %w", id, err)
	}
	return out, nil
}

// DeleteProvisionedUser is a SCIM client's DELETE: the user is
// deprovisioned and hidden from SCIM, but kept, disabled, with their
// history.
func (s *Service) DeleteProvisionedUser(ctx context.Context, a usher.Actor, id int64) error {
	if err := canProvision(a); err != nil {
		return err
	}
	err := s.store.Write(ctx, func(tx Tx) error {
		cur, err := visibleUser(ctx, tx, a.AccountID, id)
		if err != nil {
			return err
		}
		in := Identity{UserName: cur.UserName, ExternalID: cur.ExternalID, Email: cur.Email, Name: cur.Name, Profile: cur.Profile}
		after, err := s.applyIdentity(ctx, tx, a, cur, in, "user.update")
		if err != nil {
			return err
		}
		after.State = ScimDeleted
		if err := tx.SetScimIdentity(ctx, after); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "user.scim_delete", after.User, 0, nil, identityView(after))
	})
	if err != nil {
		return fmt.Errorf("delete provisioned user %d: %w", id, err)
	}
	return nil
}

// applyIdentity stores in over cur, audited as action when anything
// changed, and deprovisions the user when they turn inactive.
func (s *Service) applyIdentity(ctx context.Context, tx Tx, a usher.Actor, cur ProvisionedUser, in Identity, action string) (ProvisionedUser, error) {
	// The token's scope allows only provisioning; its owner's roles say
	// whom it may provision: only a primary admin's reaches primary admins.
	owner := a
	owner.Scope = usher.ScopeFull
	if err := primaryAdminTargetGuard(ctx, tx, owner, cur.ID, "change"); err != nil {
		return cur, err
	}
	next := cur
	next.Email, next.Name = in.Email, in.Name
	next.State, next.ExternalID, next.UserName, next.Profile = ScimProvisioned, in.ExternalID, in.UserName, in.Profile
	next.Status = usher.UserActive
	if !in.Active {
		next.Status = usher.UserDisabled
	}
	if next.User == cur.User && sameIdentity(next, cur) {
		return cur, nil
	}
	leaving := cur.Status == usher.UserActive && next.Status == usher.UserDisabled
	if leaving {
		if err := lastPrimaryAdminGuard(ctx, tx, a.AccountID, cur.ID, "deprovision"); err != nil {
			return cur, err
		}
	}
	if next.User != cur.User {
		next.UpdatedAt = s.Now()
		if err := tx.UpdateUser(ctx, next.User); usher.ErrorCode(err) == usher.ECONFLICT {
			return cur, taken("emails", next.Email)
		} else if err != nil {
			return cur, err
		}
	}
	if err := tx.SetScimIdentity(ctx, next); usher.ErrorCode(err) == usher.ECONFLICT {
		return cur, taken("userName", next.UserName)
	} else if err != nil {
		return cur, err
	}
	if err := s.audit(ctx, tx, a, action, next.User, 0, identityView(cur), identityView(next)); err != nil {
		return cur, err
	}
	if leaving {
		if err := s.deprovision(ctx, tx, a, next.User); err != nil {
			return cur, err
		}
	}
	return next, nil
}

func sameIdentity(x, y ProvisionedUser) bool {
	return x.State == y.State && x.ExternalID == y.ExternalID && x.UserName == y.UserName && bytes.Equal(x.Profile, y.Profile)
}

// deprovision ends what a disabled user holds: console sessions, API
// tokens, seats and benefits, each freed seat audited, all in tx.
func (s *Service) deprovision(ctx context.Context, tx Tx, a usher.Actor, u usher.User) error {
	_, held, benefits, err := s.holdings(ctx, tx, a.AccountID, u.ID)
	if err != nil {
		return err
	}
	// Seats, direct or through groups, go as for any disabled user, and to
	// the subscriptions' waiters.
	freed := slices.Sorted(maps.Keys(held)) // in id order, so the audit log reads the same every time
	if err := s.settleStatus(ctx, tx, a, u); err != nil {
		return err
	}
	for _, subID := range slices.Sorted(maps.Keys(benefits)) {
		if len(benefits[subID]) == 0 {
			continue
		}
		if err := s.setBenefits(ctx, tx, a, u, subID, benefits[subID], nil); err != nil {
			return err
		}
	}
	if err := s.endCredentials(ctx, tx, a, u, "user deprovisioned"); err != nil {
		return err
	}
	return s.audit(ctx, tx, a, "user.deprovision", u, 0, nil, map[string]any{"seats_freed": freed})
}

// identityView is how the audit log shows a provisioned user.
func identityView(u ProvisionedUser) map[string]any {
	v := map[string]any{"email": u.Email, "name": u.Name, "status": u.Status, "user_name": u.UserName, "scim": u.State}
	if u.ExternalID != "" {
		v["external_id"] = u.ExternalID
	}
	return v
}
