package console

import (
	"net/http"

	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/usher"
)

type keepPage struct {
	Token     string
	Offer     reclaim.KeepOffer
	ReclaimOn string
	Kept      bool
}

// keepPage shows what a Keep my seat link is about and a button. It changes
// nothing: mail scanners follow links in emails, so only the button's POST
// keeps the seat. It needs no sign-in; the link's token is the proof.
func (s *server) keepPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	offer, err := s.reclaim.KeepOffer(r.Context(), token)
	if err != nil {
		s.renderKeepError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "keep", page{Title: "Keep your seat", Data: keepPage{Token: token, Offer: offer,
		ReclaimOn: offer.ReclaimAt.Format("2 January 2006"), Kept: offer.Kept}})
}

// keep uses the link: the form's POST.
func (s *server) keep(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	offer, err := s.reclaim.Keep(r.Context(), token)
	if err != nil {
		s.renderKeepError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "keep", page{Title: "Seat kept", Data: keepPage{Offer: offer, Kept: true}})
}

func (s *server) renderKeepError(w http.ResponseWriter, r *http.Request, err error) {
	switch usher.ErrorCode(err) {
	case usher.ENOTFOUND:
		s.renderStatus(w, r, http.StatusNotFound, nil, "Link not valid", "This link is not a Keep my seat link. Copy the whole link from the email, or ask your administrator.")
	case usher.ECONFLICT:
		s.renderStatus(w, r, http.StatusConflict, nil, "Link no longer valid", usher.ErrorMessage(err)+". Ask your administrator if you need the seat.")
	default:
		s.renderError(w, r, nil, err)
	}
}
