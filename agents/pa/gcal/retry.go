package gcal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apiclient"
)

// RetryPolicy says how the client repeats a request Google turned away for now (429, a
// rate-limit 403), failed on (5xx) or never answered. Inserts are repeated only when Google
// certainly did not act on them (429, rate-limit 403, a token that could not be had), since
// a duplicated event stays in the user's calendar.
type RetryPolicy struct {
	// Retries is how many more attempts follow a retryable failure; negative means none.
	// Default 2.
	Retries int
	// Backoff is the wait before the first retry when Google names none; it doubles per
	// retry. Default 1s.
	Backoff time.Duration
	// MaxWait bounds a wait Google asks for (Retry-After): asked to wait longer, the client
	// gives up at once and the error's RetryAfter says when to try again. Default 30s.
	MaxWait time.Duration
	// Sleep waits between attempts, returning early with ctx's error. Default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p RetryPolicy) withDefaults() RetryPolicy {
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
		p.Sleep = sleep
	}
	return p
}

// run calls attempt until it succeeds, fails in a way retry does not accept, or the retries
// are spent; the error is the last attempt's.
func (p RetryPolicy) run(ctx context.Context, logger *slog.Logger, what string, retry func(error) bool, attempt func(ctx context.Context) error) error {
	for try := 0; ; try++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || try >= p.Retries || !retry(err) {
			return err
		}
		wait := retryAfter(err)
		if wait > p.MaxWait {
			return err
		}
		if wait <= 0 {
			wait = p.Backoff << try
		}
		logger.InfoContext(ctx, "google calendar request failed, retrying", "request", what, "retry", try+1, "wait", wait, "err", err)
		if serr := p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (stopped waiting to retry: %w)", err, serr)
		}
	}
}

// anyRetryable accepts every failure that may pass, for requests that are safe to repeat.
func anyRetryable(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	var te *TokenError
	return errors.As(err, &te) && te.Retryable()
}

// refused accepts only failures where Google did not act on the request.
func refused(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.rateLimited()
	}
	var te *TokenError
	return errors.As(err, &te) && te.Retryable()
}

func retryAfter(err error) time.Duration {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	var te *TokenError
	if errors.As(err, &te) {
		return te.RetryAfter
	}
	return 0
}

// The HTTP plumbing the service clients share lives in apiclient.
var (
	sleep           = apiclient.Sleep
	retryableStatus = apiclient.RetryableStatus
	parseRetryAfter = apiclient.ParseRetryAfter
	snippet         = apiclient.Snippet
	redacted        = apiclient.Redacted
)

// maxResponseBody caps what is read of an answer: a page of 2,500 events fits, and a proxy's
// error page must not be read without end.
const maxResponseBody = 32 << 20

// exchange sends req and reads the answer's body.
func exchange(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	return apiclient.Exchange(client, req, maxResponseBody)
}
