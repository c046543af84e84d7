package scim

import (
	"fmt"
	"strings"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/usherhq/usher/internal/access"
)

// userMatch translates a SCIM filter on Users into the access service's
// terms. Usher filters on userName, externalId, displayName and
// emails(.value), with every operator but the orderings.
func userMatch(raw string) (access.UserMatch, error) {
	if strings.TrimSpace(raw) == "" {
		return access.UserMatch{}, nil
	}
	if v, ok := userNameEq(raw); ok {
		return access.UserMatch{Op: access.MatchEq, Attr: access.AttrUserName, Value: v}, nil
	}
	e, err := filter.ParseFilter([]byte(raw))
	if err != nil {
		return access.UserMatch{}, badRequest("invalidFilter", "filter %q: %v", raw, err)
	}
	return translate(e)
}

// userNameEq recognises the filter a provisioning client sends before it
// creates each user, userName eq "…", as the parser reads it: parsing took
// a fifth of the CPU of provisioning. Any other spelling, and any value
// with an escape or a character outside printable ASCII, goes to the parser.
func userNameEq(raw string) (string, bool) {
	const prefix = `userName eq "`
	if len(raw) <= len(prefix) || raw[:len(prefix)] != prefix || raw[len(raw)-1] != '"' {
		return "", false
	}
	v := raw[len(prefix) : len(raw)-1]
	for i := range len(v) {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return v, true
}

func translate(e filter.Expression) (access.UserMatch, error) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := translate(x.Left)
		if err != nil {
			return l, err
		}
		r, err := translate(x.Right)
		if err != nil {
			return r, err
		}
		return access.UserMatch{Op: strings.ToLower(string(x.Operator)), Terms: []access.UserMatch{l, r}}, nil
	case *filter.NotExpression:
		t, err := translate(x.Expression)
		return access.UserMatch{Op: access.MatchNot, Terms: []access.UserMatch{t}}, err
	case *filter.ValuePath:
		// emails[value eq "…"] is emails.value eq "…"; other sub-attributes
		// of emails (type, primary) are not kept apart.
		if !strings.EqualFold(x.AttributePath.AttributeName, "emails") {
			return access.UserMatch{}, badRequest("invalidFilter", "cannot filter on %s", x.AttributePath)
		}
		return translateEmails(x.ValueFilter)
	case *filter.AttributeExpression:
		return compare(x.AttributePath, x.Operator, x.CompareValue)
	}
	return access.UserMatch{}, badRequest("invalidFilter", "unsupported filter %v", e)
}

func translateEmails(e filter.Expression) (access.UserMatch, error) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		// Usher keeps one email, the work and primary one: a filter on
		// type or primary is true of it or of nothing.
		switch sub := strings.ToLower(x.AttributePath.AttributeName); {
		case sub == "type" && x.Operator == filter.EQ:
			return emailIs(strings.EqualFold(fmt.Sprint(x.CompareValue), "work")), nil
		case sub == "primary" && x.Operator == filter.EQ:
			return emailIs(x.CompareValue == true), nil
		case sub != "value":
			return access.UserMatch{}, badRequest("invalidFilter", "emails can be filtered on value, type and primary, not %s", x.AttributePath)
		}
		return compare(filter.AttributePath{AttributeName: "emails"}, x.Operator, x.CompareValue)
	case *filter.LogicalExpression:
		l, err := translateEmails(x.Left)
		if err != nil {
			return l, err
		}
		r, err := translateEmails(x.Right)
		return access.UserMatch{Op: strings.ToLower(string(x.Operator)), Terms: []access.UserMatch{l, r}}, err
	}
	return access.UserMatch{}, badRequest("invalidFilter", "unsupported filter on emails: %v", e)
}

// emailIs matches every user (an email is required) or none.
func emailIs(every bool) access.UserMatch {
	m := access.UserMatch{Op: access.MatchPr, Attr: access.AttrEmail}
	if every {
		return m
	}
	return access.UserMatch{Op: access.MatchNot, Terms: []access.UserMatch{m}}
}

func compare(p filter.AttributePath, op filter.CompareOperator, value any) (access.UserMatch, error) {
	if uri := p.URI(); uri != "" && !strings.EqualFold(uri, SchemaUser) {
		return access.UserMatch{}, badRequest("invalidFilter", "cannot filter on %s", p)
	}
	var attr access.UserAttr
	name, sub := strings.ToLower(p.AttributeName), strings.ToLower(p.SubAttributeName())
	switch {
	case name == "username" && sub == "":
		attr = access.AttrUserName
	case name == "externalid" && sub == "":
		attr = access.AttrExternalID
	case name == "displayname" && sub == "":
		attr = access.AttrDisplayName
	case name == "emails" && (sub == "" || sub == "value"):
		attr = access.AttrEmail
	default:
		return access.UserMatch{}, badRequest("invalidFilter", "cannot filter on %s; Usher filters on userName, externalId, displayName and emails.value", p)
	}
	o := strings.ToLower(string(op))
	switch o {
	case access.MatchEq, access.MatchNe, access.MatchCo, access.MatchSw, access.MatchEw:
		s, ok := value.(string)
		if !ok {
			return access.UserMatch{}, badRequest("invalidFilter", "%s %s needs a string, not %v", p, o, value)
		}
		return access.UserMatch{Op: o, Attr: attr, Value: s}, nil
	case access.MatchPr:
		return access.UserMatch{Op: o, Attr: attr}, nil
	}
	return access.UserMatch{}, badRequest("invalidFilter", "operator %s is not supported on %s", o, p)
}

// matches evaluates a value filter (the part in brackets of a PATCH path
// such as emails[type eq "work"]) against one element of a multi-valued
// attribute. Strings compare without case, as RFC 7643 makes most
// sub-attributes (type, value of emails) caseExact false.
func matches(e filter.Expression, elem map[string]any) (bool, error) {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		l, err := matches(x.Left, elem)
		if err != nil {
			return false, err
		}
		r, err := matches(x.Right, elem)
		if err != nil {
			return false, err
		}
		if x.Operator == filter.AND {
			return l && r, nil
		}
		return l || r, nil
	case *filter.NotExpression:
		v, err := matches(x.Expression, elem)
		return !v, err
	case *filter.AttributeExpression:
		got, present := lookup(elem, x.AttributePath.AttributeName)
		if sub := x.AttributePath.SubAttributeName(); sub != "" {
			m, _ := got.(map[string]any)
			got, present = lookup(m, sub)
		}
		if x.Operator == filter.PR {
			return present && got != nil && got != "", nil
		}
		a, b := strings.ToLower(fmt.Sprint(got)), strings.ToLower(fmt.Sprint(x.CompareValue))
		switch x.Operator {
		case filter.EQ:
			return present && a == b, nil
		case filter.NE:
			return !present || a != b, nil
		case filter.CO:
			return present && strings.Contains(a, b), nil
		case filter.SW:
			return present && strings.HasPrefix(a, b), nil
		case filter.EW:
			return present && strings.HasSuffix(a, b), nil
		}
		return false, badRequest("invalidFilter", "operator %s is not supported in paths", x.Operator)
	}
	return false, badRequest("invalidPath", "unsupported value filter %v", e)
}

// lookup finds an attribute of m without regard to the case of its name.
func lookup(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}
