package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/llm/llmtest"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/openai/openai-go/v3"
	oaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"
)

// sdk is the official OpenAI client pointed at the gateway: the only change an app makes.
func sdk(g *testGateway) *openai.Client {
	c := openai.NewClient(oaioption.WithBaseURL(g.URL+"/v1/"), oaioption.WithAPIKey("x"), oaioption.WithMaxRetries(0))
	return &c
}

// recorder is a provider that remembers every request and answers with fixed chunks and usage.
type recorder struct {
	mu     sync.Mutex
	reqs   []llm.Request
	chunks []string
	usage  llm.Usage
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Stream(_ context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return func(yield func(llm.Chunk, error) bool) {
		for _, c := range r.chunks {
			if !yield(llm.Chunk{Text: c, Model: "recorded-1"}, nil) {
				return
			}
		}
		u := r.usage
		yield(llm.Chunk{Model: "recorded-1", Usage: &u}, nil)
	}
}

func (r *recorder) requests() []llm.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// failing streams its chunks, then fails as a provider would mid-reply.
type failing struct{ chunks []string }

func (f failing) Name() string { return "failing" }

func (f failing) Stream(context.Context, llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		for _, c := range f.chunks {
			if !yield(llm.Chunk{Text: c, Model: "failing-1"}, nil) {
				return
			}
		}
		yield(llm.Chunk{}, &llm.Error{Provider: "failing", StatusCode: 500, Message: "upstream connection reset"})
	}
}

func TestOpenAIChatCompletionWithAnAgent(t *testing.T) {
	g := startGateway(t, nil)
	client := sdk(g)
	for _, tc := range []struct{ name, user, owner string }{
		{"named user", "alice", "alice"},
		{"user outside the id rules is anonymous", "not a valid id!", session.AnonymousUserID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw *http.Response
			res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model:    "fam",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello!")},
				User:     openai.String(tc.user),
			}, oaioption.WithResponseInto(&raw))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(res.ID, "chatcmpl-") || res.Object != "chat.completion" || res.Model != "fam" || res.Created == 0 {
				t.Fatalf("completion header fields: id %q object %q model %q created %d", res.ID, res.Object, res.Model, res.Created)
			}
			if len(res.Choices) != 1 {
				t.Fatalf("choices %d", len(res.Choices))
			}
			ch := res.Choices[0]
			if ch.Index != 0 || ch.FinishReason != "stop" || ch.Message.Role != "assistant" || !strings.HasPrefix(ch.Message.Content, "Hello!") {
				t.Fatalf("choice %+v", ch)
			}
			u := res.Usage
			if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens || !u.JSON.PromptTokensDetails.Valid() {
				t.Fatalf("usage %+v", u)
			}
			sid := raw.Header.Get("X-Session-Id")
			msgs, err := g.Store.ListMessages(context.Background(), tc.owner, sid, 0)
			if err != nil {
				t.Fatalf("session %q of %q: %v", sid, tc.owner, err)
			}
			if len(msgs) != 2 || msgs[0].Content != "Hello!" || msgs[1].Content != ch.Message.Content {
				t.Fatalf("stored %+v", msgs)
			}
		})
	}
}

// Token counts follow OpenAI's convention: prompt_tokens includes the cached ones.
func TestOpenAIUsageCountsCachedInputAsPrompt(t *testing.T) {
	p := &recorder{chunks: []string{"ok"}, usage: llm.Usage{InputTokens: 100, CachedInputTokens: 20, OutputTokens: 7}}
	g := startGateway(t, p)
	res, err := sdk(g).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "any-model", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	u := res.Usage
	if u.PromptTokens != 120 || u.PromptTokensDetails.CachedTokens != 20 || u.CompletionTokens != 7 || u.TotalTokens != 127 {
		t.Fatalf("usage %+v", u)
	}
	if res.Model != "any-model" || res.Choices[0].Message.Content != "ok" {
		t.Fatalf("completion %+v", res)
	}
}

