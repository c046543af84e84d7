package console

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usher"
)

type policyRow struct {
	ID                 int64
	Enabled            bool
	Name, Scope, Range string
	Mode               reclaim.Mode
	Grace              int
	Next               string
}

func (s *server) policies(w http.ResponseWriter, r *http.Request, v viewer) {
	ps, err := s.reclaim.Policies(r.Context(), v.Actor)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	loc := v.Account.Location()
	var rows []policyRow
	for _, p := range ps {
		row := policyRow{ID: p.ID, Enabled: p.Enabled, Name: p.Name, Range: p.Range.Label(), Mode: p.Mode, Grace: p.GraceDays, Next: "off"}
		if p.Enabled {
			row.Next = usher.HumanTime(p.NextRunAt, loc)
		}
		if p.Scope.Kind == reclaim.ScopeProducts {
			row.Scope = "products " + strings.Join(p.Scope.Products, ", ")
		} else {
			var ids []string
			for _, id := range p.Scope.SubscriptionIDs {
				ids = append(ids, strconv.FormatInt(id, 10))
			}
			row.Scope = "subscriptions " + strings.Join(ids, ", ")
		}
		rows = append(rows, row)
	}
	s.render(w, r, http.StatusOK, "policies", page{Title: "Reclaim policies", Data: struct {
		Policies  []policyRow
		CanManage bool
	}{rows, access.Can(v.Actor, access.ManageReclaim, 0)}})
}

type planRow struct {
	reclaim.Item
	Why, Last, On string
}

// previewData is what the "plan" block shows: the preview page's, and the
// policy form's after Preview.
type previewData struct {
	ID        int64
	Name      string
	Unsaved   bool // the form's values, not the stored policy
	CanManage bool
	Plan      reclaim.Plan
	Rows      []planRow
}

func planView(id int64, name string, plan reclaim.Plan, loc *time.Location) previewData {
	var rows []planRow
	for _, it := range plan.Items {
		row := planRow{Item: it, Why: strings.ReplaceAll(string(it.Inactivity), "_", " "), Last: "never"}
		if it.Reason != "" {
			row.Why = it.Reason
		}
		if !it.LastUsedAt.IsZero() {
			row.Last = usher.HumanDay(it.LastUsedAt, loc)
		}
		if !it.ReclaimAt.IsZero() {
			row.On = usher.HumanDay(it.ReclaimAt, loc)
		}
		rows = append(rows, row)
	}
	return previewData{ID: id, Name: name, Plan: plan, Rows: rows}
}

func (s *server) preview(w http.ResponseWriter, r *http.Request, v viewer) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderStatus(w, r, http.StatusNotFound, &v, "Not found", "There is no such reclaim policy.")
		return
	}
	p, err := s.reclaim.Policy(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	plan, err := s.reclaim.Preview(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	data := planView(p.ID, p.Name, plan, v.Account.Location())
	data.CanManage = access.Can(v.Actor, access.ManageReclaim, 0)
	s.render(w, r, http.StatusOK, "preview", page{Title: "Preview: " + p.Name, Data: data})
}
