package apiclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RetryPolicy says how a client repeats a request the service turned away for now (429),
// failed on (5xx) or never answered. Which failures may be repeated is the client's call
// (see Run): repeating a send can deliver twice, repeating an insert can create twice.
type RetryPolicy struct {
	// Retries is how many more attempts follow a retryable failure; negative means none.
	// Default 2.
	Retries int
	// Backoff is the wait before the first retry when the service names none; it doubles per
	// retry. Default 1s.
	Backoff time.Duration
	// MaxWait bounds a wait the service asks for (Retry-After): asked to wait longer, the
	// client gives up at once and the error's RetryAfter says when to try again. Default 30s.
	MaxWait time.Duration
	// Sleep waits between attempts, returning early with ctx's error. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// WithDefaults fills the zero fields.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.Retries == 0 {
		p.Retries = 2
	}
	if p.Backoff <= 0 {
		p.Backoff = time.Second
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 30 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = Sleep
	}
	return p
}

// Run calls attempt until it succeeds, fails in a way retryable does not accept, or the
// retries are spent; the error is the last attempt's. retryable says whether a failure may
// be repeated and how long the service asked to wait (0: the policy's backoff).
func (p RetryPolicy) Run(ctx context.Context, logger *slog.Logger, request string,
	retryable func(error) (delay time.Duration, ok bool), attempt func(ctx context.Context) error) error {
	for try := 0; ; try++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || try >= p.Retries {
			return err
		}
		wait, ok := retryable(err)
		if !ok || wait > p.MaxWait {
			return err
		}
		if wait <= 0 {
			wait = p.Backoff << try
		}
		logger.InfoContext(ctx, "request failed, retrying", "request", request, "retry", try+1, "wait", wait, "err", err)
		if serr := p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (stopped waiting to retry: %w)", err, serr)
		}
	}
}
