package llm

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"
)

// flaky fails with the given errors in turn, then answers "ok".
type flaky struct {
	name  string
	errs  []error
	mu    sync.Mutex
	calls int
}

func (f *flaky) Name() string { return f.name }

func (f *flaky) Stream(ctx context.Context, _ Request) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		f.mu.Lock()
		n := f.calls
		f.calls++
		f.mu.Unlock()
		if n < len(f.errs) && f.errs[n] != nil {
			yield(Chunk{}, f.errs[n])
			return
		}
		if yield(Chunk{Text: "ok"}, nil) {
			yield(Chunk{Usage: &Usage{}}, nil)
		}
	}
}

func (f *flaky) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

// retryHarness records the waits instead of sleeping and moves a clock by hand.
type retryHarness struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (h *retryHarness) config(cfg ChainConfig) ChainConfig {
	h.now = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now }
	cfg.Sleep = func(_ context.Context, d time.Duration) error {
		h.mu.Lock()
		h.waits = append(h.waits, d)
		h.mu.Unlock()
		return nil
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func (h *retryHarness) advance(d time.Duration) { h.mu.Lock(); h.now = h.now.Add(d); h.mu.Unlock() }

func ask(t *testing.T, c *Chain) (string, error) {
	t.Helper()
	text, provider := "", ""
	for chunk, err := range c.Stream(context.Background(), Request{Messages: []Message{{Role: "user", Content: "hi"}}}) {
		if err != nil {
			return "", err
		}
		text += chunk.Text
		if chunk.Provider != "" {
			provider = chunk.Provider
		}
	}
	return provider + ":" + text, nil
}

func TestChainRetries(t *testing.T) {
	e500 := &Error{Provider: "p", StatusCode: http.StatusInternalServerError}
	e429 := &Error{Provider: "p", StatusCode: http.StatusTooManyRequests, RetryAfter: 3 * time.Second}
	e429long := &Error{Provider: "p", StatusCode: http.StatusTooManyRequests, RetryAfter: time.Minute}
	e401 := &Error{Provider: "p", StatusCode: http.StatusUnauthorized}
	cases := []struct {
		name         string
		errs         []error
		retries      int
		want         string
		primaryCalls int
		waits        []time.Duration // exact waits; nil means "one jittered wait under the base"
	}{
		{"a 500 is retried once, then answered", []error{e500}, 0, "primary:ok", 2, nil},
		{"Retry-After is honoured", []error{e429}, 0, "primary:ok", 2, []time.Duration{3 * time.Second}},
		{"a Retry-After too long moves on", []error{e429long}, 0, "backup:ok", 1, []time.Duration{}},
		{"a refusal is not retried", []error{e401}, 0, "backup:ok", 1, []time.Duration{}},
		{"retries run out, then fallback", []error{e500, e500, e500}, 2, "backup:ok", 3, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &retryHarness{}
			primary, backup := &flaky{name: "primary", errs: tc.errs}, &flaky{name: "backup"}
			c := NewChain(h.config(ChainConfig{Retries: tc.retries, BackoffBase: 100 * time.Millisecond}), primary, backup)
			got, err := ask(t, c)
			if err != nil || got != tc.want || primary.count() != tc.primaryCalls {
				t.Fatalf("got %q %v after %d primary calls, want %q after %d", got, err, primary.count(), tc.want, tc.primaryCalls)
			}
			if tc.waits != nil {
				if len(h.waits) != len(tc.waits) || (len(tc.waits) > 0 && h.waits[0] != tc.waits[0]) {
					t.Fatalf("waits %v, want %v", h.waits, tc.waits)
				}
				return
			}
			for i, w := range h.waits {
				if ceiling := 100 * time.Millisecond << i; w < 0 || w > ceiling {
					t.Fatalf("wait %d = %s, want jitter within [0, %s]", i, w, ceiling)
				}
			}
		})
	}
}

func TestCircuitBreakerOpensAndRecovers(t *testing.T) {
	h := &retryHarness{}
	down := &Error{Provider: "primary", StatusCode: http.StatusServiceUnavailable}
	primary := &flaky{name: "primary", errs: []error{down, down, down, down}}
	backup := &flaky{name: "backup"}
	c := NewChain(h.config(ChainConfig{Retries: -1, BreakerThreshold: 3, BreakerCooldown: 30 * time.Second}), primary, backup)

	for range 3 {
		if got, _ := ask(t, c); got != "backup:ok" {
			t.Fatalf("while failing: %s", got)
		}
	}
	if st := c.Health()[0]; st.Circuit != CircuitOpen || st.ConsecutiveFailures != 3 {
		t.Fatalf("after 3 failures: %+v", st)
	}
	// Open: the primary is skipped without a call.
	ask(t, c)
	if primary.count() != 3 {
		t.Fatalf("an open circuit must not call the provider (calls=%d)", primary.count())
	}
	// After the cool-down one trial goes through; it fails and the circuit opens again.
	h.advance(30 * time.Second)
	if st := c.Health()[0]; st.Circuit != CircuitHalfOpen {
		t.Fatalf("after the cool-down: %+v", st)
	}
	ask(t, c)
	if primary.count() != 4 || c.Health()[0].Circuit != CircuitOpen {
		t.Fatalf("failed trial: calls=%d %+v", primary.count(), c.Health()[0])
	}
	// The next trial succeeds and closes the circuit.
	h.advance(30 * time.Second)
	if got, _ := ask(t, c); got != "primary:ok" {
		t.Fatalf("recovered primary should answer, got %s", got)
	}
	if st := c.Health()[0]; st.Circuit != CircuitClosed || st.ConsecutiveFailures != 0 || st.Successes != 1 {
		t.Fatalf("after recovery: %+v", st)
	}
	// Every provider open: a clear error naming the circuit.
	both := NewChain(h.config(ChainConfig{Retries: -1, BreakerThreshold: 1}), &flaky{name: "a", errs: []error{down}})
	ask(t, both)
	if _, err := ask(t, both); !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrAllProvidersFailed) {
		t.Fatalf("want circuit-open error, got %v", err)
	}
}

func TestBreakerIgnoresCallersThatLeave(t *testing.T) {
	h := &retryHarness{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &flaky{name: "p", errs: []error{context.Canceled}}
	c := NewChain(h.config(ChainConfig{Retries: -1, BreakerThreshold: 1}), p)
	for range c.Stream(ctx, Request{}) {
	}
	if st := c.Health()[0]; st.Circuit != CircuitClosed || st.Failures != 0 {
		t.Fatalf("a cancelled caller counted against the provider: %+v", st)
	}
}