func TestOpenAIStreamingAccumulates(t *testing.T) {
	g := startGateway(t, nil)
	stream := sdk(g).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "fam",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("what are the voice tiers?")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var deltas strings.Builder
	chunks, finished := 0, false
	for stream.Next() {
		c := stream.Current()
		if !acc.AddChunk(c) {
			t.Fatalf("chunk %d does not continue the completion: %+v", chunks, c)
		}
		if c.Model != "fam" || c.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %+v", c)
		}
		for _, ch := range c.Choices {
			deltas.WriteString(ch.Delta.Content)
			if ch.FinishReason == "stop" {
				finished = true
			}
		}
		if _, ok := acc.JustFinishedContent(); ok && !finished {
			t.Fatal("content finished before finish_reason")
		}
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks < 4 || !finished {
		t.Fatalf("want a role chunk, several content chunks, a finish and a usage chunk; got %d chunks, finished %v", chunks, finished)
	}
	got := acc.Choices[0].Message.Content
	if got == "" || got != deltas.String() || !strings.Contains(strings.ToLower(got), "tier") {
		t.Fatalf("accumulated %q, deltas %q", got, deltas.String())
	}
	if acc.Choices[0].FinishReason != "stop" || acc.Choices[0].Message.Role != "assistant" {
		t.Fatalf("accumulated choice %+v", acc.Choices[0])
	}
	if u := acc.Usage; u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Fatalf("usage %+v", u)
	}
}

// Each delta reaches the SDK while the provider is still generating: the provider produces its
// next piece only after the test has read the previous one.
func TestOpenAIStreamDeltasArriveAsGenerated(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	client := sdk(g)
	streams := make(chan *ssestream.Stream[openai.ChatCompletionChunk], 1)
	go func() {
		// The stream opens with the first generated text, so this returns once a step is sent.
		streams <- client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model:         "fam",
			Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me a story")},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
	}()
	within(t, p.started, "the provider to start")
	p.steps <- "Once "
	stream := within(t, streams, "the stream to open")
	defer stream.Close()
	next := func() openai.ChatCompletionChunk {
		t.Helper()
		if !stream.Next() {
			t.Fatalf("stream ended early: %v", stream.Err())
		}
		return stream.Current()
	}
	if c := next(); len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant" {
		t.Fatalf("first chunk should carry the role: %+v", c)
	}
	pieces := []string{"Once ", "upon ", "a ", "time."}
	for i, piece := range pieces {
		if i > 0 {
			p.steps <- piece
		}
		if c := next(); c.Choices[0].Delta.Content != piece {
			t.Fatalf("want delta %q before the provider goes on, got %+v", piece, c)
		}
	}
	close(p.steps)
	if c := next(); c.Choices[0].FinishReason != "stop" {
		t.Fatalf("want the finish chunk, got %+v", c)
	}
	if c := next(); len(c.Choices) != 0 || c.Usage.PromptTokens != 10 || c.Usage.CompletionTokens != 3 || c.Usage.TotalTokens != 13 {
		t.Fatalf("want the usage chunk, got %+v", c)
	}
	if stream.Next() || stream.Err() != nil {
		t.Fatalf("want a clean end after [DONE], got %v", stream.Err())
	}
}

// A model name that is not an agent goes through the passthrough agent to the real upstream,
// with the client's model, system prompt and settings.
func TestOpenAIPassthroughReachesTheUpstream(t *testing.T) {
	upstream := llmtest.NewOpenAI(func(int) llmtest.Reply {
		return llmtest.Reply{Chunks: []string{"Bonjour", " !"}, InputTokens: 12, CachedTokens: 2, OutputTokens: 3}
	})
	defer upstream.Close()
	g := startGateway(t, llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-upstream", BaseURL: upstream.URL + "/v1"}))
	for _, stream := range []bool{false, true} {
		params := openai.ChatCompletionNewParams{
			Model: "gpt-4.1-nano",
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("Be terse."),
				openai.DeveloperMessage("Answer in French."),
				openai.UserMessage("Hello"),
			},
			Temperature:         openai.Float(0.3),
			MaxCompletionTokens: openai.Int(64),
		}
		var content string
		var usage openai.CompletionUsage
		if stream {
			params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			s := sdk(g).Chat.Completions.NewStreaming(context.Background(), params)
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			content, usage = acc.Choices[0].Message.Content, acc.Usage
		} else {
			res, err := sdk(g).Chat.Completions.New(context.Background(), params)
			if err != nil {
				t.Fatal(err)
			}
			if res.Model != "gpt-4.1-nano" {
				t.Fatalf("model %q", res.Model)
			}
			content, usage = res.Choices[0].Message.Content, res.Usage
		}
		if content != "Bonjour !" || usage.PromptTokens != 12 || usage.PromptTokensDetails.CachedTokens != 2 || usage.CompletionTokens != 3 {
			t.Fatalf("stream %v: content %q usage %+v", stream, content, usage)
		}
	}
	reqs := upstream.Requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	for _, r := range reqs {
		b := r.Body
		if b["model"] != "gpt-4.1-nano" || b["temperature"] != 0.3 || b["max_tokens"] != 64.0 || r.Header.Get("Authorization") != "Bearer sk-upstream" {
			t.Fatalf("upstream request %v", b)
		}
		msgs := b["messages"].([]any)
		sys, user := msgs[0].(map[string]any), msgs[len(msgs)-1].(map[string]any)
		if len(msgs) != 2 || sys["role"] != "system" || sys["content"] != "Be terse.\n\nAnswer in French." || user["role"] != "user" || user["content"] != "Hello" {
			t.Fatalf("upstream messages %v", msgs)
		}
	}
}

