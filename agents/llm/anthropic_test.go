package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Messages API streaming wire format, as api.anthropic.com sends it.

const anModel = "claude-haiku-4-5-20251001"

func anEvent(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }

func anStart(input, cacheWrite, cacheRead int) string {
	return anEvent("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL",`+
		`"type":"message","role":"assistant","model":%q,"content":[],"stop_reason":null,"stop_sequence":null,`+
		`"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"output_tokens":1,"service_tier":"standard"}}}`,
		anModel, input, cacheWrite, cacheRead))
}

func anText(s string) string {
	return anEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+jsonString(s)+`}}`)
}

func anMessageDelta(output int) string {
	return anEvent("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, output))
}

var (
	anBlockStart = anEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	anPing       = anEvent("ping", `{"type": "ping"}`)
	anBlockStop  = anEvent("content_block_stop", `{"type":"content_block_stop","index":0}`)
	anStop       = anEvent("message_stop", `{"type":"message_stop"}`)
)

// anthropicFor configures the provider against a fake API.
func anthropicFor(api *fakeAPI) AnthropicConfig {
	return AnthropicConfig{APIKey: "ak-test", BaseURL: api.URL, Model: "claude-test", HTTPClient: api.Client()}
}

// anRequestBody is what we read back from a Messages API request; raw keeps every field sent.
type anRequestBody struct {
	Model       string    `json:"model"`
	MaxTokens   int       `json:"max_tokens"`
	System      string    `json:"system"`
	Messages    []Message `json:"messages"`
	Temperature *float64  `json:"temperature"`
	Stream      bool      `json:"stream"`
	raw         map[string]json.RawMessage
}

// checkAnthropicRequest asserts the request is a streaming Messages call with our key and the
// API version, and returns its body.
func checkAnthropicRequest(t *testing.T, got captured) anRequestBody {
	t.Helper()
	if got.Method != http.MethodPost || got.Path != "/v1/messages" {
		t.Errorf("request %s %s, want POST /v1/messages", got.Method, got.Path)
	}
	for name, want := range map[string]string{
		"x-api-key":         "ak-test",
		"anthropic-version": "2023-06-01",
		"content-type":      "application/json",
		"accept":            "text/event-stream",
	} {
		if h := got.Header.Get(name); h != want {
			t.Errorf("header %s: %q, want %q", name, h, want)
		}
	}
	var body anRequestBody
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatalf("request body %s: %v", got.Body, err)
	}
	if err := json.Unmarshal(got.Body, &body.raw); err != nil {
		t.Fatal(err)
	}
	if !body.Stream {
		t.Errorf("stream not true in %s", got.Body)
	}
	return body
}

func TestAnthropicStreamsMessage(t *testing.T) {
	api := startAPI(t, streamSSE(anStart(25, 100, 2000), anBlockStart, anPing,
		anText("One"), anText(", two"), anText(", three."), anBlockStop, anMessageDelta(15), anStop))
	temperature := 0.2
	req := Request{
		System: "You count.",
		Messages: []Message{
			{Role: "assistant", Content: "Welcome back!"},
			{Role: "user", Content: "Hi"},
			{Role: "user", Content: "Count to three"},
		},
		Temperature: &temperature,
	}

	chunks, err := collect(t, NewAnthropic(anthropicFor(api)).Stream(context.Background(), req))

	checkReply(t, chunks, err, wantReply{
		Texts: []string{"One", ", two", ", three."},
		// The three kinds of input are kept apart, each priced once.
		Usage: Usage{InputTokens: 25, CachedInputTokens: 2000, CacheWriteTokens: 100, OutputTokens: 15},
		Model: anModel,
	})
	body := checkAnthropicRequest(t, api.onlyRequest(t))
	if body.Model != "claude-test" || body.MaxTokens != 1024 || body.System != "You count." {
		t.Errorf("model %q max_tokens %d system %q, want claude-test, the default 1024, You count.", body.Model, body.MaxTokens, body.System)
	}
	wantMessages := []Message{{Role: "user", Content: "Hi\n\nCount to three"}}
	if !reflect.DeepEqual(body.Messages, wantMessages) {
		t.Errorf("messages %+v, want %+v", body.Messages, wantMessages)
	}
	if body.Temperature == nil || *body.Temperature != 0.2 {
		t.Errorf("temperature %v, want 0.2", body.Temperature)
	}
}

func TestAnthropicRequestParameters(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cfg           func(*AnthropicConfig)
		req           Request
		wantModel     string
		wantMaxTokens int
	}{
		{name: "defaults", req: userTurn, wantModel: "claude-test", wantMaxTokens: 1024},
		{
			name:          "configured max tokens",
			cfg:           func(c *AnthropicConfig) { c.MaxTokens = 2048 },
			req:           userTurn,
			wantModel:     "claude-test",
			wantMaxTokens: 2048,
		},
		{
			name:          "request overrides model and max tokens",
			cfg:           func(c *AnthropicConfig) { c.MaxTokens = 2048 },
			req:           Request{Model: "claude-sonnet-4-5", MaxTokens: 256, Messages: userTurn.Messages},
			wantModel:     "claude-sonnet-4-5",
			wantMaxTokens: 256,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := startAPI(t, streamSSE(anStart(5, 0, 0), anBlockStart, anText("ok"), anBlockStop, anMessageDelta(1), anStop))
			cfg := anthropicFor(api)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if _, err := collect(t, NewAnthropic(cfg).Stream(context.Background(), tc.req)); err != nil {
				t.Fatal(err)
			}
			body := checkAnthropicRequest(t, api.onlyRequest(t))
			if body.Model != tc.wantModel || body.MaxTokens != tc.wantMaxTokens {
				t.Errorf("model %q max_tokens %d, want %q %d", body.Model, body.MaxTokens, tc.wantModel, tc.wantMaxTokens)
			}
			for _, absent := range []string{"system", "temperature"} {
				if v, ok := body.raw[absent]; ok {
					t.Errorf("%s sent though the request set none: %s", absent, v)
				}
			}
		})
	}
}

func TestAnthropicMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Message
		want []anthropicMessage
	}{
		{name: "empty", in: nil, want: []anthropicMessage{}},
		{
			name: "alternating turns pass unchanged",
			in:   []Message{{Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}, {Role: "user", Content: "c"}},
			want: []anthropicMessage{{"user", "a"}, {"assistant", "b"}, {"user", "c"}},
		},
		{
			name: "consecutive turns of a role are merged",
			in:   []Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}, {Role: "assistant", Content: "c"}, {Role: "assistant", Content: "d"}, {Role: "user", Content: "e"}},
			want: []anthropicMessage{{"user", "a\n\nb"}, {"assistant", "c\n\nd"}, {"user", "e"}},
		},
		{
			name: "leading assistant turns are dropped",
			in:   []Message{{Role: "assistant", Content: "hello"}, {Role: "assistant", Content: "anyone?"}, {Role: "user", Content: "a"}},
			want: []anthropicMessage{{"user", "a"}},
		},
		{
			name: "other roles count as user",
			in:   []Message{{Role: "system", Content: "a"}, {Role: "", Content: "b"}, {Role: "assistant", Content: "c"}},
			want: []anthropicMessage{{"user", "a\n\nb"}, {"assistant", "c"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			if got := anthropicMessages(in); !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.in) {
				t.Errorf("input changed to %+v", in)
			}
		})
	}
}

// Errors inside a 200 stream: reported, and never passed off as a complete reply.
func TestAnthropicStreamErrors(t *testing.T) {
	opening := []string{anStart(25, 0, 0), anBlockStart, anPing, anText("Hel")}
	then := func(frames ...string) []string { return append(slices.Clone(opening), frames...) }
	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc
		status    int
		message   string // a part of the error's text
		retryable bool
	}{
		{
			name:      "overloaded error event",
			handler:   streamSSE(then(anEvent("error", `{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}`))...),
			status:    529,
			message:   "overloaded_error: Overloaded",
			retryable: true,
		},
		{
			name:    "other error event",
			handler: streamSSE(then(anEvent("error", `{"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}`))...),
			message: "api_error: Internal server error",
		},
		{
			name:    "body ends before message_stop",
			handler: streamSSE(then(anBlockStop, anMessageDelta(2))...),
			message: "stream ended before message_stop",
		},
		{
			name:    "connection drops",
			handler: abortAfter(opening...),
			message: io.ErrUnexpectedEOF.Error(),
		},
		{
			name:    "malformed event",
			handler: streamSSE(then(anEvent("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{`))...),
			message: `bad "content_block_delta" event`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := startAPI(t, tc.handler)
			chunks, err := collect(t, NewAnthropic(anthropicFor(api)).Stream(context.Background(), userTurn))
			if got := texts(chunks); !slices.Equal(got, []string{"Hel"}) || len(chunks) != 1 {
				t.Errorf("chunks before the error: %+v", chunks)
			}
			pe := asProviderError(t, err)
			if pe.Provider != "anthropic" || pe.StatusCode != tc.status || !strings.Contains(pe.Error(), tc.message) {
				t.Errorf("got %#v (%v), want status %d and %q", pe, pe, tc.status, tc.message)
			}
			if tc.retryable && !pe.Retryable() {
				t.Errorf("%v not retryable", pe)
			}
		})
	}
}

func TestAnthropicHTTPErrors(t *testing.T) {
	checkHTTPErrors(t, "anthropic", func(api *fakeAPI) Provider { return NewAnthropic(anthropicFor(api)) }, []httpErrorCase{
		{
			name: "bad key",
			handler: replyJSON(401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},`+
				`"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`),
			status:  401,
			message: "authentication_error: invalid x-api-key",
		},
		{
			name: "rate limited",
			handler: replyJSON(429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
				"retry-after", "7"),
			status:     429,
			message:    "rate_limit_error: Number of request tokens has exceeded your per-minute rate limit",
			retryAfter: 7 * time.Second,
			retryable:  true,
		},
		{
			name:      "overloaded",
			handler:   replyJSON(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
			status:    529,
			message:   "overloaded_error: Overloaded",
			retryable: true,
		},
		{
			name:      "not JSON",
			handler:   replyJSON(500, "upstream connect error", "Content-Type", "text/plain"),
			status:    500,
			message:   "Internal Server Error",
			retryable: true,
		},
	})
}

func TestAnthropicMarksTheStablePrefixForPromptCaching(t *testing.T) {
	for _, tc := range []struct {
		name   string
		system string
		prefix int
		want   string
	}{
		{"no prefix: a plain string", "Rules. Context.", 0, `"Rules. Context."`},
		{"prefix and rest", "Rules. Context.", 7, `[{"type":"text","text":"Rules. ","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Context."}]`},
		{"prefix is everything", "Rules.", 6, `[{"type":"text","text":"Rules.","cache_control":{"type":"ephemeral"}}]`},
		{"prefix past the end", "Rules.", 99, `[{"type":"text","text":"Rules.","cache_control":{"type":"ephemeral"}}]`},
		{"no system", "", 5, `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(anthropicSystem(tc.system, tc.prefix))
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s %v, want %s", got, err, tc.want)
			}
		})
	}
}
