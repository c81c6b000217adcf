// Package llm holds the language-model providers behind one streaming interface, and the chain
// that falls back from one to the next.
package llm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Message is one entry of the conversation sent to a model.
type Message struct {
	Role    string // "user", "assistant" or "tool"
	Content string
	// ToolCalls are the tools an assistant message asked for (sent back to the model in a tool
	// loop, followed by one "tool" message per call).
	ToolCalls []ToolCall `json:",omitempty"`
	// ToolCallID names the call a "tool" message answers; Content is the tool's result.
	ToolCallID string `json:",omitempty"`
}

// Request is a provider-neutral chat request.
type Request struct {
	// Model overrides the provider's default model when set.
	Model string
	// System is the system prompt.
	System string
	// CachePrefix is how many leading bytes of System stay the same from request to request.
	// Providers with explicit prompt caching (Anthropic) mark that prefix as cacheable; OpenAI
	// caches stable prefixes on its own. 0 marks nothing.
	CachePrefix int
	// Messages is the conversation, oldest first, ending with the user's turn.
	Messages []Message
	// Temperature is passed through when set.
	Temperature *float64
	// MaxTokens bounds the reply; 0 means the provider's default.
	MaxTokens int
	// Tools the model may call instead of (or before) answering; see Chunk.ToolCalls.
	// Providers that cannot call tools ignore them and answer in text (Anthropic, offline).
	Tools []Tool
}

// Usage is what a provider reports it consumed. The input counts are disjoint (InputTokens
// excludes cache reads and cache writes), so each token is priced exactly once.
type Usage struct {
	InputTokens       int64 `json:"input"`
	CachedInputTokens int64 `json:"cachedInput"`
	CacheWriteTokens  int64 `json:"cacheWrite"`
	OutputTokens      int64 `json:"output"`
}

// Chunk is one piece of a streamed reply: text as it is generated, and a last chunk with the
// usage. Provider and Model name who actually answered.
type Chunk struct {
	Text     string
	Usage    *Usage
	Provider string
	Model    string
	// Cached marks a reply replayed from the response cache: no provider was called.
	Cached bool
	// ToolCalls are the calls the model asked for, complete (their arguments assembled from
	// the stream), in one chunk before the usage.
	ToolCalls []ToolCall
}

// Provider streams a reply. The sequence yields text chunks, then a chunk carrying usage; an
// error ends it. Implementations stop promptly when ctx ends.
type Provider interface {
	Name() string
	Stream(ctx context.Context, req Request) iter.Seq2[Chunk, error]
}

// Error is a failure reported by a provider's API.
type Error struct {
	Provider   string
	StatusCode int           // HTTP status, 0 for transport errors
	RetryAfter time.Duration // from a Retry-After header, when given
	Message    string
	Err        error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.StatusCode, msg)
	}
	return fmt.Sprintf("%s: %s", e.Provider, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether trying again (here or elsewhere) may succeed.
func (e *Error) Retryable() bool {
	return e.StatusCode == 0 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout || e.StatusCode >= 500
}

// ErrNoProviders is returned by a chain with nothing in it.
var ErrNoProviders = errors.New("llm: no providers configured")

// ErrAllProvidersFailed is returned when every provider of a chain failed.
var ErrAllProvidersFailed = errors.New("llm: every provider failed")

// parseRetryAfter reads a Retry-After header given in seconds or as an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	// Past what a Duration holds (Inf included) the conversion below overflows; such a value is
	// as malformed as any other.
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs < float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
