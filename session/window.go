package session

import (
	"math"
	"slices"
	"sync"
	"time"
)

// CallWindow is the recent record of calls to one thing (an agent, a provider): the outcome
// and latency of at most the last Size calls made within the last Span. Health from real
// traffic reads it, so a provider's state is known without spending money on synthetic calls.
// It is safe for concurrent use.
type CallWindow struct {
	span time.Duration

	mu   sync.Mutex
	ring []callSample
	next int
	n    int
}

type callSample struct {
	at      time.Time
	latency time.Duration
	ok      bool
}

// Defaults of NewCallWindow.
const (
	DefaultCallWindowSize = 200
	DefaultCallWindowSpan = 5 * time.Minute
)

// NewCallWindow keeps the last size calls of the last span. size <= 0 means
// DefaultCallWindowSize, span <= 0 DefaultCallWindowSpan.
func NewCallWindow(size int, span time.Duration) *CallWindow {
	if size <= 0 {
		size = DefaultCallWindowSize
	}
	if span <= 0 {
		span = DefaultCallWindowSpan
	}
	return &CallWindow{span: span, ring: make([]callSample, size)}
}

// Record adds one call: when it ended, how long it took and whether it succeeded.
func (w *CallWindow) Record(at time.Time, latency time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ring[w.next] = callSample{at: at, latency: latency, ok: ok}
	w.next = (w.next + 1) % len(w.ring)
	w.n = min(w.n+1, len(w.ring))
}

// CallStats summarizes a CallWindow.
type CallStats struct {
	// Calls and Failures count the calls in the window.
	Calls    int `json:"calls"`
	Failures int `json:"failures"`
	// SuccessRate is the share of Calls that succeeded, 0..1; it means nothing while Calls is 0.
	SuccessRate float64 `json:"successRate"`
	// P50Ms and P95Ms are latency percentiles of the successful calls, in milliseconds (nearest
	// rank): a failure's latency is usually a timeout and says little about the service.
	P50Ms float64 `json:"p50Ms"`
	P95Ms float64 `json:"p95Ms"`
}

// Stats summarizes the calls made within Span before now.
func (w *CallWindow) Stats(now time.Time) CallStats {
	w.mu.Lock()
	var latencies []time.Duration
	var s CallStats
	since := now.Add(-w.span)
	for i := range w.n {
		c := w.ring[i]
		if c.at.Before(since) {
			continue
		}
		s.Calls++
		if !c.ok {
			s.Failures++
			continue
		}
		latencies = append(latencies, c.latency)
	}
	w.mu.Unlock()
	if s.Calls > 0 {
		s.SuccessRate = float64(s.Calls-s.Failures) / float64(s.Calls)
	}
	slices.Sort(latencies)
	s.P50Ms = percentileMs(latencies, 0.50)
	s.P95Ms = percentileMs(latencies, 0.95)
	return s
}

// percentileMs is the nearest-rank q-percentile of sorted, in milliseconds; 0 when empty.
func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return float64(sorted[rank-1]) / float64(time.Millisecond)
}
