package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"
)

// The Chat Completions streaming wire format, as api.openai.com sends it.

const oaModel = "gpt-4o-mini-2024-07-18"

// oaChunk is one chat.completion.chunk event.
func oaChunk(choices, usage string) string {
	return `data: {"id":"chatcmpl-AQv8Gz1kXp","object":"chat.completion.chunk","created":1730000000,"model":"` + oaModel +
		`","service_tier":"default","system_fingerprint":"fp_0ba0d124f1","choices":[` + choices + `],"usage":` + usage + "}\n\n"
}

func oaDelta(delta, finishReason string) string {
	return oaChunk(`{"index":0,"delta":`+delta+`,"logprobs":null,"finish_reason":`+finishReason+`}`, "null")
}

func oaText(s string) string { return oaDelta(`{"content":`+jsonString(s)+`}`, "null") }

// oaUsage is the usage-only chunk sent last when stream_options.include_usage is set.
func oaUsage(prompt, cached, completion int) string {
	return oaChunk("", fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,`+
		`"prompt_tokens_details":{"cached_tokens":%d,"audio_tokens":0},`+
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
		prompt, completion, prompt+completion, cached))
}

var (
	oaRole = oaDelta(`{"role":"assistant","content":"","refusal":null}`, "null")
	oaStop = oaDelta(`{}`, `"stop"`)
	oaDone = "data: [DONE]\n\n"
)

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// openAIFor configures the provider against a fake API.
func openAIFor(api *fakeAPI) OpenAIConfig {
	return OpenAIConfig{APIKey: "sk-test", BaseURL: api.URL + "/v1", Model: "gpt-test", HTTPClient: api.Client()}
}

// oaRequestBody is what we read back from a chat completion request.
type oaRequestBody struct {
	Model         string    `json:"model"`
	Messages      []Message `json:"messages"`
	Stream        bool      `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Temperature         *float64 `json:"temperature"`
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
}

// checkOpenAIRequest asserts the request is a streaming chat completion with our key, and
// returns its body.
func checkOpenAIRequest(t *testing.T, got captured) oaRequestBody {
	t.Helper()
	if got.Method != http.MethodPost || got.Path != "/v1/chat/completions" {
		t.Errorf("request %s %s, want POST /v1/chat/completions", got.Method, got.Path)
	}
	if h := got.Header.Get("Authorization"); h != "Bearer sk-test" {
		t.Errorf("Authorization %q, want Bearer sk-test", h)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body oaRequestBody
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatalf("request body %s: %v", got.Body, err)
	}
	if !body.Stream || body.StreamOptions == nil || !body.StreamOptions.IncludeUsage {
		t.Errorf("want stream true and stream_options.include_usage true, got %s", got.Body)
	}
	return body
}

func TestOpenAIStreamsChatCompletion(t *testing.T) {
	api := startAPI(t, streamSSE(oaRole, oaText("One"), oaText(", two"), oaText(", three."), oaStop, oaUsage(1200, 1024, 9), oaDone))
	temperature := 0.2
	req := Request{
		System: "You count.",
		Messages: []Message{
			{Role: "user", Content: "Hi"},
			{Role: "assistant", Content: "Hello!"},
			{Role: "user", Content: "Count to three"},
		},
		Temperature: &temperature,
		MaxTokens:   64,
	}

	chunks, err := collect(t, NewOpenAI(openAIFor(api)).Stream(context.Background(), req))

	checkReply(t, chunks, err, wantReply{
		Texts: []string{"One", ", two", ", three."},
		// prompt_tokens includes the cached ones; each token is counted once.
		Usage: Usage{InputTokens: 1200 - 1024, CachedInputTokens: 1024, OutputTokens: 9},
		Model: oaModel,
	})
	body := checkOpenAIRequest(t, api.onlyRequest(t))
	if body.Model != "gpt-test" {
		t.Errorf("model %q, want the configured gpt-test", body.Model)
	}
	wantMessages := append([]Message{{Role: "system", Content: "You count."}}, req.Messages...)
	if !reflect.DeepEqual(body.Messages, wantMessages) {
		t.Errorf("messages %+v, want %+v", body.Messages, wantMessages)
	}
	if body.Temperature == nil || *body.Temperature != 0.2 {
		t.Errorf("temperature %v, want 0.2", body.Temperature)
	}
	if body.MaxTokens == nil || *body.MaxTokens != 64 || body.MaxCompletionTokens != nil {
		t.Errorf("max_tokens %v max_completion_tokens %v, want max_tokens 64 only", body.MaxTokens, body.MaxCompletionTokens)
	}
}

func TestOpenAIRequestParameters(t *testing.T) {
	zero := 0.0
	for _, tc := range []struct {
		name         string
		req          Request
		wantModel    string
		wantMessages []Message
		wantTemp     *float64
	}{
		{
			name:         "defaults leave out system, temperature and max_tokens",
			req:          userTurn,
			wantModel:    "gpt-test",
			wantMessages: []Message{{Role: "user", Content: "Hi"}},
		},
		{
			name:         "request model overrides the configured one",
			req:          Request{Model: "gpt-4.1", Messages: userTurn.Messages},
			wantModel:    "gpt-4.1",
			wantMessages: []Message{{Role: "user", Content: "Hi"}},
		},
		{
			name:         "a zero temperature is still sent",
			req:          Request{Messages: userTurn.Messages, Temperature: &zero},
			wantModel:    "gpt-test",
			wantMessages: []Message{{Role: "user", Content: "Hi"}},
			wantTemp:     &zero,
		},
		{
			name:         "roles other than assistant and tool are sent as user",
			req:          Request{Messages: []Message{{Role: "", Content: "a"}, {Role: "narrator", Content: "b"}}},
			wantModel:    "gpt-test",
			wantMessages: []Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := startAPI(t, streamSSE(oaRole, oaText("ok"), oaStop, oaUsage(5, 0, 1), oaDone))
			if _, err := collect(t, NewOpenAI(openAIFor(api)).Stream(context.Background(), tc.req)); err != nil {
				t.Fatal(err)
			}
			body := checkOpenAIRequest(t, api.onlyRequest(t))
			if body.Model != tc.wantModel || !reflect.DeepEqual(body.Messages, tc.wantMessages) {
				t.Errorf("model %q messages %+v, want %q %+v", body.Model, body.Messages, tc.wantModel, tc.wantMessages)
			}
			if (body.Temperature == nil) != (tc.wantTemp == nil) || (body.Temperature != nil && *body.Temperature != *tc.wantTemp) {
				t.Errorf("temperature %v, want %v", body.Temperature, tc.wantTemp)
			}
			if body.MaxTokens != nil || body.MaxCompletionTokens != nil {
				t.Errorf("max tokens sent though the request set none")
			}
		})
	}
}