// The conversation a stateless client sends is what the provider sees, in order, whether the
// model is an agent or passed through.
func TestOpenAIHistoryReachesTheProviderInOrder(t *testing.T) {
	p := &recorder{chunks: []string{"Your name is Ann."}, usage: llm.Usage{InputTokens: 5, OutputTokens: 5}}
	g := startGateway(t, p)
	for _, model := range []string{"fam", "some-model"} {
		_, err := sdk(g).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: model,
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("Call the user by name."),
				openai.UserMessage("Hi, I'm Ann."),
				openai.AssistantMessage("Hello Ann!"),
				openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{openai.TextContentPart("What is"), openai.TextContentPart("my name?")}),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	reqs := p.requests()
	if len(reqs) != 2 {
		t.Fatalf("provider got %d requests", len(reqs))
	}
	for i, req := range reqs {
		var got []string
		for _, m := range req.Messages {
			got = append(got, m.Role+": "+m.Content)
		}
		want := []string{"user: Hi, I'm Ann.", "assistant: Hello Ann!", "user: What is\nmy name?"}
		if !slices.Equal(got, want) {
			t.Fatalf("request %d messages %q, want %q", i, got, want)
		}
		if !strings.Contains(req.System, "Call the user by name.") {
			t.Fatalf("request %d lost the client's system message: %q", i, req.System)
		}
	}
	if fam := reqs[0]; !strings.Contains(fam.System, "Business Rules") || fam.Model != "" {
		t.Fatalf("fam keeps its own prompt and model: model %q system %q", fam.Model, fam.System)
	}
	if pt := reqs[1]; pt.Model != "some-model" || pt.System != "Call the user by name." {
		t.Fatalf("passthrough: model %q system %q", pt.Model, pt.System)
	}
}

// Bad requests come back as *openai.Error with OpenAI's status, type and param, and the
// gateway's own message, before any provider is asked.
func TestOpenAIErrorsThroughTheSDK(t *testing.T) {
	p := &recorder{chunks: []string{"never"}}
	g := startGateway(t, p)
	client := sdk(g)
	user := openai.UserMessage("hi")
	cases := []struct {
		name   string
		params openai.ChatCompletionNewParams
		param  string
		inMsg  string
	}{
		{"last message from the assistant", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{user, openai.AssistantMessage("hello")}}, "messages", "last message must be from the user"},
		{"last message a system message", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{user, openai.SystemMessage("be nice")}}, "messages", "last message must be from the user"},
		{"no messages", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{}}, "messages", "at least one message"},
		{"no model", openai.ChatCompletionNewParams{Messages: []openai.ChatCompletionMessageParamUnion{user}}, "model", "model is required"},
		{"blank last message", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("  ")}}, "messages", "empty"},
		{"tools", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{user},
			Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "lookup"})}}, "tools", "tools"},
		{"tool message", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{openai.ToolMessage("42", "call_1"), user}}, "messages", "tool"},
		{"n above one", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{user}, N: openai.Int(2)}, "n", "n=1"},
		{"image part", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("what is this?"), openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://example.com/a.png"})})}}, "messages", "image_url"},
		{"temperature out of range", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{user}, Temperature: openai.Float(3)}, "temperature", "between 0 and 2"},
		{"last message over the engine's limit", openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("a", 8001))}}, "messages", "over the limit"},
	}
	for _, tc := range cases {
		for _, stream := range []bool{false, true} {
			var err error
			if stream {
				s := client.Chat.Completions.NewStreaming(context.Background(), tc.params)
				s.Next()
				err = s.Err()
				s.Close()
			} else {
				_, err = client.Chat.Completions.New(context.Background(), tc.params)
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("%s (stream %v): want *openai.Error, got %v", tc.name, stream, err)
			}
			if apiErr.StatusCode != http.StatusBadRequest || apiErr.Type != "invalid_request_error" || apiErr.Code != gateway.CodeValidation ||
				apiErr.Param != tc.param || !strings.Contains(apiErr.Message, tc.inMsg) {
				t.Fatalf("%s (stream %v): %d type %q code %q param %q message %q", tc.name, stream, apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Param, apiErr.Message)
			}
		}
	}
	if n := len(p.requests()); n != 0 {
		t.Fatalf("the provider was asked %d times for invalid requests", n)
	}
}

