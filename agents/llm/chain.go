package llm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// ChainConfig configures a Chain.
type ChainConfig struct {
	// FirstTokenTimeout is how long a provider may take to produce its first chunk before the
	// chain gives up on it and asks the next one. Default 15s.
	FirstTokenTimeout time.Duration
	// Retries is how many more times a provider is asked after a retryable failure (429, 5xx,
	// a dropped connection) before the chain moves on; negative means none. Default 1.
	Retries int
	// BackoffBase is the first retry's backoff ceiling; it doubles per retry and each wait is
	// drawn uniformly below it (full jitter). Default 250ms.
	BackoffBase time.Duration
	// MaxRetryWait bounds a provider's Retry-After: asked to wait longer, the chain moves on
	// instead. Default 5s.
	MaxRetryWait time.Duration
	// BreakerThreshold is how many failures in a row open a provider's circuit, so it is
	// skipped without being called. Default 5.
	BreakerThreshold int
	// BreakerCooldown is how long an open circuit stays open before one trial call is let
	// through (half-open). Default 30s.
	BreakerCooldown time.Duration
	// Now reads the clock for the breakers. Default time.Now.
	Now func() time.Time
	// Sleep waits between retries, returning early with ctx's error. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives a line per retry and fallback. Default slog.Default().
	Logger *slog.Logger
}

// Chain asks its providers in order, retrying retryable failures with backoff. A provider that
// fails, stays silent past the first-token timeout, or has an open circuit is skipped for the
// next one; once a provider has streamed, its failure is reported to the caller rather than
// silently truncated.
type Chain struct {
	providers []Provider
	breakers  []*breaker
	cfg       ChainConfig
}

var _ Provider = (*Chain)(nil)

// NewChain returns a chain over providers, tried first to last.
func NewChain(cfg ChainConfig, providers ...Provider) *Chain {
	if cfg.FirstTokenTimeout <= 0 {
		cfg.FirstTokenTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Retries == 0 {
		cfg.Retries = 1
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 250 * time.Millisecond
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 5 * time.Second
	}
	if cfg.BreakerThreshold <= 0 {
		cfg.BreakerThreshold = 5
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepContext
	}
	c := &Chain{providers: providers, cfg: cfg}
	for range providers {
		c.breakers = append(c.breakers, newBreaker())
	}
	return c
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Name implements Provider.
func (c *Chain) Name() string { return "chain" }

// Providers lists the chain's members in order.
func (c *Chain) Providers() []Provider { return append([]Provider(nil), c.providers...) }

// Stream implements Provider.
func (c *Chain) Stream(ctx context.Context, req Request) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		if len(c.providers) == 0 {
			yield(Chunk{}, ErrNoProviders)
			return
		}
		var failures []error
		for i, p := range c.providers {
			if i == 1 {
				// A model name is one provider's; a fallback answers with its own default.
				req.Model = ""
			}
			br := c.breakers[i]
			if !br.allow(c.cfg.Now(), c.cfg.BreakerCooldown) {
				failures = append(failures, fmt.Errorf("%s: %w", p.Name(), ErrCircuitOpen))
				continue
			}
			for try := 0; ; try++ {
				started, took, err := c.attempt(ctx, p, req, yield)
				if ctx.Err() == nil { // a caller that went away is no provider's failure
					br.record(err, took, c.cfg.Now(), c.cfg.BreakerThreshold)
				} else {
					br.release()
				}
				if started || err == nil {
					return
				}
				if ctx.Err() != nil {
					yield(Chunk{}, ctx.Err())
					return
				}
				wait, retry := c.retryWait(err, try)
				if !retry || br.isOpen() {
					failures = append(failures, err)
					c.cfg.Logger.WarnContext(ctx, "llm provider failed before its first token, trying the next", "provider", p.Name(), "err", err)
					break
				}
				c.cfg.Logger.InfoContext(ctx, "llm provider failed, retrying", "provider", p.Name(), "retry", try+1, "wait", wait, "err", err)
				if err := c.cfg.Sleep(ctx, wait); err != nil {
					yield(Chunk{}, err)
					return
				}
			}
		}
		yield(Chunk{}, fmt.Errorf("%w: %w", ErrAllProvidersFailed, errors.Join(failures...)))
	}
}

// retryWait decides whether a failed attempt is worth repeating and after how long: a
// retryable API error or dropped connection is, a first-token timeout or a refusal is not.
func (c *Chain) retryWait(err error, try int) (time.Duration, bool) {
	if try >= c.cfg.Retries || errors.Is(err, errFirstTokenTimeout) {
		return 0, false
	}
	var pe *Error
	if !errors.As(err, &pe) || !pe.Retryable() {
		return 0, false
	}
	if pe.RetryAfter > 0 {
		return pe.RetryAfter, pe.RetryAfter <= c.cfg.MaxRetryWait
	}
	ceiling := c.cfg.BackoffBase << try
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), true
}

// Health reports each provider's circuit, for health pages.
func (c *Chain) Health() []ProviderHealth {
	out := make([]ProviderHealth, len(c.providers))
	for i, p := range c.providers {
		out[i] = c.breakers[i].health(p.Name(), c.cfg.Now(), c.cfg.BreakerCooldown)
	}
	return out
}

// attempt streams one provider. started reports whether anything reached the caller (then the
// chain must not fall back); took is how long the provider took to its first chunk, or to its
// failure when it sent none (measured on the monotonic clock: it is a measurement, not a
// schedule); err is the provider's failure, if any.
func (c *Chain) attempt(ctx context.Context, p Provider, req Request, yield func(Chunk, error) bool) (started bool, took time.Duration, err error) {
	begin := time.Now()
	defer func() {
		if took == 0 {
			took = time.Since(begin)
		}
	}()
	attemptCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(c.cfg.FirstTokenTimeout, func() {
		timedOut.Store(true)
		cancel()
	})
	defer timer.Stop()
	for chunk, err := range p.Stream(attemptCtx, req) {
		if err != nil {
			if !started && timedOut.Load() {
				return false, 0, fmt.Errorf("%s: %w %s: %w", p.Name(), errFirstTokenTimeout, c.cfg.FirstTokenTimeout, err)
			}
			if started {
				yield(Chunk{}, err)
			}
			return started, took, err
		}
		if !started {
			if !timer.Stop() {
				// The timeout fired while this chunk was in flight; its context is gone.
				return false, 0, fmt.Errorf("%s: %w %s", p.Name(), errFirstTokenTimeout, c.cfg.FirstTokenTimeout)
			}
			started = true
			took = time.Since(begin)
		}
		chunk.Provider = p.Name()
		if !yield(chunk, nil) {
			return true, took, nil
		}
	}
	if !started {
		return false, 0, fmt.Errorf("%s: empty reply", p.Name())
	}
	return true, took, nil
}
