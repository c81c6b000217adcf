package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// This file holds what every HTTP speech provider in the package shares: one error type for a
// provider's refusal and the helpers that fill it from an HTTP answer. Nothing here is specific
// to speech synthesis or recognition.

// providerMaxErrorBody bounds how much of an error answer is read: enough for any JSON error
// object, little enough that a misbehaving server cannot make us buffer an audio file.
const providerMaxErrorBody = 64 << 10

// ProviderError is a speech provider's refusal or failure: a non-2xx HTTP answer with the
// provider's own message, a transport failure (Status 0) or a broken protocol (Status 0 or the
// 2xx status of an answer that was not what the protocol promises). The router uses Retryable
// and RetryAfter to choose between waiting, trying the next provider and giving up.
type ProviderError struct {
	// Provider is the provider's Name() ("openai", "elevenlabs", "f5-tts").
	Provider string
	// Op is what was asked of it: "tts" or "stt".
	Op string
	// Status is the HTTP status, 0 when no HTTP answer arrived.
	Status int
	// Code is the provider's machine-readable code when it sent one: OpenAI's error.code
	// ("invalid_api_key", "rate_limit_exceeded"), ElevenLabs' detail.status ("quota_exceeded").
	Code string
	// Message is the provider's human-readable message, or a description of the failure.
	Message string
	// RetryAfter is how long the provider asked us to wait (Retry-After, retry-after-ms); 0 when
	// it did not say.
	RetryAfter time.Duration
	// Err is the underlying cause (a network error), if any.
	Err error
}

// Error reads like "openai tts: HTTP 429: Rate limit reached (rate_limit_exceeded); retry
// after 2s".
func (e *ProviderError) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.Status)
	}
	msg := e.Message
	if e.Err != nil {
		if msg == "" {
			msg = e.Err.Error()
		} else {
			msg += ": " + e.Err.Error()
		}
	}
	b.WriteString(msg)
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.RetryAfter > 0 {
		b.WriteString("; retry after " + e.RetryAfter.String())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *ProviderError) Unwrap() error { return e.Err }

// Retryable reports whether asking again, here later or at another provider now, may succeed:
// transport failures, timeouts, rate limits and server errors, but not bad requests, bad keys
// or exhausted quotas, which fail the same way every time.
func (e *ProviderError) Retryable() bool {
	switch {
	case e.Status == 0, e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooEarly,
		e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	return false
}

// providerDo sends req and returns the response when its status is 2xx. A transport failure
// becomes a *ProviderError with Status 0, except that a cancelled or expired ctx is returned as
// itself (wrapped), so callers can tell "we gave up" from "the provider failed". A non-2xx
// answer is read, closed and returned as a *ProviderError.
func providerDo(client *http.Client, req *http.Request, provider, op string) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", provider, op, ctxErr)
		}
		return nil, &ProviderError{Provider: provider, Op: op, Message: "request failed", Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, providerHTTPError(provider, op, resp, time.Now())
	}
	return resp, nil
}

// providerHTTPError turns an error answer into a *ProviderError and closes its body. It knows
// the shapes speech APIs use: OpenAI's {"error":{"message","type","code"}}, ElevenLabs'
// {"detail":{"status","message"}}, FastAPI's {"detail":"..."} and {"detail":[{"msg"}]}, the
// {"error":"..."} of small self-hosted servers and {"message":"..."}; anything else is quoted
// as text.
func providerHTTPError(provider, op string, resp *http.Response, now time.Time) *ProviderError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, providerMaxErrorBody))
	e := &ProviderError{
		Provider:   provider,
		Op:         op,
		Status:     resp.StatusCode,
		RetryAfter: providerRetryAfter(resp.Header, now),
	}
	e.Code, e.Message = providerErrorDetail(body)
	if e.Message == "" {
		e.Message = providerSnippet(body)
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// providerErrorDetail extracts a code and a message from a JSON error body; both are empty when
// the body is not one of the known shapes.
func providerErrorDetail(body []byte) (code, message string) {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Detail  json.RawMessage `json:"detail"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &env) != nil {
		return "", ""
	}
	for _, raw := range []json.RawMessage{env.Error, env.Detail} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var str string
		var obj struct {
			Message string          `json:"message"`
			Code    json.RawMessage `json:"code"`
			Status  string          `json:"status"` // ElevenLabs names its code "status"
			Type    string          `json:"type"`
		}
		var list []struct {
			Msg string `json:"msg"`
		}
		switch {
		case json.Unmarshal(raw, &str) == nil && str != "":
			return "", str
		case json.Unmarshal(raw, &obj) == nil && obj.Message != "":
			return providerErrorCode(obj.Code, obj.Status, obj.Type), obj.Message
		case json.Unmarshal(raw, &list) == nil && len(list) > 0:
			msgs := make([]string, 0, len(list))
			for _, item := range list {
				if item.Msg != "" {
					msgs = append(msgs, item.Msg)
				}
			}
			if len(msgs) > 0 {
				return "", strings.Join(msgs, "; ")
			}
		}
	}
	return "", env.Message
}

// providerErrorCode picks the most specific code an error object carries. OpenAI's code is a
// string but some compatible servers send a number.
func providerErrorCode(code json.RawMessage, status, typ string) string {
	var s string
	if json.Unmarshal(code, &s) == nil && s != "" {
		return s
	}
	if len(code) > 0 {
		if _, err := strconv.ParseFloat(string(code), 64); err == nil {
			return string(code)
		}
	}
	if status != "" {
		return status
	}
	return typ
}

// providerRetryAfter reads how long a provider asked us to wait: OpenAI's retry-after-ms, or
// Retry-After in seconds or as an HTTP date; 0 when the headers say nothing usable.
func providerRetryAfter(h http.Header, now time.Time) time.Duration {
	const maxSeconds = float64(math.MaxInt64/int64(time.Second)) / 2
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && ms/1000 < maxSeconds {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs >= 0 && secs < maxSeconds {
			return time.Duration(secs * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// providerSnippet shortens a body for an error message.
func providerSnippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// providerStream is a streamed response body whose read errors say which provider they come
// from; io.EOF passes through untouched so it still ends the stream. A cancelled context shows
// through errors.Is.
type providerStream struct {
	body     io.ReadCloser
	provider string
	op       string
}

func (s *providerStream) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s %s: reading the audio stream: %w", s.provider, s.op, err)
	}
	return n, err
}

func (s *providerStream) Close() error { return s.body.Close() }

// providerContextErr reports ctx's error wrapped with the provider's name, or nil.
func providerContextErr(ctx context.Context, provider, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", provider, op, err)
	}
	return nil
}
