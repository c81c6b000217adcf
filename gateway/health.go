package gateway

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

type checkResult struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	LatencyMs int64  `json:"latencyMs"`
}

// runChecks probes every dependency in parallel, each bounded to 2s.
func (s *Server) runChecks(ctx context.Context) (map[string]checkResult, bool) {
	results := make(map[string]checkResult, len(s.cfg.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, hc := range s.cfg.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			start := time.Now()
			err := hc.Check(cctx)
			r := checkResult{OK: err == nil, LatencyMs: time.Since(start).Milliseconds()}
			if err != nil {
				r.Error = err.Error()
			}
			mu.Lock()
			results[hc.Name] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	healthy := true
	for _, r := range results {
		healthy = healthy && r.OK
	}
	return results, healthy
}

func (s *Server) live(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ready is GET /health/ready: 503 while a required backend (each Config.Checks: the SQL
// store, Redis when configured, the blob store) does not answer, or while shutting down.
// "failing" names the checks that failed, so a load balancer's log says which backend is down.
func (s *Server) ready(c echo.Context) error {
	checks, healthy := s.runChecks(c.Request().Context())
	status, code := "ready", http.StatusOK
	if !healthy || s.draining() {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	body := map[string]any{"status": status, "checks": checks}
	if failing := failingChecks(checks); len(failing) > 0 {
		body["failing"] = failing
	}
	if s.draining() {
		body["draining"] = true
	}
	return c.JSON(code, body)
}

// failingChecks names the failed checks, sorted.
func failingChecks(checks map[string]checkResult) []string {
	var out []string
	for name, r := range checks {
		if !r.OK {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) health(c echo.Context) error {
	checks, healthy := s.runChecks(c.Request().Context())
	status, code := "healthy", http.StatusOK
	if !healthy {
		status, code = "unhealthy", http.StatusServiceUnavailable
	}
	body := map[string]any{
		"status":        status,
		"version":       s.cfg.Version,
		"uptimeSeconds": int64(time.Since(s.started).Seconds()),
		"draining":      s.draining(),
		"checks":        checks,
		"agents":        s.cfg.Engine.Registry().List(),
		// Health from real traffic (operations.go): per agent and provider, success rate and
		// latency over the last requests, and each provider's circuit breaker.
		"traffic": s.traffic(),
	}
	if failing := failingChecks(checks); len(failing) > 0 {
		body["failing"] = failing
	}
	return c.JSON(code, body)
}
