package scim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// A resource is handled as the generic JSON object a client sends, so that
// PATCH can address any attribute; Usher keeps the attributes it knows in
// its own columns and the rest in the user's profile.

// managed are the User attributes Usher keeps itself rather than in the
// profile (lower-cased: SCIM attribute names ignore case).
var managed = map[string]bool{
	"schemas": true, "id": true, "externalid": true, "username": true, "displayname": true,
	"active": true, "meta": true, "password": true,
}

// canonical spells the attribute names Usher reads the way RFC 7643 does,
// so that a client's "UserName" or "Emails" finds them.
var canonical = map[string]string{}

func init() {
	for _, n := range []string{
		"schemas", "id", "externalId", "userName", "displayName", "active", "meta", "password",
		"name", "emails", "nickName", "profileUrl", "title", "userType", "preferredLanguage",
		"locale", "timezone", "phoneNumbers", "ims", "photos", "addresses", "groups",
		"entitlements", "roles", "x509Certificates",
		// sub-attributes
		"value", "type", "primary", "display", "formatted", "familyName", "givenName",
		"middleName", "honorificPrefix", "honorificSuffix", "streetAddress", "locality",
		"region", "postalCode", "country", "$ref",
		// enterprise extension
		"employeeNumber", "costCenter", "organization", "division", "department", "manager",
		// groups
		"members",
	} {
		canonical[strings.ToLower(n)] = n
	}
	canonical[strings.ToLower(SchemaEnterprise)] = SchemaEnterprise
}

func canonicalName(n string) string {
	if c, ok := canonical[strings.ToLower(n)]; ok {
		return c
	}
	return n
}

// normalize spells the known attribute names of v canonically, at every depth.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[canonicalName(k)] = normalize(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
		return x
	}
	return v
}

// userResource is the SCIM representation of a user.
func userResource(u access.ProvisionedUser, base string) map[string]any {
	res := map[string]any{}
	if len(u.Profile) > 0 {
		_ = json.Unmarshal(u.Profile, &res) // stored by us as an object
	}
	id := strconv.FormatInt(u.ID, 10)
	schemas := []string{SchemaUser}
	if _, ok := res[SchemaEnterprise]; ok {
		schemas = append(schemas, SchemaEnterprise)
	}
	res["schemas"] = schemas
	res["id"] = id
	if u.ExternalID != "" {
		res["externalId"] = u.ExternalID
	}
	res["userName"] = u.UserName
	res["displayName"] = u.Name
	res["active"] = u.Status == usher.UserActive
	if primaryEmail(res["emails"]) != u.Email { // none sent, or changed in Usher since
		res["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	if _, ok := res["name"]; !ok {
		res["name"] = map[string]any{"formatted": u.Name}
	}
	res["meta"] = map[string]any{
		"resourceType": "User",
		"created":      u.CreatedAt.UTC().Format(time.RFC3339Nano),
		"lastModified": u.UpdatedAt.UTC().Format(time.RFC3339Nano),
		"location":     base + "/Users/" + id,
	}
	return res
}

// identityOf reads a user resource (normalized) into what Usher keeps.
// Attributes with a wrong type are reported, all at once.
func identityOf(res map[string]any) (access.Identity, error) {
	var p usher.Problems
	in := access.Identity{Active: true}
	str := func(name string) string {
		v, ok := res[name]
		if !ok || v == nil {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			p.Addf(name, "must be a string")
		}
		return s
	}
	in.UserName = str("userName")
	in.ExternalID = str("externalId")
	in.Name = str("displayName")
	if v, ok := res["active"]; ok && v != nil {
		b, err := boolOf(v)
		if err != nil {
			p.Add("active", err.Error())
		}
		in.Active = b
	}
	if n, ok := res["name"].(map[string]any); ok && in.Name == "" {
		if f, _ := n["formatted"].(string); f != "" {
			in.Name = f
		} else {
			g, _ := n["givenName"].(string)
			f, _ := n["familyName"].(string)
			in.Name = strings.TrimSpace(g + " " + f)
		}
	}
	in.Email = primaryEmail(res["emails"])
	profile := map[string]any{}
	for k, v := range res {
		if !managed[strings.ToLower(k)] && v != nil {
			profile[k] = v
		}
	}
	if len(profile) > 0 {
		b, err := json.Marshal(profile)
		if err != nil {
			return in, fmt.Errorf("profile: %w", err)
		}
		in.Profile = b
	}
	return in, p.Err()
}

// boolOf reads a boolean as JSON true/false or, as Entra ID sends it, the
// strings "True" and "False" in any case.
func boolOf(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(x))); err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("must be true or false, not %v", v)
}

// primaryEmail picks the email Usher keeps: the primary one, else the work
// one, else the first.
func primaryEmail(v any) string {
	list, _ := v.([]any)
	var first, work string
	for _, e := range list {
		m, _ := e.(map[string]any)
		val, _ := m["value"].(string)
		if val == "" {
			continue
		}
		if p, _ := boolOf(m["primary"]); p {
			return val
		}
		if t, _ := m["type"].(string); strings.EqualFold(t, "work") && work == "" {
			work = val
		}
		if first == "" {
			first = val
		}
	}
	if work != "" {
		return work
	}
	return first
}
