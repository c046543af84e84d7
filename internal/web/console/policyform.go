package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// The reclaim policy form: primary admins create, change, preview and
// delete policies; secondary admins read them (the same fields, disabled).
// The reclaim service decides who may do what and what is valid; the form
// only turns its fields into a reclaim.Input and shows each problem beside
// the field it is about.

// choice is a checkbox or radio button.
type choice struct {
	Value, Label string
	Checked      bool
}

// ruleForm is the form's part for one kind of inactive seat.
type ruleForm struct {
	Enabled bool
	Ranges  []option // "" is the policy's range
}

type policyForm struct {
	ID           int64 // 0 for a new policy
	CanManage    bool
	Name         string
	Enabled      bool
	ScopeKind    string
	Subs         []choice
	Products     []choice
	Ranges       []option // presets, and "days" for RangeDays
	RangeDays    string
	NeverUsed    ruleForm
	StoppedUsing ruleForm
	Modes        []choice
	GraceDays    string
	ExemptUsers  string // emails, comma separated
	Groups       []choice
	Roles        []choice
	// Errs holds each field's problems, by the form's field name.
	Errs    map[string]string
	Preview *previewData
}

// formChoices are what the form offers: Standard and Premium contracts
// (Basic ones carry no usage data), their products, and the groups.
type formChoices struct {
	subs     []usher.Subscription
	products []usher.Product
	groups   []usher.Group
}

func (s *server) formChoices(r *http.Request, v viewer) (formChoices, error) {
	var out formChoices
	for cursor := ""; ; {
		pg, err := s.access.ListSubscriptions(r.Context(), v.Actor, cursor, access.MaxLimit)
		if err != nil {
			return out, err
		}
		for _, sub := range pg.Items {
			if !sub.Plan.HasUsageData() {
				continue
			}
			out.subs = append(out.subs, sub)
			if !slices.ContainsFunc(out.products, func(p usher.Product) bool { return p.Code == sub.Product.Code }) {
				out.products = append(out.products, sub.Product)
			}
		}
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
	}
	for cursor := ""; ; {
		pg, err := s.access.ListGroups(r.Context(), v.Actor, "", cursor, access.MaxLimit)
		if err != nil {
			return out, err
		}
		out.groups = append(out.groups, pg.Items...)
		if cursor = pg.NextCursor; cursor == "" {
			break
		}
	}
	return out, nil
}

var policyModes = []choice{
	{Value: string(reclaim.WarnThenReclaim), Label: "Warn, wait the grace period, then reclaim"},
	{Value: string(reclaim.ReclaimNow), Label: "Reclaim straight away, then tell the person"},
	{Value: string(reclaim.ReportOnly), Label: "Report only: change nothing"},
}

var exemptRoles = []usher.Role{usher.RolePrimaryAdmin, usher.RoleSecondaryAdmin, usher.RoleContractManager, usher.RoleSoftwareCoordinator}

// fill sets the form's choices from c and the policy's values.
func (f *policyForm) fill(c formChoices, p reclaim.Policy, emails []string) {
	f.Name, f.Enabled, f.ScopeKind = p.Name, p.Enabled, string(p.Scope.Kind)
	if f.ScopeKind == "" {
		f.ScopeKind = string(reclaim.ScopeSubscriptions)
	}
	f.Subs, f.Products, f.Groups, f.Roles, f.Modes = nil, nil, nil, nil, nil
	for _, sub := range c.subs {
		f.Subs = append(f.Subs, choice{Value: strconv.FormatInt(sub.ID, 10), Label: sub.Product.Name + " " + sub.ContractNumber + " (" + planName(sub.Plan) + ")",
			Checked: slices.Contains(p.Scope.SubscriptionIDs, sub.ID)})
	}
	for _, pr := range c.products {
		f.Products = append(f.Products, choice{Value: pr.Code, Label: pr.Name, Checked: slices.Contains(p.Scope.Products, pr.Code)})
	}
	f.Ranges, f.RangeDays = rangeOptions(string(p.Range), false)
	f.NeverUsed = ruleForm{Enabled: p.NeverUsed.Enabled}
	f.NeverUsed.Ranges, _ = rangeOptions(string(p.NeverUsed.Range), true)
	f.StoppedUsing = ruleForm{Enabled: p.StoppedUsing.Enabled}
	f.StoppedUsing.Ranges, _ = rangeOptions(string(p.StoppedUsing.Range), true)
	for _, m := range policyModes {
		m.Checked = m.Value == string(p.Mode)
		f.Modes = append(f.Modes, m)
	}
	f.GraceDays = strconv.Itoa(p.GraceDays)
	f.ExemptUsers = strings.Join(emails, ", ")
	for _, g := range c.groups {
		f.Groups = append(f.Groups, choice{Value: strconv.FormatInt(g.ID, 10), Label: g.Name, Checked: slices.Contains(p.Exemptions.Groups, g.ID)})
	}
	for _, r := range exemptRoles {
		f.Roles = append(f.Roles, choice{Value: string(r), Label: roleLabel(r), Checked: slices.Contains(p.Exemptions.Roles, r)})
	}
}

