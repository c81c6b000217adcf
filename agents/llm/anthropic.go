package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"
)

// AnthropicConfig configures the Anthropic Messages API provider.
type AnthropicConfig struct {
	// Name reported as the provider. Default "anthropic".
	Name string
	// APIKey is sent as x-api-key. Required by the real API.
	APIKey string
	// BaseURL of the API, without the version path. Default "https://api.anthropic.com".
	BaseURL string
	// Model used when the request names none. Default "claude-haiku-4-5".
	Model string
	// MaxTokens is sent when the request sets none (the API requires it). Default 1024.
	MaxTokens int
	// Version is the anthropic-version header. Default "2023-06-01".
	Version string
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// Anthropic streams replies from the Messages API over plain HTTP.
type Anthropic struct {
	cfg AnthropicConfig
}

var _ Provider = (*Anthropic)(nil)

// NewAnthropic builds the provider.
func NewAnthropic(cfg AnthropicConfig) *Anthropic {
	if cfg.Name == "" {
		cfg.Name = "anthropic"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.anthropic.com"
	}
	if cfg.Model == "" {
		cfg.Model = "claude-haiku-4-5"
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 1024
	}
	if cfg.Version == "" {
		cfg.Version = "2023-06-01"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &Anthropic{cfg: cfg}
}

// Name implements Provider.
func (a *Anthropic) Name() string { return a.cfg.Name }

type anthropicMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type anthropicRequest struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	// System is a string, or text blocks when a prefix is marked for prompt caching.
	System      any                `json:"system,omitempty"`
	Messages    []anthropicMessage `json:"messages"`
	Temperature *float64           `json:"temperature,omitempty"`
	Stream      bool               `json:"stream"`
}

type anthropicSystemBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	CacheControl *anthropicCache `json:"cache_control,omitempty"`
}

type anthropicCache struct {
	Type string `json:"type"`
}

// anthropicSystem marks the stable prefix of the system prompt with cache_control, so repeated
// turns read it from Anthropic's prompt cache (billed at the cache-read rate) instead of paying
// full input price; the part that changes per turn follows in its own block.
func anthropicSystem(system string, prefix int) any {
	if system == "" {
		return nil
	}
	if prefix <= 0 {
		return system
	}
	prefix = min(prefix, len(system))
	blocks := []anthropicSystemBlock{{Type: "text", Text: system[:prefix], CacheControl: &anthropicCache{Type: "ephemeral"}}}
	if rest := system[prefix:]; strings.TrimSpace(rest) != "" {
		blocks = append(blocks, anthropicSystemBlock{Type: "text", Text: rest})
	}
	return blocks
}

type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
}