// Without the passthrough agent registered, only agents are models: anything else is a 404.
func TestOpenAIUnknownModelWithoutPassthrough(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) {
		store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/agents-only.db"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		reg, err := agents.NewRegistry(fam.New(fam.Config{}))
		if err != nil {
			t.Fatal(err)
		}
		c.Engine, err = agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: &recorder{chunks: []string{"hi"}}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
	})
	client := sdk(g)
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: msgs})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != gateway.CodeModelNotFound ||
		apiErr.Type != "invalid_request_error" || !strings.Contains(apiErr.Message, `"gpt-4o"`) {
		t.Fatalf("want a 404 model_not_found naming the model, got %v %+v", err, apiErr)
	}
	if res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "fam", Messages: msgs}); err != nil || res.Choices[0].Message.Content != "hi" {
		t.Fatalf("agents still answer: %v", err)
	}
}

// A provider failure after text was streamed ends the SDK's stream with an error, never with a
// finish_reason that would pass the half reply off as complete.
func TestOpenAIProviderFailureMidStream(t *testing.T) {
	g := startGateway(t, failing{chunks: []string{"Half ", "a reply"}})
	stream := sdk(g).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "fam",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	var streamErr *ssestream.StreamError
	if !errors.As(stream.Err(), &streamErr) || !strings.Contains(streamErr.Message, "upstream connection reset") {
		t.Fatalf("want the provider's failure from the stream, got %v", stream.Err())
	}
	if acc.Choices[0].Message.Content != "Half a reply" || acc.Choices[0].FinishReason != "" || acc.Usage.TotalTokens != 0 {
		t.Fatalf("the partial reply must not look finished: %+v usage %+v", acc.Choices[0], acc.Usage)
	}
}

// A provider failure before any text is a real HTTP error (502), streaming or not.
func TestOpenAIProviderFailureBeforeTheFirstToken(t *testing.T) {
	g := startGateway(t, failing{})
	params := openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	_, plainErr := sdk(g).Chat.Completions.New(context.Background(), params)
	s := sdk(g).Chat.Completions.NewStreaming(context.Background(), params)
	s.Next()
	streamErr := s.Err()
	s.Close()
	for _, err := range []error{plainErr, streamErr} {
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Type != "server_error" ||
			apiErr.Code != gateway.CodeProviderError || !strings.Contains(apiErr.Message, "upstream connection reset") {
			t.Fatalf("want a 502 provider_error, got %v %+v", err, apiErr)
		}
	}
}

// The request deadline applies to /v1 like everywhere else.
func TestOpenAIRequestDeadline(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p, func(c *gateway.Config) { c.RequestTimeout = 200 * time.Millisecond })
	_, err := sdk(g).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("take forever")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusGatewayTimeout || apiErr.Code != gateway.CodeTimeout || apiErr.Type != "server_error" {
		t.Fatalf("want a 504 timeout, got %v", err)
	}
	within(t, p.cancelled, "the provider call to be cancelled")
}

func TestOpenAIModels(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) {
		c.Models = []gateway.Model{{ID: "gpt-4o-mini", OwnedBy: "openai"}, {ID: "fam"}, {ID: "org/local-model"}}
	})
	client := sdk(g)
	page, err := client.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID+"/"+m.OwnedBy)
		if m.Object != "model" || m.Created == 0 {
			t.Fatalf("model %+v", m)
		}
	}
	if want := []string{"fam/dartmouth", "gpt-4o-mini/openai", "org/local-model/dartmouth"}; !slices.Equal(ids, want) {
		t.Fatalf("models %v, want %v (agents first, no passthrough, no duplicates)", ids, want)
	}
	if m, err := client.Models.Get(context.Background(), "org/local-model"); err != nil || m.ID != "org/local-model" {
		t.Fatalf("get model: %v %+v", err, m)
	}
	_, err = client.Models.Get(context.Background(), "nope")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != gateway.CodeModelNotFound {
		t.Fatalf("want a 404 model_not_found, got %v", err)
	}
	// The passthrough agent is plumbing: the agent list does not offer it either.
	_, body := getJSON(t, g.URL+"/api/v2/agents")
	for _, a := range body["agents"].([]any) {
		if a.(map[string]any)["id"] == agents.PassthroughID {
			t.Fatalf("agents list shows the passthrough: %v", body)
		}
	}
}

