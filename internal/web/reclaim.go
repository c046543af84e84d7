package web

import (
	"net/http"
	"strconv"

	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usher"
)

type policyList struct {
	Items []reclaim.Policy `json:"items"`
}

type runList struct {
	Items []reclaim.Run `json:"items"`
}

func (s *server) listReclaimPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.reclaim.Policies(r.Context(), actorFrom(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, policyList{Items: ps})
}

func (s *server) createReclaimPolicy(w http.ResponseWriter, r *http.Request) {
	var in reclaim.Input
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.reclaim.Create(r.Context(), actorFrom(r.Context()), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/reclaim-policies/"+strconv.FormatInt(p.ID, 10))
	s.writeJSON(w, r, http.StatusCreated, p)
}

func (s *server) getReclaimPolicy(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "reclaim policy")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.reclaim.Policy(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, p)
}

func (s *server) replaceReclaimPolicy(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "reclaim policy")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in reclaim.Input
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.reclaim.Update(r.Context(), actorFrom(r.Context()), id, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, p)
}

func (s *server) deleteReclaimPolicy(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "reclaim policy")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.reclaim.Delete(r.Context(), actorFrom(r.Context()), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) previewReclaimPolicy(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "reclaim policy")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.reclaim.Preview(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, p)
}

func (s *server) reclaimPolicyRuns(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "reclaim policy")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	runs, err := s.reclaim.Runs(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, runList{Items: runs})
}

func (s *server) listReclaims(w http.ResponseWriter, r *http.Request) {
	var p usher.Problems
	cursor, limit := pageParams(&p, r)
	if err := p.Err(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.Batches(r.Context(), actorFrom(r.Context()), cursor, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

func (s *server) getReclaim(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "reclaim")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.access.Batch(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, b)
}

func (s *server) undoReclaim(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "reclaim")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.access.Undo(r.Context(), actorFrom(r.Context()), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, res)
}