// Servers that ignore stream_options (some OpenAI-compatible ones) still end the reply properly.
func TestOpenAIReplyWithoutUsageChunk(t *testing.T) {
	api := startAPI(t, streamSSE(oaRole, oaText("Hi"), oaStop, oaDone))
	chunks, err := collect(t, NewOpenAI(openAIFor(api)).Stream(context.Background(), userTurn))
	checkReply(t, chunks, err, wantReply{Texts: []string{"Hi"}, Model: oaModel})
}

func TestOpenAIHTTPErrors(t *testing.T) {
	checkHTTPErrors(t, "openai", func(api *fakeAPI) Provider { return NewOpenAI(openAIFor(api)) }, []httpErrorCase{
		{
			name: "server error",
			handler: replyJSON(500, `{"error":{"message":"The server had an error while processing your request. Sorry about that!",`+
				`"type":"server_error","param":null,"code":null}}`),
			status:    500,
			message:   "The server had an error while processing your request. Sorry about that!",
			retryable: true,
		},
		{
			name: "rate limited",
			handler: replyJSON(429, `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.",`+
				`"type":"requests","param":null,"code":"rate_limit_exceeded"}}`, "Retry-After", "3"),
			status:     429,
			message:    "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.",
			retryAfter: 3 * time.Second,
			retryable:  true,
		},
		{
			name: "bad key",
			handler: replyJSON(401, `{"error":{"message":"Incorrect API key provided: sk-test.",`+
				`"type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			status:  401,
			message: "Incorrect API key provided: sk-test.",
		},
		{
			name:      "proxy error page",
			handler:   replyJSON(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "Content-Type", "text/html"),
			status:    502,
			message:   "Bad Gateway",
			retryable: true,
		},
	})
}

// A reply that does not end properly must fail, never pass for a complete (truncated) answer.
func TestOpenAIIncompleteStreams(t *testing.T) {
	errorEvent := `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}` + "\n\n"
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"body ends mid-reply", streamSSE(oaRole, oaText("Once"), oaText(" upon"))},
		{"connection drops mid-reply", abortAfter(oaRole, oaText("Once"), oaText(" upon"))},
		{"[DONE] without a finish reason", streamSSE(oaRole, oaText("Once"), oaText(" upon"), oaDone)},
		{"error event mid-reply", streamSSE(oaRole, oaText("Once"), oaText(" upon"), errorEvent)},
		{"malformed chunk mid-reply", streamSSE(oaRole, oaText("Once"), oaText(" upon"), "data: {\"choices\":[{\"delta\":\n\n", oaText(" a time"))},
		{"chunk that is not an object", streamSSE(oaRole, oaText("Once"), oaText(" upon"), "data: [1,2]\n\n", oaText(" a time"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := startAPI(t, tc.handler)
			chunks, err := collect(t, NewOpenAI(openAIFor(api)).Stream(context.Background(), userTurn))
			if got := texts(chunks); !slices.Equal(got, []string{"Once", " upon"}) {
				t.Errorf("texts %q before the error", got)
			}
			for _, c := range chunks {
				if c.Usage != nil {
					t.Errorf("a cut reply was reported complete, with usage %+v", *c.Usage)
				}
			}
			if pe := asProviderError(t, err); pe.Provider != "openai" || !pe.Retryable() {
				t.Errorf("got %#v, want a retryable openai error", pe)
			}
		})
	}
}
