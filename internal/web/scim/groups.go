package scim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// Groups are served from the access service's groups: a group created here
// is synced (read-only in Usher), and its members' seats follow the
// subscriptions Usher's admins give the group.

func groupID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usher.Errorf(usher.ENOTFOUND, "group %q not found", r.PathValue("id"))
	}
	return id, nil
}

// provisioner refuses tokens other than SCIM ones, as the Users endpoints
// do: the group operations also admit admins, who use /api/v1.
func provisioner(r *http.Request) (usher.Actor, error) {
	a := actorFrom(r.Context())
	if !access.Can(a, access.Provision, 0) {
		return a, usher.Errorf(usher.EFORBIDDEN, "only a token with the scim scope may provision groups")
	}
	return a, nil
}

// uniqueness marks a conflict of a group's create or rename as one of a
// name or external id that another group holds, the only conflict those
// meet for a provisioning client.
func uniqueness(err error) error {
	if usher.ErrorCode(err) == usher.ECONFLICT {
		return &scimError{status: http.StatusConflict, scimType: "uniqueness", detail: err.Error()}
	}
	return err
}

// groupResource is the SCIM representation of a group; members is nil when
// the client excluded them.
func groupResource(g usher.Group, members []usher.GroupMember, withMembers bool, base string) map[string]any {
	id := strconv.FormatInt(g.ID, 10)
	res := map[string]any{
		"schemas":     []string{SchemaGroup},
		"id":          id,
		"displayName": g.Name,
		"meta": map[string]any{
			"resourceType": "Group",
			"created":      g.CreatedAt.UTC().Format(time.RFC3339Nano),
			"lastModified": g.UpdatedAt.UTC().Format(time.RFC3339Nano),
			"location":     base + "/Groups/" + id,
		},
	}
	if g.ExternalID != "" {
		res["externalId"] = g.ExternalID
	}
	if withMembers {
		ms := make([]any, len(members))
		for i, m := range members {
			uid := strconv.FormatInt(m.ID, 10)
			ms[i] = map[string]any{"value": uid, "display": m.Name, "$ref": base + "/Users/" + uid, "type": "User"}
		}
		res["members"] = ms
	}
	return res
}

// wantMembers reads excludedAttributes=members (Entra ID's group lookups)
// and attributes= lists without members.
func wantMembers(r *http.Request) bool {
	has := func(list string) bool {
		for _, a := range strings.Split(list, ",") {
			if strings.EqualFold(strings.TrimSpace(a), "members") {
				return true
			}
		}
		return false
	}
	q := r.URL.Query()
	if has(q.Get("excludedAttributes")) {
		return false
	}
	if at := q.Get("attributes"); at != "" {
		return has(at)
	}
	return true
}

