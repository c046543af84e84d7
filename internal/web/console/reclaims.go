package console

import (
	"net/http"
	"strconv"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

type reclaimRow struct {
	usher.ReclaimBatch
	When    string
	Undone  string
	CanUndo bool
	// CanFinish offers to finish an undo that stopped half-way.
	CanFinish bool
}

type reclaimsPage struct {
	Rows []reclaimRow
	Undo *access.UndoResult
}

func (s *server) reclaimHistory(w http.ResponseWriter, r *http.Request, v viewer) {
	s.renderReclaims(w, r, v, http.StatusOK, nil, "")
}

func (s *server) renderReclaims(w http.ResponseWriter, r *http.Request, v viewer, status int, undo *access.UndoResult, msg string) {
	hist, err := s.access.Batches(r.Context(), v.Actor, "", access.MaxLimit)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	loc, now := v.Account.Location(), s.now()
	data := reclaimsPage{Undo: undo}
	for _, b := range hist.Items {
		row := reclaimRow{ReclaimBatch: b, When: usher.HumanTime(b.CreatedAt, loc)}
		if !b.UndoneAt.IsZero() {
			row.Undone = usher.HumanTime(b.UndoneAt, loc)
		}
		row.CanUndo, row.CanFinish = now.Sub(b.CreatedAt) <= access.UndoWindow, b.UndoUnfinished
		for _, it := range b.Items {
			may := access.Can(v.Actor, access.ManageSeats, it.SubscriptionID)
			row.CanUndo, row.CanFinish = row.CanUndo && may, row.CanFinish && may
		}
		data.Rows = append(data.Rows, row)
	}
	s.render(w, r, status, "reclaims", page{Title: "Reclaim history", Message: msg, Data: data})
}

func (s *server) undoReclaim(w http.ResponseWriter, r *http.Request, v viewer) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderStatus(w, r, http.StatusNotFound, &v, "Not found", "There is no such reclaim.")
		return
	}
	res, err := s.access.Undo(r.Context(), v.Actor, id)
	if err != nil {
		s.renderError(w, r, &v, err)
		return
	}
	msg := "Undone: " + strconv.Itoa(len(res.Restored)) + " restored, " + strconv.Itoa(len(res.Failed)) + " could not be restored."
	if !access.Can(v.Actor, access.ViewReclaim, 0) {
		// Those who may not read the history see the outcome alone.
		s.renderStatus(w, r, http.StatusOK, &v, "Reclaim undone", msg)
		return
	}
	s.renderReclaims(w, r, v, http.StatusOK, &res, msg)
}