func roleLabel(r usher.Role) string {
	l := strings.ReplaceAll(string(r), "_", " ")
	return strings.ToUpper(l[:1]) + l[1:] + "s"
}

// rangeOptions lists the preset ranges with value selected; a number of
// days that is no preset selects "days" (the policy's range) or is added as
// an option of its own (a rule's, which the form offers only as presets).
func rangeOptions(value string, rule bool) ([]option, string) {
	var out []option
	if rule {
		out = append(out, option{Value: "", Label: "The policy's range", Selected: value == ""})
	}
	found := value == "" && rule
	for _, rg := range usage.Ranges {
		sel := string(rg) == value
		found = found || sel
		out = append(out, option{Value: string(rg), Label: rg.Label(), Selected: sel})
	}
	days := ""
	switch {
	case found:
	case rule:
		if rg, ok := usage.ParseRange(value); ok {
			out = append(out, option{Value: value, Label: rg.Label(), Selected: true})
		}
	case value != "":
		days = strings.TrimSuffix(value, "d")
	}
	if !rule {
		out = append(out, option{Value: "days", Label: "A number of days", Selected: days != ""})
	}
	return out, days
}

// input reads the posted form into a reclaim.Input. Problems the service
// cannot see (an email that is no user, grace days that are no number) come
// back apart, to be shown with the service's.
func (s *server) policyInput(r *http.Request, v viewer) (reclaim.Input, reclaim.Policy, []string, usher.Problems) {
	var p usher.Problems
	f := r.PostForm
	enabled := f.Get("enabled") != ""
	in := reclaim.Input{Name: f.Get("name"), Enabled: &enabled, Mode: reclaim.Mode(f.Get("mode")),
		Scope: reclaim.Scope{Kind: reclaim.ScopeKind(f.Get("scope_kind"))}, Exemptions: &reclaim.Exemptions{}}
	// What the form shows again if it is refused: the values as typed.
	shown := reclaim.Policy{Name: in.Name, Enabled: enabled, Mode: in.Mode, Scope: in.Scope,
		Exemptions: reclaim.Exemptions{Users: []int64{}, Groups: []int64{}, Roles: []usher.Role{}}}
	switch in.Scope.Kind {
	case reclaim.ScopeSubscriptions:
		for _, raw := range f["subscription_ids"] {
			if id, err := strconv.ParseInt(raw, 10, 64); err == nil {
				in.Scope.SubscriptionIDs = append(in.Scope.SubscriptionIDs, id)
			}
		}
	case reclaim.ScopeProducts:
		in.Scope.Products = f["products"]
	}
	// Both lists stay ticked on the page whichever kind is chosen.
	for _, raw := range f["subscription_ids"] {
		if id, err := strconv.ParseInt(raw, 10, 64); err == nil {
			shown.Scope.SubscriptionIDs = append(shown.Scope.SubscriptionIDs, id)
		}
	}
	shown.Scope.Products = f["products"]
	in.Range = f.Get("range")
	if in.Range == "days" {
		in.Range = strings.TrimSpace(f.Get("range_days")) + "d"
	}
	shown.Range = usage.Range(in.Range)
	rule := func(name string) *reclaim.Rule {
		return &reclaim.Rule{Enabled: f.Get(name) != "", Range: usage.Range(f.Get(name + "_range"))}
	}
	in.NeverUsed, in.StoppedUsing = rule("never_used"), rule("stopped_using")
	shown.NeverUsed, shown.StoppedUsing = *in.NeverUsed, *in.StoppedUsing
	grace, err := strconv.Atoi(strings.TrimSpace(f.Get("grace_days")))
	if err != nil {
		p.Add("grace_days", "must be a whole number of days from 0 to 365")
		grace = reclaim.DefaultGraceDays
	}
	in.GraceDays, shown.GraceDays = &grace, grace
	emails := splitDomains(f.Get("exempt_users"))
	for i, e := range emails {
		u, err := s.access.UserByEmail(r.Context(), v.Actor, e)
		if err != nil {
			p.Addf(fmt.Sprintf("exemptions.users[%d]", i), "there is no user %s", e)
			continue
		}
		in.Exemptions.Users = append(in.Exemptions.Users, u.ID)
	}
	for _, raw := range f["exempt_groups"] {
		if id, err := strconv.ParseInt(raw, 10, 64); err == nil {
			in.Exemptions.Groups = append(in.Exemptions.Groups, id)
		}
	}
	for _, raw := range f["exempt_roles"] {
		in.Exemptions.Roles = append(in.Exemptions.Roles, usher.Role(raw))
	}
	shown.Exemptions.Groups, shown.Exemptions.Roles = in.Exemptions.Groups, in.Exemptions.Roles
	return in, shown, emails, p
}

