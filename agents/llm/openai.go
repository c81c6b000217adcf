package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"
)

// maxToolCalls bounds the tool calls of one reply, so a broken upstream cannot make us grow
// the list without limit.
const maxToolCalls = 64

// OpenAIConfig configures the OpenAI provider; any OpenAI-compatible server (llama.cpp, vLLM,
// Ollama) works through BaseURL.
type OpenAIConfig struct {
	// Name reported as the provider. Default "openai".
	Name string
	// APIKey is sent as a Bearer token. May be empty for local servers.
	APIKey string
	// BaseURL of the API, including the version path. Default "https://api.openai.com/v1".
	BaseURL string
	// Model used when the request names none. Default "gpt-4o-mini".
	Model string
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// OpenAI streams chat completions through the official SDK.
type OpenAI struct {
	cfg    OpenAIConfig
	client openai.Client
}

var _ Provider = (*OpenAI)(nil)

// NewOpenAI builds the provider.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	if cfg.Name == "" {
		cfg.Name = "openai"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.openai.com/v1"
	}
	if cfg.Model == "" {
		cfg.Model = "gpt-4o-mini"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	opts := []option.RequestOption{
		option.WithBaseURL(strings.TrimSuffix(cfg.BaseURL, "/") + "/"),
		option.WithHTTPClient(cfg.HTTPClient),
		// Retries belong to the chain, which can also fall back to another provider.
		option.WithMaxRetries(0),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	} else {
		opts = append(opts, option.WithAPIKey("unused"))
	}
	return &OpenAI{cfg: cfg, client: openai.NewClient(opts...)}
}

// Name implements Provider.
func (o *OpenAI) Name() string { return o.cfg.Name }

// Stream implements Provider.
func (o *OpenAI) Stream(ctx context.Context, req Request) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		model := req.Model
		if model == "" {
			model = o.cfg.Model
		}
		params := openai.ChatCompletionNewParams{
			Model:         openai.ChatModel(model),
			Messages:      openAIMessages(req),
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		}
		if req.Temperature != nil {
			params.Temperature = openai.Float(*req.Temperature)
		}
		if req.MaxTokens > 0 {
			// max_tokens rather than max_completion_tokens: the compatible servers know it.
			params.MaxTokens = openai.Int(int64(req.MaxTokens))
		}
		for _, t := range req.Tools {
			fn := shared.FunctionDefinitionParam{Name: t.Name, Parameters: shared.FunctionParameters(t.Parameters)}
			if t.Description != "" {
				fn.Description = openai.String(t.Description)
			}
			params.Tools = append(params.Tools, openai.ChatCompletionFunctionTool(fn))
		}
		// The SDK builds and sends the request (auth, base URL, error statuses as
		// *openai.Error); the stream is read here. The SDK's own stream decoder walks every
		// chunk twice through reflection, which capped the relay at about 20,000 tokens/s;
		// a chunk decoded once into the few fields we use costs a fraction of that.
		var resp *http.Response
		if err := o.client.Post(ctx, "chat/completions", params, &resp, option.WithJSONSet("stream", true)); err != nil {
			yield(Chunk{}, o.wrapErr(err))
			return
		}
		defer resp.Body.Close()
		var usage *Usage
		finished := false
		answeredModel := model
		// Tool calls stream as fragments keyed by index: the first names the call, the rest
		// append pieces of its JSON arguments.
		var calls []ToolCall
		announced := false
		for ev, err := range readSSE(resp.Body) {
			if err != nil {
				yield(Chunk{}, o.wrapErr(err))
				return
			}
			if bytes.HasPrefix(ev.Data, []byte("[DONE]")) {
				break
			}
			chunk, err := decodeStreamChunk(ev.Data)
			if err != nil {
				yield(Chunk{}, &Error{Provider: o.cfg.Name, Message: fmt.Sprintf("malformed stream chunk: %v", err), Err: err})
				return
			}
			if chunk.Error != "" {
				yield(Chunk{}, &Error{Provider: o.cfg.Name, Message: "error in the stream: " + chunk.Error})
				return
			}
			if chunk.Model != "" {
				answeredModel = chunk.Model
			}
			if u := chunk.Usage; u != nil && (u.PromptTokens > 0 || u.CompletionTokens > 0) {
				cached := u.PromptTokensDetails.CachedTokens
				usage = &Usage{
					InputTokens:       u.PromptTokens - cached,
					CachedInputTokens: cached,
					OutputTokens:      u.CompletionTokens,
				}
			}
			for _, choice := range chunk.Choices {
				if choice.FinishReason != "" {
					finished = true
				}
				for _, d := range choice.Delta.ToolCalls {
					if d.Index < 0 || d.Index >= maxToolCalls {
						yield(Chunk{}, &Error{Provider: o.cfg.Name, Message: fmt.Sprintf("tool call index %d out of range", d.Index)})
						return
					}
					for int64(len(calls)) <= d.Index {
						calls = append(calls, ToolCall{})
					}
					c := &calls[d.Index]
					if d.ID != "" {
						c.ID = d.ID
					}
					// OpenAI names the call in its first fragment; some compatible servers
					// repeat the name in every fragment.
					if d.Function.Name != c.Name {
						c.Name += d.Function.Name
					}
					c.Arguments += d.Function.Arguments
					if !announced {
						// An empty chunk tells the caller (and the chain's first-token timer)
						// that the model is answering, before the call is complete.
						announced = true
						if !yield(Chunk{Model: answeredModel}, nil) {
							return
						}
					}
				}
				if choice.Delta.Content == "" {
					continue
				}
				if !yield(Chunk{Text: choice.Delta.Content, Model: answeredModel}, nil) {
					return
				}
			}
		}
		if !finished {
			// A body that ends without a finish reason was cut off upstream; passing it on as a
			// complete reply would be a silent truncation.
			yield(Chunk{}, &Error{Provider: o.cfg.Name, Message: "stream ended before the reply finished"})
			return
		}
		if len(calls) > 0 {
			if !yield(Chunk{ToolCalls: calls, Model: answeredModel}, nil) {
				return
			}
		}
		if usage == nil {
			usage = &Usage{}
		}
		yield(Chunk{Usage: usage, Model: answeredModel}, nil)
	}
}

