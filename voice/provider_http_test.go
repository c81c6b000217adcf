package voice

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestProviderRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "30"}, 30 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"milliseconds win", map[string]string{"Retry-After": "30", "Retry-After-Ms": "250"}, 250 * time.Millisecond},
		{"HTTP date", map[string]string{"Retry-After": now.Add(2 * time.Minute).Format(http.TimeFormat)}, 2 * time.Minute},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"negative", map[string]string{"Retry-After": "-5"}, 0},
		{"absurd", map[string]string{"Retry-After": "1e300"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"garbage milliseconds fall back", map[string]string{"Retry-After": "4", "Retry-After-Ms": "x"}, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := providerRetryAfter(h, now); got != tt.want {
				t.Errorf("providerRetryAfter(%v) = %v; want %v", tt.header, got, tt.want)
			}
		})
	}
}

func TestProviderHTTPError(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		code    string
		message string
	}{
		{"openai", 400, `{"error":{"message":"Input too long","type":"invalid_request_error","param":"input","code":"string_above_max_length"}}`, "string_above_max_length", "Input too long"},
		{"openai numeric code", 400, `{"error":{"message":"bad","code":400}}`, "400", "bad"},
		{"openai type only", 500, `{"error":{"message":"oops","type":"server_error","code":null}}`, "server_error", "oops"},
		{"elevenlabs", 401, `{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}`, "invalid_api_key", "Invalid API key"},
		{"elevenlabs code field", 429, `{"detail":{"type":"rate_limit","code":"system_busy","message":"Busy"}}`, "system_busy", "Busy"},
		{"fastapi string", 404, `{"detail":"Not Found"}`, "", "Not Found"},
		{"fastapi validation", 422, `{"detail":[{"msg":"field required"},{"msg":"value is not a valid float"}]}`, "", "field required; value is not a valid float"},
		{"plain error string", 500, `{"error":"Failed to generate speech"}`, "", "Failed to generate speech"},
		{"message only", 503, `{"message":"maintenance"}`, "", "maintenance"},
		{"text", 502, "  upstream timed out \n", "", "upstream timed out"},
		{"empty", 504, "", "", "Gateway Timeout"},
		{"long text is cut", 500, strings.Repeat("x", 1000), "", strings.Repeat("x", 300) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &ttsTrackedBody{Reader: strings.NewReader(tt.body)}
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Retry-After": {"2"}}, Body: body}
			e := providerHTTPError("prov", "stt", resp, time.Now())
			if e.Provider != "prov" || e.Op != "stt" || e.Status != tt.status || e.Code != tt.code || e.Message != tt.message || e.RetryAfter != 2*time.Second {
				t.Errorf("error = %+v; want code %q message %q", e, tt.code, tt.message)
			}
			if !body.closed {
				t.Error("the body was not closed")
			}
		})
	}
}

// ttsTrackedBody records whether it was closed.
type ttsTrackedBody struct {
	io.Reader
	closed bool
}

func (b *ttsTrackedBody) Close() error { b.closed = true; return nil }

func TestProviderErrorText(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		err       *ProviderError
		want      string
		retryable bool
	}{
		{&ProviderError{Provider: "openai", Op: "tts", Status: 429, Code: "rate_limit_exceeded", Message: "Slow down", RetryAfter: 2 * time.Second},
			"openai tts: HTTP 429: Slow down (rate_limit_exceeded); retry after 2s", true},
		{&ProviderError{Provider: "elevenlabs", Op: "tts", Status: 401, Code: "quota_exceeded", Message: "No quota"},
			"elevenlabs tts: HTTP 401: No quota (quota_exceeded)", false},
		{&ProviderError{Provider: "f5-tts", Op: "tts", Message: "connecting failed", Err: cause},
			"f5-tts tts: connecting failed: connection refused", true},
		{&ProviderError{Provider: "x", Status: 400, Message: "bad"}, "x: HTTP 400: bad", false},
		{&ProviderError{Provider: "x", Status: 408}, "x: HTTP 408: ", true},
		{&ProviderError{Provider: "x", Status: 503}, "x: HTTP 503: ", true},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
		if got := tt.err.Retryable(); got != tt.retryable {
			t.Errorf("%q: Retryable = %v; want %v", tt.want, got, tt.retryable)
		}
	}
	if err := error(&ProviderError{Provider: "x", Err: cause}); !errors.Is(err, cause) {
		t.Error("Unwrap does not reach the cause")
	}
}