// formField names the form field a service problem is about.
func formField(field string) string {
	for _, x := range []struct{ prefix, name string }{
		{"name", "name"}, {"scope", "scope"}, {"range", "range"}, {"never_used", "never_used"}, {"stopped_using", "stopped_using"},
		{"mode", "mode"}, {"grace_days", "grace_days"}, {"exemptions.users", "exempt_users"}, {"exemptions.groups", "exempt_groups"},
		{"exemptions.roles", "exempt_roles"},
	} {
		if field == x.prefix || strings.HasPrefix(field, x.prefix+".") || strings.HasPrefix(field, x.prefix+"[") {
			return x.name
		}
	}
	return ""
}

// problems sorts err's problems and the form's own by field, for the page.
func problems(err error, own usher.Problems) (map[string]string, []string) {
	fields := append([]usher.FieldError(nil), own...)
	fields = append(fields, usher.ErrorFields(err)...)
	errs := map[string]string{}
	var lines []string
	for _, fe := range fields {
		name := formField(fe.Field)
		if prev := errs[name]; prev != "" {
			errs[name] = prev + "; " + fe.Reason
		} else {
			errs[name] = fe.Reason
		}
		lines = append(lines, fe.Field+": "+fe.Reason)
	}
	if err != nil && len(usher.ErrorFields(err)) == 0 {
		// A name taken already is a conflict without fields.
		if usher.ErrorCode(err) == usher.ECONFLICT {
			errs["name"] = errorText(err)
		}
		lines = append(lines, errorText(err))
	}
	return errs, lines
}

func (s *server) newPolicy(w http.ResponseWriter, r *http.Request, v viewer) {
	if !access.Can(v.Actor, access.ManageReclaim, 0) {
		s.renderError(w, r, &v, usher.Errorf(usher.EFORBIDDEN, "you may not manage reclaim policies"))
		return
	}
	c, err := s.formChoices(r, v)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	f := policyForm{CanManage: true}
	f.fill(c, reclaim.Policy{Enabled: true, Scope: reclaim.Scope{Kind: reclaim.ScopeSubscriptions}, Range: usage.Range3m,
		NeverUsed: reclaim.Rule{Enabled: true}, StoppedUsing: reclaim.Rule{Enabled: true}, Mode: reclaim.WarnThenReclaim,
		GraceDays: reclaim.DefaultGraceDays}, nil)
	s.render(w, r, http.StatusOK, "policy", page{Title: "New reclaim policy", Data: f})
}