type anthropicEvent struct {
	Type    string `json:"type"`
	Message struct {
		Model string         `json:"model"`
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	Delta struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"delta"`
	Usage anthropicUsage `json:"usage"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// anthropicMessages merges consecutive turns of the same role and drops leading assistant turns:
// the API wants alternating roles starting with the user.
//
// Tools are not implemented for Anthropic (Request.Tools is ignored: the model answers in
// text). A conversation that already went through a tool loop elsewhere (the chain fell back
// mid-loop) is still sent, with the calls and their results written out as text, so no turn
// is empty, which the API refuses.
func anthropicMessages(msgs []Message) []anthropicMessage {
	out := make([]anthropicMessage, 0, len(msgs))
	for _, m := range msgs {
		role := "user"
		if m.Role == "assistant" {
			role = "assistant"
		}
		switch {
		case m.Role == "tool":
			m.Content = "Tool result: " + m.Content
		case len(m.ToolCalls) > 0:
			var b strings.Builder
			b.WriteString(m.Content)
			for _, c := range m.ToolCalls {
				fmt.Fprintf(&b, "\n[called tool %s with %s]", c.Name, c.Arguments)
			}
			m.Content = strings.TrimSpace(b.String())
		}
		if m.Content == "" && m.Role != "user" && m.Role != "" {
			continue
		}
		if len(out) == 0 && role == "assistant" {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Role == role {
			out[n-1].Content += "\n\n" + m.Content
			continue
		}
		out = append(out, anthropicMessage{Role: role, Content: m.Content})
	}
	return out
}

// Stream implements Provider.
func (a *Anthropic) Stream(ctx context.Context, req Request) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		body := anthropicRequest{
			Model:       req.Model,
			MaxTokens:   req.MaxTokens,
			System:      anthropicSystem(req.System, req.CachePrefix),
			Messages:    anthropicMessages(req.Messages),
			Temperature: req.Temperature,
			Stream:      true,
		}
		if body.Model == "" {
			body.Model = a.cfg.Model
		}
		if body.MaxTokens <= 0 {
			body.MaxTokens = a.cfg.MaxTokens
		}
		payload, err := json.Marshal(body)
		if err != nil {
			yield(Chunk{}, &Error{Provider: a.cfg.Name, Err: err})
			return
		}
		httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(a.cfg.BaseURL, "/")+"/v1/messages", bytes.NewReader(payload))
		if err != nil {
			yield(Chunk{}, &Error{Provider: a.cfg.Name, Err: err})
			return
		}
		httpReq.Header.Set("content-type", "application/json")
		httpReq.Header.Set("accept", "text/event-stream")
		httpReq.Header.Set("x-api-key", a.cfg.APIKey)
		httpReq.Header.Set("anthropic-version", a.cfg.Version)
		resp, err := a.cfg.HTTPClient.Do(httpReq)
		if err != nil {
			yield(Chunk{}, &Error{Provider: a.cfg.Name, Err: err})
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			yield(Chunk{}, a.statusError(resp))
			return
		}
		model := body.Model
		var usage Usage
		for ev, err := range readSSE(resp.Body) {
			if err != nil {
				yield(Chunk{}, &Error{Provider: a.cfg.Name, Err: err})
				return
			}
			var data anthropicEvent
			if len(ev.Data) > 0 {
				if err := json.Unmarshal(ev.Data, &data); err != nil {
					yield(Chunk{}, &Error{Provider: a.cfg.Name, Message: fmt.Sprintf("bad %q event: %v", ev.Event, err), Err: err})
					return
				}
			}
			switch data.Type {
			case "message_start":
				if data.Message.Model != "" {
					model = data.Message.Model
				}
				u := data.Message.Usage
				// Anthropic reports the three input kinds apart; each has its own price.
				usage.InputTokens = u.InputTokens
				usage.CachedInputTokens = u.CacheReadInputTokens
				usage.CacheWriteTokens = u.CacheCreationInputTokens
				usage.OutputTokens = u.OutputTokens
			case "content_block_delta":
				if data.Delta.Type == "text_delta" && data.Delta.Text != "" {
					if !yield(Chunk{Text: data.Delta.Text, Model: model}, nil) {
						return
					}
				}
			case "message_delta":
				if data.Usage.OutputTokens > 0 {
					usage.OutputTokens = data.Usage.OutputTokens
				}
			case "message_stop":
				yield(Chunk{Usage: &usage, Model: model}, nil)
				return
			case "error":
				status := 0
				if data.Error.Type == "overloaded_error" {
					status = 529
				}
				yield(Chunk{}, &Error{Provider: a.cfg.Name, StatusCode: status, Message: data.Error.Type + ": " + data.Error.Message})
				return
			}
		}
		yield(Chunk{}, &Error{Provider: a.cfg.Name, Message: "stream ended before message_stop"})
	}
}

func (a *Anthropic) statusError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	msg := http.StatusText(resp.StatusCode)
	var env struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &env) == nil && env.Error.Message != "" {
		msg = env.Error.Type + ": " + env.Error.Message
	}
	return &Error{
		Provider:   a.cfg.Name,
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header, time.Now()),
		Message:    msg,
	}
}
