package scim

import (
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// patchOp is one operation of a PATCH request (RFC 7644 §3.5.2).
type patchOp struct {
	op    string // add, replace or remove, lower-cased: Entra ID sends "Replace"
	path  string // "" when the value names the attributes
	value any
}

// patchOps reads the Operations of a PatchOp body.
func patchOps(body map[string]any) ([]patchOp, error) {
	raw, _ := lookup(body, "Operations")
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, badRequest("invalidSyntax", "Operations must list at least one operation")
	}
	ops := make([]patchOp, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, badRequest("invalidSyntax", "Operations[%d] is not an object", i)
		}
		opv, _ := lookup(m, "op")
		op, _ := opv.(string)
		op = strings.ToLower(op)
		if op != "add" && op != "replace" && op != "remove" {
			return nil, badRequest("invalidSyntax", "Operations[%d].op must be add, replace or remove, not %q", i, opv)
		}
		pv, _ := lookup(m, "path")
		path, _ := pv.(string)
		value, hasValue := lookup(m, "value")
		if op != "remove" && !hasValue {
			return nil, badRequest("invalidValue", "Operations[%d] (%s) needs a value", i, op)
		}
		if op == "remove" && path == "" {
			return nil, badRequest("noTarget", "Operations[%d]: remove needs a path", i)
		}
		ops = append(ops, patchOp{op: op, path: path, value: normalize(value)})
	}
	return ops, nil
}

// applyPatch applies ops to res, a normalized resource, in order.
func applyPatch(res map[string]any, ops []patchOp) error {
	for _, o := range ops {
		if o.path == "" {
			// Okta and Entra ID send {"op":"replace","value":{"active":false}}:
			// each key is a path of its own (even a dotted or URN one).
			m, ok := o.value.(map[string]any)
			if !ok {
				return badRequest("invalidValue", "%s without a path needs an object value", o.op)
			}
			for k, v := range m {
				if err := applyPath(res, o.op, k, v); err != nil {
					return err
				}
			}
			continue
		}
		if err := applyPath(res, o.op, o.path, o.value); err != nil {
			return err
		}
	}
	return nil
}

func applyPath(res map[string]any, op, rawPath string, value any) error {
	var p filter.Path
	if strings.EqualFold(rawPath, SchemaEnterprise) {
		// The whole extension: a path the grammar does not take.
		p = filter.Path{AttributePath: filter.AttributePath{AttributeName: SchemaEnterprise}}
	} else {
		var err error
		p, err = filter.ParsePath([]byte(rawPath))
		if err != nil {
			return badRequest("invalidPath", "path %q: %v", rawPath, err)
		}
	}
	container := res
	switch uri := p.AttributePath.URI(); {
	case uri == "" || strings.EqualFold(uri, SchemaUser) || strings.EqualFold(uri, SchemaGroup):
	case strings.EqualFold(uri, SchemaEnterprise):
		ext, ok := res[SchemaEnterprise].(map[string]any)
		if !ok {
			if op == "remove" {
				return nil
			}
			ext = map[string]any{}
			res[SchemaEnterprise] = ext
		}
		container = ext
	default:
		return badRequest("invalidPath", "path %q: unknown schema %s", rawPath, uri)
	}
	attr := canonicalName(p.AttributePath.AttributeName)
	sub := p.AttributePath.SubAttributeName()
	if p.ValueExpression != nil {
		return applyFiltered(container, op, attr, p.ValueExpression, p.SubAttributeName(), value, rawPath)
	}
	if sub != "" {
		sub = canonicalName(sub)
		m, ok := container[attr].(map[string]any)
		if !ok {
			if op == "remove" {
				return nil
			}
			m = map[string]any{}
			container[attr] = m
		}
		if op == "remove" {
			delete(m, sub)
		} else {
			m[sub] = value
		}
		return nil
	}
	switch op {
	case "remove":
		delete(container, attr)
	case "add":
		cur := container[attr]
		switch c := cur.(type) {
		case []any:
			if add, ok := value.([]any); ok {
				container[attr] = append(c, add...)
				return nil
			}
			container[attr] = append(c, value)
		case map[string]any:
			if add, ok := value.(map[string]any); ok {
				for k, v := range add {
					c[k] = v
				}
				return nil
			}
			container[attr] = value
		default:
			container[attr] = value
		}
	case "replace":
		// A complex value replaces the sub-attributes it names and keeps
		// the others (RFC 7644 §3.5.2.3).
		if c, ok := container[attr].(map[string]any); ok {
			if add, ok := value.(map[string]any); ok {
				for k, v := range add {
					c[k] = v
				}
				return nil
			}
		}
		container[attr] = value
	}
	return nil
}

// applyFiltered applies an operation to the elements of a multi-valued
// attribute that a value filter selects, e.g. emails[type eq "work"].value.
// A replace or add that selects nothing creates the element when the filter
// says what it is (type eq "work"): Entra ID relies on that.
func applyFiltered(container map[string]any, op, attr string, vf filter.Expression, sub string, value any, rawPath string) error {
	list, _ := container[attr].([]any)
	sub = canonicalName(sub)
	hit := false
	kept := list[:0:0]
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			kept = append(kept, e)
			continue
		}
		ok, err := matches(vf, m)
		if err != nil {
			return err
		}
		if !ok {
			kept = append(kept, e)
			continue
		}
		hit = true
		switch {
		case op == "remove" && sub == "":
			continue // drop the element
		case op == "remove":
			delete(m, sub)
		case sub != "":
			m[sub] = value
		default:
			if nv, ok := value.(map[string]any); ok {
				for k, v := range nv {
					m[k] = v
				}
			}
		}
		kept = append(kept, m)
	}
	if !hit && op != "remove" {
		elem := map[string]any{}
		if x, ok := vf.(*filter.AttributeExpression); ok && x.Operator == filter.EQ && x.AttributePath.SubAttribute == nil {
			elem[canonicalName(x.AttributePath.AttributeName)] = x.CompareValue
		} else {
			return badRequest("noTarget", "path %q selects nothing", rawPath)
		}
		if sub != "" {
			elem[sub] = value
		} else if nv, ok := value.(map[string]any); ok {
			for k, v := range nv {
				elem[k] = v
			}
		}
		kept = append(kept, elem)
	}
	container[attr] = kept
	return nil
}
