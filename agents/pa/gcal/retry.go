package gcal

import (
	"errors"
	"net/http"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apiclient"
)

// RetryPolicy says how the client repeats a request Google turned away for now (429, a
// rate-limit 403), failed on (5xx) or never answered. Inserts are repeated only when Google
// certainly did not act on them (429, rate-limit 403, a token that could not be had), since
// a duplicated event stays in the user's calendar.
type RetryPolicy = apiclient.RetryPolicy

// retryWhen turns a yes/no on a failure into what RetryPolicy.Run asks, with Google's wait.
func retryWhen(accept func(error) bool) func(error) (time.Duration, bool) {
	return func(err error) (time.Duration, bool) { return retryAfter(err), accept(err) }
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
