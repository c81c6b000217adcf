package llm

import (
	"errors"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// ErrCircuitOpen is reported for a provider skipped because it failed too often lately.
var ErrCircuitOpen = errors.New("circuit open")

// errFirstTokenTimeout marks a provider that stayed silent too long; it is not retried.
var errFirstTokenTimeout = errors.New("no first token within")

// Circuit states.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half-open"
)

// breaker is one provider's circuit: closed while it works, open after too many failures in a
// row, half-open (one trial call) once the cool-down has passed.
type breaker struct {
	mu       sync.Mutex
	failures int
	openedAt time.Time // zero while closed
	trial    bool      // a half-open trial call is in flight
	lastErr  string
	ok, bad  int64
	// recent is the last calls' outcomes and times to first token, for health from traffic.
	recent *session.CallWindow
}

func newBreaker() *breaker { return &breaker{recent: session.NewCallWindow(0, 0)} }

// allow says whether the provider may be called now.
func (b *breaker) allow(now time.Time, cooldown time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openedAt.IsZero() {
		return true
	}
	if now.Sub(b.openedAt) < cooldown || b.trial {
		return false
	}
	b.trial = true
	return true
}

// release gives back a half-open trial whose outcome is unknown.
func (b *breaker) release() {
	b.mu.Lock()
	b.trial = false
	b.mu.Unlock()
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openedAt.IsZero()
}

// record counts an attempt's outcome; took is how long it waited for its first chunk (or for
// its failure).
func (b *breaker) record(err error, took time.Duration, now time.Time, threshold int) {
	b.recent.Record(now, took, err == nil)
	b.mu.Lock()
	defer b.mu.Unlock()
	wasTrial := b.trial
	b.trial = false
	if err == nil {
		b.ok++
		b.failures = 0
		b.openedAt = time.Time{}
		return
	}
	b.bad++
	b.failures++
	b.lastErr = err.Error()
	if wasTrial || b.failures >= threshold {
		b.openedAt = now
	}
}

// ProviderHealth is a provider's circuit as seen from real traffic.
type ProviderHealth struct {
	Provider            string `json:"provider"`
	Circuit             string `json:"circuit"`
	ConsecutiveFailures int    `json:"consecutiveFailures"`
	Successes           int64  `json:"successes"`
	Failures            int64  `json:"failures"`
	LastError           string `json:"lastError,omitempty"`
	// Recent is the last calls' success rate and time to first token (p50/p95) over a
	// sliding window (the last 200 calls of the last 5 minutes).
	Recent session.CallStats `json:"recent"`
}

func (b *breaker) health(name string, now time.Time, cooldown time.Duration) ProviderHealth {
	b.mu.Lock()
	defer b.mu.Unlock()
	state := CircuitClosed
	if !b.openedAt.IsZero() {
		state = CircuitOpen
		if now.Sub(b.openedAt) >= cooldown {
			state = CircuitHalfOpen
		}
	}
	return ProviderHealth{Provider: name, Circuit: state, ConsecutiveFailures: b.failures, Successes: b.ok, Failures: b.bad, LastError: b.lastErr,
		Recent: b.recent.Stats(now)}
}
