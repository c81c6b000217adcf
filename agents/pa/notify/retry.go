package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apiclient"
)

// RetryPolicy says how a client repeats a request the service turned away for now (429),
// failed on (5xx) or never answered. Repeating a send after a 5xx or a lost answer can deliver
// twice; for a reminder a duplicate is the lesser harm than silence.
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

// retryable is what the clients' errors tell the retry loop.
type retryable interface {
	error
	Retryable() bool
	retryDelay() time.Duration
}

// run calls attempt until it succeeds, fails for good, or the retries are spent; the error is
// the last attempt's.
func (p RetryPolicy) run(ctx context.Context, logger *slog.Logger, service string, attempt func(ctx context.Context) error) error {
	for try := 0; ; try++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		wait, ok := p.retryWait(err, try)
		if !ok {
			return err
		}
		logger.InfoContext(ctx, "notification failed, retrying", "service", service, "retry", try+1, "wait", wait, "err", err)
		if serr := p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (stopped waiting to retry: %w)", err, serr)
		}
	}
}

func (p RetryPolicy) retryWait(err error, try int) (time.Duration, bool) {
	var re retryable
	if try >= p.Retries || !errors.As(err, &re) || !re.Retryable() {
		return 0, false
	}
	if d := re.retryDelay(); d > 0 {
		return d, d <= p.MaxWait
	}
	return p.Backoff << try, true
}

// The HTTP plumbing the service clients share lives in apiclient.
var (
	sleep           = apiclient.Sleep
	retryableStatus = apiclient.RetryableStatus
	parseRetryAfter = apiclient.ParseRetryAfter
	snippet         = apiclient.Snippet
	redacted        = apiclient.Redacted
)

// maxResponseBody caps what is read of an answer: the services answer in a few hundred bytes,
// and a proxy's error page must not be read without end.
const maxResponseBody = 1 << 20

// exchange sends req and reads the answer's body.
func exchange(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	return apiclient.Exchange(client, req, maxResponseBody)
}
