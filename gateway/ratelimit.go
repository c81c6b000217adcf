package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// RateLimiter decides whether a caller may make one more request. Implementations:
// MemoryRateLimiter (one process, the embedded default) and RedisRateLimiter (exact across
// replicas). Both use GCRA: a quota of Requests per Per allows a burst of Requests at once and
// then one request every Per/Requests, so a caller who used everything waits Per/Requests for
// the next request and Per for the whole quota.
type RateLimiter interface {
	// Allow counts one request for key against limit. An error means the limiter could not
	// decide; the gateway then lets the request through (fail open) and logs it.
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
}

// Limit is a quota: Requests per Per.
type Limit struct {
	Requests int
	Per      time.Duration
}

func (l Limit) validate() error {
	if l.Requests <= 0 || l.Per <= 0 {
		return fmt.Errorf("gateway: rate limit %d per %s: both must be positive", l.Requests, l.Per)
	}
	return nil
}

// String formats the limit the way ParseRateLimits reads it ("20/h").
func (l Limit) String() string {
	per := l.Per.String()
	switch l.Per {
	case time.Second:
		per = "s"
	case time.Minute:
		per = "m"
	case time.Hour:
		per = "h"
	case 24 * time.Hour:
		per = "d"
	}
	return strconv.Itoa(l.Requests) + "/" + per
}

// gcra is the generic cell rate algorithm on one key, shared by the memory limiter and
// mirrored by the Redis script. tat is the key's theoretical arrival time (zero when unknown).
// It returns the new tat to store (unchanged when refused).
//
// interval = Per/Requests (at least 1ns) and the window is Requests*interval, so exactly
// Requests fit in a burst however Per divides.
func gcra(now, tat time.Time, limit Limit) (time.Time, Decision) {
	interval := limit.Per / time.Duration(limit.Requests)
	if interval <= 0 {
		interval = 1
	}
	window := interval * time.Duration(limit.Requests)
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	allowAt := next.Add(-window)
	if now.Before(allowAt) {
		return tat, Decision{Allowed: false, Limit: limit.Requests, Remaining: 0, ResetAt: tat, RetryAfter: allowAt.Sub(now)}
	}
	remaining := int((window - next.Sub(now)) / interval)
	return next, Decision{Allowed: true, Limit: limit.Requests, Remaining: remaining, ResetAt: next}
}

// Decision is a limiter's answer for one request.
type Decision struct {
	Allowed bool
	// Limit is the quota's number of requests; Remaining how many more would be allowed now.
	Limit, Remaining int
	// ResetAt is when the whole quota is available again.
	ResetAt time.Time
	// RetryAfter is how long a refused caller must wait for one request; zero when allowed.
	RetryAfter time.Duration
}

// The plans every gateway knows. Real authentication (Config.Identify) names one of them.
const (
	PlanFree    = "free"
	PlanPaid    = "paid"
	PlanPremium = "premium"
)

// DefaultRateLimits are the quotas per plan: free 20/h, paid 1000/h, premium 10000/h.
func DefaultRateLimits() map[string]Limit {
	return map[string]Limit{
		PlanFree:    {Requests: 20, Per: time.Hour},
		PlanPaid:    {Requests: 1000, Per: time.Hour},
		PlanPremium: {Requests: 10000, Per: time.Hour},
	}
}

// ParseRateLimits reads "free=20/h,paid=1000/h,premium=10000/h" over DefaultRateLimits: the
// plans it names get the new quota, the others keep theirs. The period is s, m, h, d or a Go
// duration ("20/90s", "5/1h30m").
func ParseRateLimits(s string) (map[string]Limit, error) {
	out := DefaultRateLimits()
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		plan, spec, ok := strings.Cut(item, "=")
		plan = strings.TrimSpace(plan)
		if !ok || plan == "" {
			return nil, fmt.Errorf("rate limit %q: want plan=requests/period, like free=20/h", item)
		}
		n, per, ok := strings.Cut(strings.TrimSpace(spec), "/")
		if !ok {
			return nil, fmt.Errorf("rate limit %q: want plan=requests/period, like free=20/h", item)
		}
		requests, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || requests <= 0 {
			return nil, fmt.Errorf("rate limit %q: the number of requests must be a positive integer", item)
		}
		var d time.Duration
		switch per = strings.TrimSpace(per); per {
		case "s", "sec", "second":
			d = time.Second
		case "m", "min", "minute":
			d = time.Minute
		case "h", "hour":
			d = time.Hour
		case "d", "day":
			d = 24 * time.Hour
		default:
			if d, err = time.ParseDuration(per); err != nil || d <= 0 {
				return nil, fmt.Errorf("rate limit %q: the period must be s, m, h, d or a positive duration like 90s", item)
			}
		}
		out[plan] = Limit{Requests: requests, Per: d}
	}
	return out, nil
}

// FormatRateLimits writes limits in the form ParseRateLimits reads, plans sorted.
func FormatRateLimits(limits map[string]Limit) string {
	var parts []string
	for _, plan := range slices.Sorted(maps.Keys(limits)) {
		parts = append(parts, plan+"="+limits[plan].String())
	}
	return strings.Join(parts, ",")
}

