package api

import (
	"net/http"
	"time"

	"github.com/wardhq/ward"
)

// RequestObserver is told of every API request, for metrics: its route
// pattern as registered ("POST /v1/projects/{p}/tasks"; "" when no route
// matched), its HTTP status and how long it took. It must be cheap and must
// not block.
type RequestObserver interface {
	Request(route string, status int, d time.Duration)
}

// metrics answers GET /metrics: every project's figures, so admin tokens
// only (a project's viewer holds metrics:read for its own project, which
// this route cannot narrow to).
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.principal.Role != ward.RoleAdmin {
		return ward.Errorf(ward.CodeForbidden, "the metrics of every project need an admin token")
	}
	if s.metricsH == nil {
		return ward.Errorf(ward.CodeNotFound, "metrics are not served by this server")
	}
	s.metricsH.ServeHTTP(w, r)
	return nil
}
