package llm

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, time.March, 4, 15, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		value string // "" means no header
		want  time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"zero seconds", "0", 0},
		{"fractional seconds", "1.5", 1500 * time.Millisecond},
		{"a day", "86400", 24 * time.Hour},
		{"negative", "-3", 0},
		{"garbage", "soon", 0},
		{"not a number", "NaN", 0},
		{"infinite", "Inf", 0},
		{"too many seconds for a Duration", "1e300", 0},
		{"HTTP date (IMF-fixdate)", "Tue, 04 Mar 2025 15:05:35 GMT", 90 * time.Second},
		{"HTTP date (RFC 850)", "Tuesday, 04-Mar-25 15:05:35 GMT", 90 * time.Second},
		{"HTTP date (asctime)", "Tue Mar  4 15:05:35 2025", 90 * time.Second},
		{"HTTP date now", "Tue, 04 Mar 2025 15:04:05 GMT", 0},
		{"HTTP date past", "Tue, 04 Mar 2025 15:00:00 GMT", 0},
		{"date in another format", "2025-03-04T15:05:35Z", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.value != "" {
				h.Set("Retry-After", tc.value)
			}
			if got := parseRetryAfter(h, now); got != tc.want {
				t.Errorf("Retry-After %q: got %s, want %s", tc.value, got, tc.want)
			}
		})
	}
}

func TestError(t *testing.T) {
	for _, tc := range []struct {
		err       *Error
		text      string
		retryable bool
	}{
		{&Error{Provider: "openai", StatusCode: 500, Message: "boom"}, "openai: HTTP 500: boom", true},
		{&Error{Provider: "openai", StatusCode: 503, Message: "busy"}, "openai: HTTP 503: busy", true},
		{&Error{Provider: "anthropic", StatusCode: 529, Message: "overloaded_error: Overloaded"}, "anthropic: HTTP 529: overloaded_error: Overloaded", true},
		{&Error{Provider: "openai", StatusCode: 429, Message: "slow down"}, "openai: HTTP 429: slow down", true},
		{&Error{Provider: "openai", StatusCode: 408, Message: "timeout"}, "openai: HTTP 408: timeout", true},
		{&Error{Provider: "openai", StatusCode: 400, Message: "bad request"}, "openai: HTTP 400: bad request", false},
		{&Error{Provider: "anthropic", StatusCode: 401, Message: "authentication_error: invalid x-api-key"}, "anthropic: HTTP 401: authentication_error: invalid x-api-key", false},
		{&Error{Provider: "anthropic", StatusCode: 404, Message: "not_found_error: model"}, "anthropic: HTTP 404: not_found_error: model", false},
		{&Error{Provider: "anthropic", Err: io.ErrUnexpectedEOF}, "anthropic: unexpected EOF", true},
		{&Error{Provider: "anthropic", Message: "stream ended before message_stop", Err: io.ErrUnexpectedEOF}, "anthropic: stream ended before message_stop", true},
	} {
		if got := tc.err.Error(); got != tc.text {
			t.Errorf("Error() = %q, want %q", got, tc.text)
		}
		if got := tc.err.Retryable(); got != tc.retryable {
			t.Errorf("%q: Retryable() = %v, want %v", tc.text, got, tc.retryable)
		}
		if tc.err.Err != nil && !errors.Is(tc.err, tc.err.Err) {
			t.Errorf("%q does not unwrap to %v", tc.text, tc.err.Err)
		}
	}
}
