package web

import (
	"net/http"

	"github.com/usherhq/usher/internal/notify"
	"github.com/usherhq/usher/internal/reclaim"
	"github.com/usherhq/usher/internal/sso"
	"github.com/usherhq/usher/internal/usage"
)

// patternRecorder is a router that only remembers the patterns.
type patternRecorder []string

func (p *patternRecorder) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }

// RoutePatterns returns every pattern the API registers when every optional
// part (notifications, usage, single sign-on, reclaim) is configured, for
// the contract test. The services are never called: registering only builds
// the handlers.
func RoutePatterns() []string {
	s := &server{notify: &notify.Service{}, usage: &usage.Service{}, sso: &sso.Service{}, reclaim: &reclaim.Service{}}
	var rec patternRecorder
	s.routes(&rec, true)
	return rec
}