func (o *OpenAI) wrapErr(err error) error {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		e := &Error{Provider: o.cfg.Name, StatusCode: apiErr.StatusCode, Message: apiErr.Message, Err: err}
		if apiErr.Response != nil {
			e.RetryAfter = parseRetryAfter(apiErr.Response.Header, time.Now())
		}
		if e.Message == "" {
			e.Message = http.StatusText(apiErr.StatusCode)
		}
		return e
	}
	return &Error{Provider: o.cfg.Name, Err: err}
}

func openAIMessages(req Request) []openai.ChatCompletionMessageParamUnion {
	out := make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages)+1)
	if req.System != "" {
		out = append(out, openai.SystemMessage(req.System))
	}
	for _, m := range req.Messages {
		switch m.Role {
		case "assistant":
			if len(m.ToolCalls) == 0 {
				out = append(out, openai.AssistantMessage(m.Content))
				continue
			}
			var msg openai.ChatCompletionAssistantMessageParam
			if m.Content != "" {
				msg.Content.OfString = openai.String(m.Content)
			}
			for _, c := range m.ToolCalls {
				msg.ToolCalls = append(msg.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
					ID: c.ID, Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: c.Name, Arguments: c.Arguments},
				}})
			}
			out = append(out, openai.ChatCompletionMessageParamUnion{OfAssistant: &msg})
		case "tool":
			out = append(out, openai.ToolMessage(m.Content, m.ToolCallID))
		default:
			out = append(out, openai.UserMessage(m.Content))
		}
	}
	return out
}

// openAIStreamChunk is the part of a chat.completion.chunk the provider reads.
type openAIStreamChunk struct {
	Model   string
	Choices []openAIStreamChoice
	Usage   *openAIStreamUsage
	// Error is the message of an error object some servers send inside the stream.
	Error string
}

type openAIStreamChoice struct {
	Delta struct {
		Content   string
		ToolCalls []openAIToolCallDelta
	}
	FinishReason string
}

type openAIToolCallDelta struct {
	Index    int64
	ID       string
	Function struct{ Name, Arguments string }
}

type openAIStreamUsage struct {
	PromptTokens, CompletionTokens int64
	PromptTokensDetails            struct{ CachedTokens int64 }
}

// decodeStreamChunk reads a chunk in one validating pass and one walk over its keys (gjson):
// at relay speed, encoding/json's reflection was half of the gateway's time per token.
func decodeStreamChunk(data []byte) (openAIStreamChunk, error) {
	var c openAIStreamChunk
	if !gjson.ValidBytes(data) {
		return c, errors.New("not valid JSON")
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return c, errors.New("not a JSON object")
	}
	root.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "model":
			c.Model = v.String()
		case "error":
			if v.Type != gjson.Null {
				c.Error = v.Get("message").String()
				if c.Error == "" {
					c.Error = v.Raw
				}
			}
		case "usage":
			if v.IsObject() {
				c.Usage = &openAIStreamUsage{PromptTokens: v.Get("prompt_tokens").Int(), CompletionTokens: v.Get("completion_tokens").Int()}
				c.Usage.PromptTokensDetails.CachedTokens = v.Get("prompt_tokens_details.cached_tokens").Int()
			}
		case "choices":
			v.ForEach(func(_, ch gjson.Result) bool {
				c.Choices = append(c.Choices, decodeStreamChoice(ch))
				return true
			})
		}
		return true
	})
	return c, nil
}

func decodeStreamChoice(ch gjson.Result) openAIStreamChoice {
	var choice openAIStreamChoice
	ch.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "finish_reason":
			choice.FinishReason = v.String() // null reads as ""
		case "delta":
			v.ForEach(func(key, v gjson.Result) bool {
				switch key.Str {
				case "content":
					choice.Delta.Content = v.String()
				case "tool_calls":
					v.ForEach(func(_, call gjson.Result) bool {
						var d openAIToolCallDelta
						d.Index, d.ID = call.Get("index").Int(), call.Get("id").String()
						d.Function.Name, d.Function.Arguments = call.Get("function.name").String(), call.Get("function.arguments").String()
						choice.Delta.ToolCalls = append(choice.Delta.ToolCalls, d)
						return true
					})
				}
				return true
			})
		}
		return true
	})
	return choice
}