// readFrames reads a whole OpenAI-style stream, checking that it is made only of "data: "
// lines each followed by a blank line.
func readFrames(t *testing.T, resp *http.Response) []string {
	t.Helper()
	var frames []string
	sc := bufio.NewScanner(resp.Body)
	expectBlank := false
	for sc.Scan() {
		line := sc.Text()
		if expectBlank {
			if line != "" {
				t.Fatalf("frame %d is not followed by a blank line: %q", len(frames), line)
			}
			expectBlank = false
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data line", line)
		}
		frames = append(frames, data)
		expectBlank = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return frames
}

func postOpenAIStream(t *testing.T, g *testGateway, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(g.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.HasPrefix(resp.Header.Get("X-Session-Id"), "ses_") {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	return resp
}

func TestOpenAIStreamFraming(t *testing.T) {
	g := startGateway(t, nil)
	for _, includeUsage := range []bool{true, false} {
		body := `{"model":"fam","stream":true,"messages":[{"role":"user","content":"Hello!"}]}`
		if includeUsage {
			body = `{"model":"fam","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello!"}]}`
		}
		frames := readFrames(t, postOpenAIStream(t, g, body))
		if len(frames) < 4 || frames[len(frames)-1] != "[DONE]" {
			t.Fatalf("want chunks then [DONE] last, got %q", frames)
		}
		var chunks []map[string]any
		for _, f := range frames[:len(frames)-1] {
			var c map[string]any
			if err := json.Unmarshal([]byte(f), &c); err != nil {
				t.Fatalf("frame %q: %v", f, err)
			}
			chunks = append(chunks, c)
		}
		id, _ := chunks[0]["id"].(string)
		for i, c := range chunks {
			if c["id"] != id || c["object"] != "chat.completion.chunk" || c["model"] != "fam" || c["created"] == nil {
				t.Fatalf("chunk %d %v", i, c)
			}
			if _, has := c["usage"]; has != includeUsage {
				t.Fatalf("chunk %d usage present %v, include_usage %v: %v", i, has, includeUsage, c)
			}
		}
		if !strings.HasPrefix(id, "chatcmpl-") {
			t.Fatalf("id %q", id)
		}
		choice := func(c map[string]any) map[string]any { return c["choices"].([]any)[0].(map[string]any) }
		if d := choice(chunks[0])["delta"].(map[string]any); d["role"] != "assistant" || d["content"] != "" || choice(chunks[0])["finish_reason"] != nil {
			t.Fatalf("first chunk %v", chunks[0])
		}
		last := len(chunks) - 1
		if includeUsage {
			u, _ := chunks[last]["usage"].(map[string]any)
			if len(chunks[last]["choices"].([]any)) != 0 || u["total_tokens"] == nil || u["prompt_tokens_details"] == nil {
				t.Fatalf("usage chunk %v", chunks[last])
			}
			for _, c := range chunks[:last] {
				if c["usage"] != nil {
					t.Fatalf("usage must be null before the last chunk: %v", c)
				}
			}
			last--
		}
		if choice(chunks[last])["finish_reason"] != "stop" || len(choice(chunks[last])["delta"].(map[string]any)) != 0 {
			t.Fatalf("finish chunk %v", chunks[last])
		}
		var content strings.Builder
		for _, c := range chunks[1:last] {
			ch := choice(c)
			if ch["finish_reason"] != nil {
				t.Fatalf("finish_reason before the end: %v", c)
			}
			content.WriteString(ch["delta"].(map[string]any)["content"].(string))
		}
		if !strings.HasPrefix(content.String(), "Hello!") || last < 3 {
			t.Fatalf("content %q over %d chunks", content.String(), last-1)
		}
	}
}

// A failure mid-stream is one data frame with an error object, and then nothing: no
// finish_reason, no [DONE].
func TestOpenAIMidStreamErrorFraming(t *testing.T) {
	g := startGateway(t, failing{chunks: []string{"Half"}})
	resp := postOpenAIStream(t, g, `{"model":"fam","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	frames := readFrames(t, resp)
	if len(frames) != 3 {
		t.Fatalf("want role, content and error frames, got %q", frames)
	}
	for _, f := range frames[:2] {
		if strings.Contains(f, `"finish_reason":"stop"`) || strings.Contains(f, `"error"`) {
			t.Fatalf("frame %q", f)
		}
	}
	var body map[string]map[string]any
	if err := json.Unmarshal([]byte(frames[2]), &body); err != nil {
		t.Fatalf("error frame %q: %v", frames[2], err)
	}
	e := body["error"]
	if e["type"] != "server_error" || e["code"] != gateway.CodeProviderError || !strings.Contains(e["message"].(string), "upstream connection reset") ||
		e["requestId"] != resp.Header.Get("X-Request-Id") {
		t.Fatalf("error frame %v", e)
	}
	if p, ok := e["param"]; !ok || p != nil {
		t.Fatalf("param must be present and null: %v", e)
	}
}

// Errors on /v1 routes carry OpenAI's fields and still the gateway's code and request id;
// errors elsewhere keep the project's envelope unchanged.
func TestOpenAIErrorEnvelope(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) { c.BodyLimit = 1024 })
	big := `{"model":"fam","messages":[{"role":"user","content":"` + strings.Repeat("a", 2000) + `"}]}`
	cases := []struct {
		name, method, path, body string
		status                   int
		typ, code                string
		param                    any
	}{
		{"validation", "POST", "/v1/chat/completions", `{"model":"fam","messages":[{"role":"assistant","content":"hi"}]}`, 400, "invalid_request_error", gateway.CodeValidation, "messages"},
		{"content of the wrong shape", "POST", "/v1/chat/completions", `{"model":"fam","messages":[{"role":"user","content":5}]}`, 400, "invalid_request_error", gateway.CodeValidation, "messages"},
		{"malformed json", "POST", "/v1/chat/completions", `{"model":`, 400, "invalid_request_error", gateway.CodeInvalidJSON, nil},
		{"body over the limit", "POST", "/v1/chat/completions", big, 413, "invalid_request_error", gateway.CodeBodyTooLarge, nil},
		{"unknown route", "POST", "/v1/embeddings", `{}`, 404, "invalid_request_error", gateway.CodeNotFound, nil},
		{"wrong method", "GET", "/v1/chat/completions", ``, 405, "invalid_request_error", gateway.CodeMethodNotAllowed, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, g.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, out := doJSON(t, req)
			e, _ := out["error"].(map[string]any)
			param, hasParam := e["param"]
			if resp.StatusCode != tc.status || e["type"] != tc.typ || e["code"] != tc.code || !hasParam || param != tc.param ||
				e["message"] == "" || e["requestId"] != resp.Header.Get("X-Request-Id") {
				t.Fatalf("got %d %v", resp.StatusCode, out)
			}
		})
	}
	_, out := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"nobody","message":"hi"}`)
	e := out["error"].(map[string]any)
	if _, has := e["type"]; has || e["code"] != gateway.CodeAgentNotFound {
		t.Fatalf("the /api/v2 envelope must not change: %v", out)
	}
	if _, has := e["param"]; has {
		t.Fatalf("the /api/v2 envelope must not change: %v", out)
	}
}

// A rate-limited call surfaces in the SDK as a 429 *openai.Error of type rate_limit_error, with
// Retry-After for the SDK's own retry logic.
func TestOpenAIRateLimitThroughTheSDK(t *testing.T) {
	limits, err := gateway.ParseRateLimits("free=1/h")
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, nil, func(c *gateway.Config) {
		c.RateLimiter, c.RateLimits = gateway.NewMemoryRateLimiter(nil), limits
	})
	params := openai.ChatCompletionNewParams{Model: "fam", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello!")}}
	if _, err := sdk(g).Chat.Completions.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	s := sdk(g).Chat.Completions.NewStreaming(context.Background(), params)
	s.Next()
	err = s.Err()
	s.Close()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Type != "rate_limit_error" ||
		apiErr.Message == "" || apiErr.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("want a 429 rate_limit_error, got %v %+v", err, apiErr)
	}
}
