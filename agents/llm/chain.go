package llm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync/atomic"
	"time"
)

// ChainConfig configures a Chain.
type ChainConfig struct {
	// FirstTokenTimeout is how long a provider may take to produce its first chunk before the
	// chain gives up on it and asks the next one. Default 15s.
	FirstTokenTimeout time.Duration
	// Logger receives a line per fallback. Default slog.Default().
	Logger *slog.Logger
}

// Chain asks its providers in order. A provider that fails or stays silent past the first-token
// timeout is skipped for the next one; once a provider has streamed, its failure is reported to
// the caller rather than silently truncated.
type Chain struct {
	providers []Provider
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
	return &Chain{providers: providers, cfg: cfg}
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
		for _, p := range c.providers {
			started, err := c.attempt(ctx, p, req, yield)
			if started || err == nil {
				return
			}
			if ctx.Err() != nil {
				yield(Chunk{}, ctx.Err())
				return
			}
			failures = append(failures, err)
			c.cfg.Logger.WarnContext(ctx, "llm provider failed before its first token, trying the next", "provider", p.Name(), "err", err)
		}
		yield(Chunk{}, fmt.Errorf("%w: %w", ErrAllProvidersFailed, errors.Join(failures...)))
	}
}

// attempt streams one provider. started reports whether anything reached the caller (then the
// chain must not fall back); err is the provider's failure, if any.
func (c *Chain) attempt(ctx context.Context, p Provider, req Request, yield func(Chunk, error) bool) (started bool, err error) {
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
				return false, fmt.Errorf("%s: no first token within %s: %w", p.Name(), c.cfg.FirstTokenTimeout, err)
			}
			if started {
				yield(Chunk{}, err)
			}
			return started, err
		}
		if !started {
			if !timer.Stop() {
				// The timeout fired while this chunk was in flight; its context is gone.
				return false, fmt.Errorf("%s: no first token within %s", p.Name(), c.cfg.FirstTokenTimeout)
			}
			started = true
		}
		chunk.Provider = p.Name()
		if !yield(chunk, nil) {
			return true, nil
		}
	}
	if !started {
		return false, fmt.Errorf("%s: empty reply", p.Name())
	}
	return true, nil
}
