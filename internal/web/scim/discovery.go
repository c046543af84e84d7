package scim

import (
	"net/http"
	"strings"
)

// The discovery endpoints (RFC 7644 §4) tell clients what Usher supports.

func (s *server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, http.StatusOK, map[string]any{
		"schemas":          []string{schemaSPConfig},
		"documentationUri": "https://github.com/usherhq/usher/blob/main/docs/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": 200},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
			"description": "An Usher API token with the scim scope, sent as Authorization: Bearer <token>.",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.baseURL(r) + "/ServiceProviderConfig"},
	})
}

func resourceTypeList(base string) []map[string]any {
	return []map[string]any{{
		"schemas": []string{schemaResType}, "id": "User", "name": "User", "endpoint": "/Users",
		"description": "A person of the account", "schema": SchemaUser,
		"schemaExtensions": []any{map[string]any{"schema": SchemaEnterprise, "required": false}},
		"meta":             map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/User"},
	}}
}

func (s *server) resourceTypes(w http.ResponseWriter, r *http.Request) {
	list := resourceTypeList(s.baseURL(r))
	res := make([]any, len(list))
	for i, t := range list {
		res[i] = t
	}
	s.write(w, r, http.StatusOK, listResponse{Schemas: []string{msgList}, TotalResults: len(res), StartIndex: 1, ItemsPerPage: len(res), Resources: res})
}

func (s *server) resourceType(w http.ResponseWriter, r *http.Request) {
	for _, t := range resourceTypeList(s.baseURL(r)) {
		if strings.EqualFold(t["id"].(string), r.PathValue("name")) {
			s.write(w, r, http.StatusOK, t)
			return
		}
	}
	s.writeError(w, r, &scimError{status: http.StatusNotFound, detail: "no resource type " + r.PathValue("name")})
}

// attr describes one attribute (RFC 7643 §7).
func attr(name, typ string, opts ...func(map[string]any)) map[string]any {
	a := map[string]any{
		"name": name, "type": typ, "multiValued": false, "required": false, "caseExact": false,
		"mutability": "readWrite", "returned": "default", "uniqueness": "none",
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

func required(a map[string]any)  { a["required"] = true }
func multi(a map[string]any)     { a["multiValued"] = true }
func caseExact(a map[string]any) { a["caseExact"] = true }
func readOnly(a map[string]any)  { a["mutability"] = "readOnly" }
func unique(a map[string]any)    { a["uniqueness"] = "server" }
func subs(list ...map[string]any) func(map[string]any) {
	return func(a map[string]any) { a["subAttributes"] = list }
}

func schemaList(base string) []map[string]any {
	str := func(n string, o ...func(map[string]any)) map[string]any { return attr(n, "string", o...) }
	multiValued := func(n string, extra ...map[string]any) map[string]any {
		s := append([]map[string]any{str("value"), str("display"), str("type"), attr("primary", "boolean")}, extra...)
		return attr(n, "complex", multi, subs(s...))
	}
	user := map[string]any{
		"schemas": []string{schemaSchema}, "id": SchemaUser, "name": "User", "description": "User Account",
		"attributes": []any{
			str("id", caseExact, readOnly, unique),
			str("externalId", caseExact),
			str("userName", required, unique),
			attr("name", "complex", subs(str("formatted"), str("familyName"), str("givenName"), str("middleName"), str("honorificPrefix"), str("honorificSuffix"))),
			str("displayName"), str("nickName"), str("title"), str("userType"), str("preferredLanguage"), str("locale"), str("timezone"),
			attr("active", "boolean"),
			multiValued("emails"), multiValued("phoneNumbers"),
			attr("addresses", "complex", multi, subs(str("formatted"), str("streetAddress"), str("locality"), str("region"), str("postalCode"), str("country"), str("type"), attr("primary", "boolean"))),
		},
		"meta": map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + SchemaUser},
	}
	enterprise := map[string]any{
		"schemas": []string{schemaSchema}, "id": SchemaEnterprise, "name": "EnterpriseUser", "description": "Enterprise User",
		"attributes": []any{
			str("employeeNumber"), str("costCenter"), str("organization"), str("division"), str("department"),
			attr("manager", "complex", subs(str("value"), str("$ref"), str("displayName"))),
		},
		"meta": map[string]any{"resourceType": "Schema", "location": base + "/Schemas/" + SchemaEnterprise},
	}
	return []map[string]any{user, enterprise}
}

func (s *server) schemas(w http.ResponseWriter, r *http.Request) {
	list := schemaList(s.baseURL(r))
	res := make([]any, len(list))
	for i, t := range list {
		res[i] = t
	}
	s.write(w, r, http.StatusOK, listResponse{Schemas: []string{msgList}, TotalResults: len(res), StartIndex: 1, ItemsPerPage: len(res), Resources: res})
}

func (s *server) schema(w http.ResponseWriter, r *http.Request) {
	for _, t := range schemaList(s.baseURL(r)) {
		if strings.EqualFold(t["id"].(string), r.PathValue("id")) {
			s.write(w, r, http.StatusOK, t)
			return
		}
	}
	s.writeError(w, r, &scimError{status: http.StatusNotFound, detail: "no schema " + r.PathValue("id")})
}