func (s *server) policyPage(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	p, err := s.reclaim.Policy(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	c, err := s.formChoices(r, v)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	var emails []string
	for _, uid := range p.Exemptions.Users {
		if u, err := s.access.User(r.Context(), v.Actor, uid); err == nil {
			emails = append(emails, u.Email)
		}
	}
	f := policyForm{ID: p.ID, CanManage: access.Can(v.Actor, access.ManageReclaim, 0)}
	f.fill(c, p, emails)
	s.render(w, r, http.StatusOK, "policy", page{Title: "Reclaim policy: " + p.Name, Data: f})
}

// savePolicy creates (POST /reclaim-policies) or replaces a policy, or,
// with the Preview button, shows what the form's policy would do without
// saving it.
func (s *server) savePolicy(w http.ResponseWriter, r *http.Request, v viewer) {
	var id int64
	if r.PathValue("id") != "" {
		var ok bool
		if id, ok = s.pathID(w, r, v); !ok {
			return
		}
	}
	if !s.readForm(w, r, v) {
		return
	}
	in, shown, emails, own := s.policyInput(r, v)
	title := "New reclaim policy"
	if id != 0 {
		title = "Reclaim policy: " + strings.TrimSpace(in.Name)
	}
	f := policyForm{ID: id, CanManage: true}
	var err error
	var saved reclaim.Policy
	var plan reclaim.Plan
	preview := r.PostForm.Get("preview") != ""
	switch {
	case preview:
		plan, err = s.reclaim.PreviewInput(r.Context(), v.Actor, id, in)
	case len(own) > 0:
		// Ask the service too, for every problem at once; nothing is saved.
		_, err = s.reclaim.PreviewInput(r.Context(), v.Actor, id, in)
	case id == 0:
		saved, err = s.reclaim.Create(r.Context(), v.Actor, in)
	default:
		saved, err = s.reclaim.Update(r.Context(), v.Actor, id, in)
	}
	if err != nil && usher.ErrorCode(err) != usher.EINVALID && usher.ErrorCode(err) != usher.ECONFLICT {
		s.renderError(w, r, &v, err)
		return
	}
	if err == nil && len(own) == 0 && !preview {
		s.redirectWith(w, r, v, fmt.Sprintf("/reclaim-policies/%d/preview", saved.ID),
			"Policy “"+saved.Name+"” saved. This is what it would do if it ran now.")
		return
	}
	c, cerr := s.formChoices(r, v)
	if cerr != nil {
		s.renderError(w, r, &v, cerr)
		return
	}
	f.fill(c, shown, emails)
	if in.Range != "" && f.RangeDays == "" && r.PostForm.Get("range") == "days" {
		f.RangeDays = strings.TrimSpace(r.PostForm.Get("range_days"))
	}
	pg := page{Title: title, Data: &f}
	if err != nil || len(own) > 0 {
		f.Errs, pg.Errors = problems(err, own)
		pg.ErrorsTitle = "Nothing was saved:"
		if preview {
			pg.ErrorsTitle = "The policy cannot be previewed:"
		}
		status := http.StatusUnprocessableEntity
		if usher.ErrorCode(err) == usher.ECONFLICT {
			status = http.StatusConflict
		}
		s.render(w, r, status, "policy", pg)
		return
	}
	d := planView(id, strings.TrimSpace(in.Name), plan, v.Account.Location())
	d.Unsaved = true
	f.Preview = &d
	s.render(w, r, http.StatusOK, "policy", pg)
}

func (s *server) deletePolicy(w http.ResponseWriter, r *http.Request, v viewer) {
	id, ok := s.pathID(w, r, v)
	if !ok {
		return
	}
	p, err := s.reclaim.Policy(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	if err := s.reclaim.Delete(r.Context(), v.Actor, id); err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	s.redirectWith(w, r, v, "/reclaim-policies", "Policy “"+p.Name+"” deleted. Its reclaims stay in the Reclaim history.")
}

// fieldErr is the data of the "fielderror" block: a form's problems and
// the field whose problem to show.
type fieldErr struct {
	Errs map[string]string
	Name string
}

func init() {
	funcs["fe"] = func(errs map[string]string, name string) fieldErr { return fieldErr{errs, name} }
}
