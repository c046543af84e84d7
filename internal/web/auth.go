package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

type actorKey struct{}

// actorFrom returns the actor authenticated for the request. Without one it
// returns the zero actor, which the domain lets do nothing.
func actorFrom(ctx context.Context) usher.Actor {
	a, _ := ctx.Value(actorKey{}).(usher.Actor)
	return a
}

// bearer wraps an API handler: the request must carry a valid
// "Authorization: Bearer <token>"; its actor is put in the context.
// Whether the actor may do what the handler asks is the domain's decision.
func (s *server) bearer(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			s.writeError(w, r, usher.Errorf(usher.EUNAUTHORIZED, `send an API token as "Authorization: Bearer <token>"`))
			return
		}
		a, err := s.access.Authenticate(r.Context(), token)
		if r, ok = s.admit(w, r, a, err); ok {
			next(w, r)
		}
	}
}

// bearerToken is the request's "Authorization: Bearer <token>", if any.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, strings.EqualFold(scheme, "Bearer") && token != ""
}

// admit answers a request whose token was refused (err) or whose actor may
// not use /api/v1 this way, and reports false; else it gives the request
// with the actor in its context.
func (s *server) admit(w http.ResponseWriter, r *http.Request, a usher.Actor, err error) (*http.Request, bool) {
	if err != nil {
		if usher.ErrorCode(err) == usher.EUNAUTHORIZED {
			// RFC 6750 §3: tell the client the token itself was refused.
			w.Header().Set("WWW-Authenticate", `Bearer realm="usher", error="invalid_token"`)
		}
		s.writeError(w, r, err)
		return r, false
	}
	// A SCIM token speaks SCIM only, and a read token only reads:
	// refused here for every route at once, with a clear reason. The
	// services refuse the same through the permission matrix.
	if a.Scope == usher.ScopeSCIM {
		s.writeError(w, r, usher.Errorf(usher.EFORBIDDEN, "a scim token may be used only for /scim/v2, not for /api/v1"))
		return r, false
	}
	if !access.CanWrite(a) && r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, r, usher.Errorf(usher.EFORBIDDEN, "a %s token may only read (GET); use a full token to change anything", a.Scope))
		return r, false
	}
	NoteActor(r.Context(), a.AccountID, a.UserID)
	return r.WithContext(context.WithValue(r.Context(), actorKey{}, a)), true
}