// clientIP is the caller's address: the direct peer, or when the peer is a trusted proxy
// (loopback, link-local or private network) the nearest untrusted address in X-Forwarded-For.
// Unlike echo's default RealIP it cannot be spoofed by a client on the internet.
var clientIP = echo.ExtractIPFromXFFHeader()

// IdentifyByIP is the default Config.Identify: every caller is on the free plan, keyed by its
// IP address. The body's userId is not trusted for limits: anyone can send any userId.
func IdentifyByIP(r *http.Request) (key, plan string) {
	return "ip:" + clientIP(r), PlanFree
}

// rateLimitFor names the caller of r and the quota of their plan. A plan the gateway does not
// know gets the free quota. The limiter key is plan and caller, so a caller whose plan changes
// starts the new plan's quota afresh.
func (s *Server) rateLimitFor(r *http.Request) (string, Limit) {
	key, plan := s.cfg.Identify(r)
	if key == "" {
		key, _ = IdentifyByIP(r)
	}
	limit, ok := s.cfg.RateLimits[plan]
	if !ok {
		plan = PlanFree
		if limit, ok = s.cfg.RateLimits[PlanFree]; !ok {
			limit = DefaultRateLimits()[PlanFree]
		}
	}
	return plan + ":" + key, limit
}

// checkRate asks the limiter about one request. ok is false when the limiter failed: the
// request then goes through (fail open) and the failure is logged.
func (s *Server) checkRate(ctx context.Context, key string, limit Limit) (d Decision, ok bool) {
	d, err := s.cfg.RateLimiter.Allow(ctx, key, limit)
	if err != nil {
		switch {
		case ctx.Err() != nil: // the caller left
		case errors.Is(err, ErrRateLimiterDown): // the limiter logged the outage once
			s.log.Debug("rate limiter down; letting the request through", "err", err)
		default:
			s.log.Warn("rate limiter failed; letting the request through", "err", err)
		}
		return Decision{}, false
	}
	if !d.Allowed {
		s.log.Debug("rate limited", "key", key, "limit", limit.String(), "retryAfter", d.RetryAfter)
	}
	return d, true
}

// rateLimit is the middleware of every rate-limited route: POST /api/v2/chat,
// /api/v2/chat/stream and /v1/chat/completions (see routes). Attach it to another route as
// route middleware, g.POST(path, h, s.rateLimit), or to a whole group with
// e.Group(prefix, s.rateLimit); Echo then also runs it for the group's unknown paths, so the
// per-route form is preferred. WebSocket turns are limited by allowTurn.
// Responses carry X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (unix
// seconds); a refused request gets 429 rate_limited with Retry-After (whole seconds).
// Without a Config.RateLimiter it does nothing.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.RateLimiter == nil {
		return next
	}
	return func(c echo.Context) error {
		key, limit := s.rateLimitFor(c.Request())
		d, ok := s.checkRate(c.Request().Context(), key, limit)
		if !ok {
			return next(c)
		}
		h := c.Response().Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilUnix(d.ResetAt), 10))
		if !d.Allowed {
			h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(d.RetryAfter)))
			return rateLimitedError(d, limit)
		}
		return next(c)
	}
}

func rateLimitedError(d Decision, limit Limit) *APIError {
	secs := retryAfterSeconds(d.RetryAfter)
	return &APIError{
		Status:     http.StatusTooManyRequests,
		Code:       CodeRateLimited,
		Message:    fmt.Sprintf("rate limit of %s reached; retry in %d s", limit, secs),
		Details:    map[string]any{"retryAfter": secs, "limit": d.Limit},
		RetryAfter: time.Duration(secs) * time.Second,
		cause:      errRateLimited,
	}
}

var errRateLimited = errors.New("rate limited")

// retryAfterSeconds rounds up to whole seconds, at least 1, as Retry-After wants.
func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// ceilUnix is t in unix seconds, rounded up so a client waiting until then finds the quota.
func ceilUnix(t time.Time) int64 {
	secs := t.Unix()
	if t.Nanosecond() > 0 {
		secs++
	}
	return secs
}

// allowTurn applies the rate limit to one WebSocket text turn. A refused turn gets an error
// frame (rate_limited, with retryAfter in seconds) and the connection stays open. Frames that
// startTurn refuses anyway (no session yet, a turn running, shutting down) are not counted.
func (ws *wsSession) allowTurn(f clientFrame) bool {
	s := ws.srv
	if s.cfg.RateLimiter == nil {
		return true
	}
	ws.mu.Lock()
	ready := !ws.closing && ws.conv != nil && ws.turn == nil
	ws.mu.Unlock()
	if !ready {
		return true // startTurn says why, without charging the quota
	}
	ctx, cancel := context.WithTimeout(ws.ctx, s.cfg.RequestTimeout)
	defer cancel()
	d, ok := s.checkRate(ctx, ws.rateKey, ws.rateLimit)
	if !ok || d.Allowed {
		return true
	}
	apiErr := rateLimitedError(d, ws.rateLimit)
	secs := retryAfterSeconds(d.RetryAfter)
	ws.send(serverFrame{Type: "error", ID: f.ID, Code: apiErr.Code, Message: apiErr.Message, RetryAfter: secs})
	return false
}
