// Package apiclient holds the HTTP plumbing the personal assistant's service clients (SendGrid,
// Twilio, Google Calendar) share: reading answers with a bound, Retry-After, which failures
// are worth another try, and keeping secrets out of printed configuration.
package apiclient

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sleep waits d, or less when ctx ends first (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RetryableStatus reports whether a status (0: no answer at all) is worth trying again. A
// cancelled context is the caller's decision, not a failure to work around.
func RetryableStatus(status int, err error) bool {
	if status == 0 {
		return !errors.Is(err, context.Canceled)
	}
	return status == http.StatusTooManyRequests || status >= 500
}

// ParseRetryAfter reads a Retry-After header given in seconds or as an HTTP date.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	// Past what a Duration holds (Inf included) the conversion overflows; such a value is as
	// malformed as any other.
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs < float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Exchange sends req and reads at most limit bytes of the answer's body: a proxy's error page
// must not be read without end.
func Exchange(client *http.Client, req *http.Request, limit int64) (*http.Response, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return resp, nil, err
	}
	return resp, body, nil
}

// Snippet is the start of a body that was not the service's JSON, for an error message.
func Snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// Redacted stands for a secret in printed configuration.
func Redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}