// allMembers pages through a group's members.
func (s *server) allMembers(ctx context.Context, a usher.Actor, id int64) ([]usher.GroupMember, error) {
	var out []usher.GroupMember
	cursor := ""
	for {
		page, err := s.access.GroupMembers(ctx, a, id, cursor, access.MaxLimit)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

func (s *server) writeGroup(w http.ResponseWriter, r *http.Request, a usher.Actor, status int, id int64) {
	g, err := s.access.Group(r.Context(), a, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var members []usher.GroupMember
	with := status != http.StatusOK || wantMembers(r)
	if with {
		if members, err = s.allMembers(r.Context(), a, id); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	res := groupResource(g.Group, members, with, s.baseURL(r))
	if status == http.StatusCreated {
		w.Header().Set("Location", res["meta"].(map[string]any)["location"].(string))
	}
	s.write(w, r, status, res)
}

func (s *server) getGroup(w http.ResponseWriter, r *http.Request) {
	a, err := provisioner(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := groupID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeGroup(w, r, a, http.StatusOK, id)
}

// listGroups lets the database filter and page the groups.
func (s *server) listGroups(w http.ResponseWriter, r *http.Request) {
	a, err := provisioner(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	start, count, err := paging(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := groupMatch(r.URL.Query().Get("filter"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, total, err := s.access.ProvisionedGroups(r.Context(), a, m, start-1, count)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := listResponse{Schemas: []string{msgList}, TotalResults: total, StartIndex: start, ItemsPerPage: len(page), Resources: make([]any, len(page))}
	with, base := wantMembers(r), s.baseURL(r)
	for i, g := range page {
		var members []usher.GroupMember
		if with {
			if members, err = s.allMembers(r.Context(), a, g.ID); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		out.Resources[i] = groupResource(g, members, with, base)
	}
	s.write(w, r, http.StatusOK, out)
}

// groupBody is what a POST or PUT of a Group says.
type groupBody struct {
	name, externalID *string
	members          []int64
	hasMembers       bool
}

func readGroup(body map[string]any) (groupBody, error) {
	var out groupBody
	var p usher.Problems
	res := normalize(body).(map[string]any)
	if v, ok := res["displayName"]; ok && v != nil {
		if s, ok := v.(string); ok {
			out.name = &s
		} else {
			p.Add("displayName", "must be a string")
		}
	}
	if out.name == nil {
		p.Add("displayName", "is required")
	}
	if v, ok := res["externalId"]; ok && v != nil {
		if s, ok := v.(string); ok {
			out.externalID = &s
		} else {
			p.Add("externalId", "must be a string")
		}
	}
	if v, ok := res["members"]; ok && v != nil {
		out.hasMembers = true
		ids, err := memberIDs(v)
		if err != nil {
			return out, err
		}
		out.members = ids
	}
	return out, p.Err()
}

// memberIDs reads [{"value":"<user id>"}, …], or one such object.
func memberIDs(v any) ([]int64, error) {
	list, ok := v.([]any)
	if !ok {
		if m, isObj := v.(map[string]any); isObj {
			list = []any{m}
		} else {
			return nil, badRequest("invalidValue", "members must be a list of {\"value\": \"<user id>\"}")
		}
	}
	ids := make([]int64, 0, len(list))
	for i, e := range list {
		m, _ := e.(map[string]any)
		raw, _ := lookup(m, "value")
		id, err := strconv.ParseInt(strings.TrimSpace(fmt.Sprint(raw)), 10, 64)
		if err != nil || id <= 0 {
			return nil, badRequest("invalidValue", "members[%d].value: %v is not a user id", i, raw)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// createGroup creates a synced group with its members, in one transaction:
// a failed create leaves nothing.
func (s *server) createGroup(w http.ResponseWriter, r *http.Request) {
	a, err := provisioner(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.decode(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := readGroup(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.access.CreateGroupWithMembers(r.Context(), a, access.GroupInput{Name: in.name, ExternalID: in.externalID}, in.members)
	if err != nil {
		s.writeError(w, r, uniqueness(err))
		return
	}
	s.writeGroup(w, r, a, http.StatusCreated, g.ID)
}

// replaceGroup is PUT: name, externalId and exactly the members sent.
func (s *server) replaceGroup(w http.ResponseWriter, r *http.Request) {
	a, err := provisioner(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := groupID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.decode(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := readGroup(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ext := ""
	if in.externalID != nil {
		ext = *in.externalID
	}
	// One transaction: a PUT whose members are refused keeps the old name.
	ch := access.GroupChange{GroupInput: access.GroupInput{Name: in.name, ExternalID: &ext}, ReplaceMembers: true, Members: in.members}
	if _, err := s.access.ChangeGroup(r.Context(), a, id, ch); err != nil {
		s.writeError(w, r, uniqueness(err))
		return
	}
	s.writeGroup(w, r, a, http.StatusOK, id)
}

// groupPatch is what a PATCH of a group comes to.
type groupPatch struct {
	name, externalID *string
	set              []int64 // members replaced by these, when replace is set
	replace          bool
	add, remove      []int64
}

func (gp *groupPatch) addMembers(ids []int64) {
	for _, id := range ids {
		gp.remove = slices.DeleteFunc(gp.remove, func(x int64) bool { return x == id })
		if gp.replace {
			if !slices.Contains(gp.set, id) {
				gp.set = append(gp.set, id)
			}
		} else if !slices.Contains(gp.add, id) {
			gp.add = append(gp.add, id)
		}
	}
}

func (gp *groupPatch) removeMembers(ids []int64) {
	for _, id := range ids {
		gp.add = slices.DeleteFunc(gp.add, func(x int64) bool { return x == id })
		if gp.replace {
			gp.set = slices.DeleteFunc(gp.set, func(x int64) bool { return x == id })
		} else if !slices.Contains(gp.remove, id) {
			gp.remove = append(gp.remove, id)
		}
	}
}

func (gp *groupPatch) replaceMembers(ids []int64) {
	gp.replace, gp.set, gp.add, gp.remove = true, slices.Clone(ids), nil, nil
}

// readGroupPatch folds the operations, in order, into one change.
func readGroupPatch(ops []patchOp) (groupPatch, error) {
	var gp groupPatch
	for _, o := range ops {
		if o.path == "" {
			// Okta: {"op":"replace","value":{"id":"…","displayName":"…"}}.
			m, ok := o.value.(map[string]any)
			if !ok {
				return gp, badRequest("invalidValue", "%s without a path needs an object value", o.op)
			}
			for k, v := range m {
				if strings.EqualFold(k, "id") || strings.EqualFold(k, "schemas") || strings.EqualFold(k, "meta") {
					continue
				}
				if err := gp.apply(o.op, k, v); err != nil {
					return gp, err
				}
			}
			continue
		}
		if err := gp.apply(o.op, o.path, o.value); err != nil {
			return gp, err
		}
	}
	return gp, nil
}

func (gp *groupPatch) apply(op, rawPath string, value any) error {
	p, err := filter.ParsePath([]byte(rawPath))
	if err != nil {
		return badRequest("invalidPath", "path %q: %v", rawPath, err)
	}
	if uri := p.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, SchemaGroup) {
		return badRequest("invalidPath", "path %q: unknown schema %s", rawPath, uri)
	}
	attr := strings.ToLower(p.AttributePath.AttributeName)
	str := func() (*string, error) {
		if op == "remove" {
			s := ""
			return &s, nil
		}
		s, ok := value.(string)
		if !ok {
			return nil, badRequest("invalidValue", "%s must be a string", rawPath)
		}
		return &s, nil
	}
	switch {
	case attr == "displayname" && p.ValueExpression == nil && p.AttributePath.SubAttribute == nil:
		if op == "remove" {
			return badRequest("mutability", "displayName is required")
		}
		gp.name, err = str()
	case attr == "externalid" && p.ValueExpression == nil && p.AttributePath.SubAttribute == nil:
		gp.externalID, err = str()
	case attr == "members" && p.ValueExpression != nil:
		// members[value eq "<id>"], as Entra ID removes a member.
		if op != "remove" {
			return badRequest("invalidPath", "path %q: only remove takes a filter on members", rawPath)
		}
		ids, ferr := filteredIDs(p.ValueExpression)
		if ferr != nil {
			return ferr
		}
		gp.removeMembers(ids)
	case attr == "members" && p.AttributePath.SubAttribute == nil:
		var ids []int64
		if value != nil {
			if ids, err = memberIDs(value); err != nil {
				return err
			}
		}
		switch {
		case op == "add":
			gp.addMembers(ids)
		case op == "replace":
			gp.replaceMembers(ids)
		case value == nil: // remove without a value: every member
			gp.replaceMembers(nil)
		default: // Okta and Entra ID remove with a value listing the members
			gp.removeMembers(ids)
		}
	default:
		return badRequest("invalidPath", "path %q: a group has displayName, externalId and members", rawPath)
	}
	return err
}

// filteredIDs reads the user ids of value eq "<id>" terms joined by or.
func filteredIDs(e filter.Expression) ([]int64, error) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if x.Operator != filter.OR {
			break
		}
		l, err := filteredIDs(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := filteredIDs(x.Right)
		return append(l, r...), err
	case *filter.AttributeExpression:
		if strings.EqualFold(x.AttributePath.AttributeName, "value") && x.Operator == filter.EQ {
			id, err := strconv.ParseInt(strings.TrimSpace(fmt.Sprint(x.CompareValue)), 10, 64)
			if err != nil || id <= 0 {
				return nil, badRequest("invalidValue", "%v is not a user id", x.CompareValue)
			}
			return []int64{id}, nil
		}
	}
	return nil, badRequest("invalidFilter", "members can be selected by value eq \"<user id>\" (joined by or), not %v", e)
}

func (s *server) patchGroup(w http.ResponseWriter, r *http.Request) {
	a, err := provisioner(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := groupID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.decode(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ops, err := patchOps(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	gp, err := readGroupPatch(ops)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Every operation of one PATCH is applied in one transaction, as RFC
	// 7644 §3.5.2 asks: if one fails, the group is left as it was.
	ch := access.GroupChange{GroupInput: access.GroupInput{Name: gp.name, ExternalID: gp.externalID},
		ReplaceMembers: gp.replace, Members: gp.set, Add: gp.add, Remove: gp.remove}
	if _, err := s.access.ChangeGroup(r.Context(), a, id, ch); err != nil {
		s.writeError(w, r, uniqueness(err))
		return
	}
	// RFC 7644 §3.5.2 lets a PATCH answer 204 without the resource, which
	// is what Entra ID and Okta expect. Writing the group back would read
	// every member on each batch of a large group's provisioning, so it is
	// written only to a client that asks for attributes.
	q := r.URL.Query()
	if !q.Has("attributes") && !q.Has("excludedAttributes") {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.writeGroup(w, r, a, http.StatusOK, id)
}

func (s *server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	a, err := provisioner(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := groupID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.access.DeleteGroup(r.Context(), a, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// groupMatch translates a filter on Groups into the access service's
// terms, for the database to apply: displayName (without case), externalId
// and id (with case), with eq, ne, co, sw, ew, pr, and, or, not.
func groupMatch(raw string) (access.UserMatch, error) {
	if strings.TrimSpace(raw) == "" {
		return access.UserMatch{}, nil
	}
	e, err := filter.ParseFilter([]byte(raw))
	if err != nil {
		return access.UserMatch{}, badRequest("invalidFilter", "filter %q: %v", raw, err)
	}
	return groupTerm(e)
}

func groupTerm(e filter.Expression) (access.UserMatch, error) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := groupTerm(x.Left)
		if err != nil {
			return l, err
		}
		r, err := groupTerm(x.Right)
		if err != nil {
			return r, err
		}
		return access.UserMatch{Op: strings.ToLower(string(x.Operator)), Terms: []access.UserMatch{l, r}}, nil
	case *filter.NotExpression:
		t, err := groupTerm(x.Expression)
		return access.UserMatch{Op: access.MatchNot, Terms: []access.UserMatch{t}}, err
	case *filter.AttributeExpression:
		p := x.AttributePath
		if uri := p.URI(); uri != "" && !strings.EqualFold(uri, SchemaGroup) {
			return access.UserMatch{}, badRequest("invalidFilter", "cannot filter on %s", p)
		}
		var attr access.UserAttr
		switch strings.ToLower(p.AttributeName) {
		case "displayname":
			attr = access.AttrDisplayName
		case "externalid":
			attr = access.AttrExternalID
		case "id":
			attr = access.AttrID
		}
		if attr == "" || p.SubAttribute != nil {
			return access.UserMatch{}, badRequest("invalidFilter", "cannot filter on %s; Usher filters groups on displayName, externalId and id", p)
		}
		o := strings.ToLower(string(x.Operator))
		switch o {
		case access.MatchPr:
			return access.UserMatch{Op: o, Attr: attr}, nil
		case access.MatchEq, access.MatchNe, access.MatchCo, access.MatchSw, access.MatchEw:
			want, ok := x.CompareValue.(string)
			if !ok {
				return access.UserMatch{}, badRequest("invalidFilter", "%s %s needs a string, not %v", p, x.Operator, x.CompareValue)
			}
			return access.UserMatch{Op: o, Attr: attr, Value: want}, nil
		}
		return access.UserMatch{}, badRequest("invalidFilter", "operator %s is not supported on %s", x.Operator, p)
	}
	return access.UserMatch{}, badRequest("invalidFilter", "unsupported filter %v", e)
}
