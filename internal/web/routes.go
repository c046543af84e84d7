package web

import "net/http"

// router is what routes registers on: an *http.ServeMux, or a recorder of
// the patterns, with which the contract test compares docs/openapi.yaml.
type router interface {
	Handle(pattern string, h http.Handler)
}

// routes registers every API endpoint. The admin console has its own routes
// (package console), reached for paths no pattern here matches. Every
// pattern here is an operation in docs/openapi.yaml; a test checks both ways.
// withMetrics is false when /metrics has a listener of its own.
func (s *server) routes(mux router, withMetrics bool) {
	mux.Handle("GET /healthz", http.HandlerFunc(s.healthz))
	mux.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	if withMetrics {
		mux.Handle("GET /metrics", http.HandlerFunc(s.serveMetrics))
	}

	api := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.bearer(s.textQuery(h))) }
	api("GET /api/v1/me", s.me)

	api("GET /api/v1/users", s.listUsers)
	api("POST /api/v1/users", s.createUser)
	api("GET /api/v1/users/{id}", s.getUser)
	api("PATCH /api/v1/users/{id}", s.updateUser)
	api("DELETE /api/v1/users/{id}", s.deleteUser)
	api("POST /api/v1/users/{id}/roles", s.grantRole)
	api("DELETE /api/v1/users/{id}/roles", s.revokeRole)
	// The GET of a user's access authenticates in the read of the view.
	mux.Handle("GET /api/v1/users/{id}/access", s.getAccessByToken(s.bearer(s.textQuery(s.getAccess))))
	api("PUT /api/v1/users/{id}/access", s.setAccess)
	api("POST /api/v1/users/{id}/seats", s.addSeat)
	api("DELETE /api/v1/users/{id}/seats/{subscription_id}", s.removeSeat)

	api("GET /api/v1/products", s.listProducts)
	api("GET /api/v1/subscriptions", s.listSubscriptions)
	api("POST /api/v1/subscriptions", s.createSubscription)
	api("GET /api/v1/subscriptions/{id}", s.getSubscription)
	api("PATCH /api/v1/subscriptions/{id}", s.updateSubscription)
	api("GET /api/v1/account", s.getAccount)
	api("PATCH /api/v1/account", s.updateAccount)
	api("GET /api/v1/reclaims", s.listReclaims)
	api("GET /api/v1/reclaims/{id}", s.getReclaim)
	api("POST /api/v1/reclaims/{id}/undo", s.undoReclaim)
	api("GET /api/v1/subscriptions/{id}/waiting", s.subscriptionWaiting)

	api("GET /api/v1/groups", s.listGroups)
	api("POST /api/v1/groups", s.createGroup)
	api("GET /api/v1/groups/{id}", s.getGroup)
	api("PATCH /api/v1/groups/{id}", s.updateGroup)
	api("DELETE /api/v1/groups/{id}", s.deleteGroup)
	api("GET /api/v1/groups/{id}/members", s.listGroupMembers)
	api("POST /api/v1/groups/{id}/members", s.addGroupMembers)
	api("DELETE /api/v1/groups/{id}/members/{user_id}", s.removeGroupMember)
	api("PUT /api/v1/groups/{id}/subscriptions/{subscription_id}", s.assignGroup)
	api("DELETE /api/v1/groups/{id}/subscriptions/{subscription_id}", s.unassignGroup)
	api("DELETE /api/v1/groups/{id}/subscriptions/{subscription_id}/exclusions/{user_id}", s.includeMember)

	api("POST /api/v1/unassign", s.unassign)
	api("GET /api/v1/tokens", s.listTokens)
	api("POST /api/v1/tokens", s.createToken)
	api("DELETE /api/v1/tokens/{id}", s.revokeToken)
	api("GET /api/v1/audit-log", s.auditLog)

	if s.notify != nil {
		api("GET /api/v1/usage-notifications", s.getNotifications)
		api("PUT /api/v1/usage-notifications", s.setNotifications)
		api("DELETE /api/v1/usage-notifications", s.turnOffNotifications)
		api("GET /api/v1/usage-notifications/runs", s.notificationRuns)
	}
	if s.reclaim != nil {
		api("GET /api/v1/reclaim-policies", s.listReclaimPolicies)
		api("POST /api/v1/reclaim-policies", s.createReclaimPolicy)
		api("GET /api/v1/reclaim-policies/{id}", s.getReclaimPolicy)
		api("PUT /api/v1/reclaim-policies/{id}", s.replaceReclaimPolicy)
		api("DELETE /api/v1/reclaim-policies/{id}", s.deleteReclaimPolicy)
		api("GET /api/v1/reclaim-policies/{id}/preview", s.previewReclaimPolicy)
		api("GET /api/v1/reclaim-policies/{id}/runs", s.reclaimPolicyRuns)
	}
	if s.sso != nil {
		api("GET /api/v1/sso", s.getSSO)
		api("PUT /api/v1/sso", s.setSSO)
		api("DELETE /api/v1/sso", s.turnOffSSO)
	}
	if s.usage != nil {
		api("POST /api/v1/usage-events", s.ingestUsage)
		// The report's GET authenticates in the report's first read.
		mux.Handle("GET /api/v1/reports/usage", s.usageReportByToken(s.bearer(s.textQuery(s.usageReport))))
	}
}
