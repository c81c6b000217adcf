package notify

import (
	"errors"
	"net/http"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apiclient"
)

// RetryPolicy says how a client repeats a request the service turned away for now (429),
// failed on (5xx) or never answered. Repeating a send after a 5xx or a lost answer can deliver
// twice; for a reminder a duplicate is the lesser harm than silence.
type RetryPolicy = apiclient.RetryPolicy

// retryable is what the clients' errors tell the retry loop.
type retryable interface {
	error
	Retryable() bool
	retryDelay() time.Duration
}

// sendRetryable lets RetryPolicy.Run repeat what the service says may pass, after the wait it
// names.
func sendRetryable(err error) (time.Duration, bool) {
	var re retryable
	if !errors.As(err, &re) || !re.Retryable() {
		return 0, false
	}
	return re.retryDelay(), true
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
