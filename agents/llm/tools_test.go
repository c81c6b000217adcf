package llm

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// oaToolDelta is one tool-call fragment of a chat.completion.chunk.
func oaToolDelta(fragment string) string {
	return oaDelta(`{"tool_calls":[`+fragment+`]}`, "null")
}

var weatherTool = Tool{
	Name:        "get_weather",
	Description: "Current weather in a city.",
	Parameters: map[string]any{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}},
		"required":   []any{"city"},
	},
}

// Two parallel calls whose fragments interleave, as OpenAI streams them: each is assembled by
// its index, and both arrive complete in one chunk before the usage.
func TestOpenAIStreamsToolCalls(t *testing.T) {
	api := startAPI(t, streamSSE(oaRole,
		oaToolDelta(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}`),
		oaToolDelta(`{"index":0,"function":{"arguments":"{\"city\":"}}`),
		oaToolDelta(`{"index":1,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}`),
		oaToolDelta(`{"index":0,"function":{"arguments":"\"Paris\"}"}}`),
		oaToolDelta(`{"index":1,"function":{"arguments":"ty\":\"Oslo\"}"}}`),
		oaDelta(`{}`, `"tool_calls"`), oaUsage(80, 0, 30), oaDone))
	req := Request{Messages: []Message{{Role: "user", Content: "Weather in Paris and Oslo?"}}, Tools: []Tool{weatherTool}}

	chunks, err := collect(t, NewOpenAI(openAIFor(api)).Stream(context.Background(), req))
	if err != nil {
		t.Fatal(err)
	}
	var calls []ToolCall
	for i, c := range chunks {
		if c.Text != "" {
			t.Errorf("chunk %d has text %q; the model only called tools", i, c.Text)
		}
		if len(c.ToolCalls) > 0 {
			if calls != nil {
				t.Fatalf("tool calls arrived in more than one chunk")
			}
			calls = c.ToolCalls
		}
	}
	want := []ToolCall{
		{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
		{ID: "call_b", Name: "get_weather", Arguments: `{"city":"Oslo"}`},
	}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("tool calls %+v, want %+v", calls, want)
	}
	if last := chunks[len(chunks)-1]; last.Usage == nil || *last.Usage != (Usage{InputTokens: 80, OutputTokens: 30}) {
		t.Fatalf("last chunk %+v, want the usage", last)
	}

	got := api.onlyRequest(t)
	var body struct {
		Tools []struct {
			Type     string `json:"type"`
			Function struct {
				Name        string         `json:"name"`
				Description string         `json:"description"`
				Parameters  map[string]any `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Tools) != 1 || body.Tools[0].Type != "function" || body.Tools[0].Function.Name != "get_weather" ||
		body.Tools[0].Function.Description != weatherTool.Description || !reflect.DeepEqual(body.Tools[0].Function.Parameters, weatherTool.Parameters) {
		t.Fatalf("tools sent %s", got.Body)
	}
}

// The second request of a tool loop carries the assistant's calls and one tool message per
// call, in the wire format OpenAI expects.
func TestOpenAISendsToolResults(t *testing.T) {
	api := startAPI(t, streamSSE(oaRole, oaText("Sunny in Paris."), oaStop, oaUsage(90, 0, 5), oaDone))
	req := Request{Tools: []Tool{weatherTool}, Messages: []Message{
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ToolCalls: []ToolCall{{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
		{Role: "tool", ToolCallID: "call_a", Content: `{"sky":"sunny"}`},
	}}
	chunks, err := collect(t, NewOpenAI(openAIFor(api)).Stream(context.Background(), req))
	checkReply(t, chunks, err, wantReply{Texts: []string{"Sunny in Paris."}, Usage: Usage{InputTokens: 90, OutputTokens: 5}, Model: oaModel})

	var body struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(api.onlyRequest(t).Body, &body); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"role": "user", "content": "Weather in Paris?"},
		{"role": "assistant", "tool_calls": []any{map[string]any{"id": "call_a", "type": "function",
			"function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`}}}},
		{"role": "tool", "tool_call_id": "call_a", "content": `{"sky":"sunny"}`},
	}
	if !reflect.DeepEqual(body.Messages, want) {
		t.Fatalf("messages %+v\nwant %+v", body.Messages, want)
	}
}

// Anthropic ignores tools, and a tool loop begun elsewhere reaches it as text with no empty
// turn (the API refuses those).
func TestAnthropicIgnoresToolsButKeepsTheLoopReadable(t *testing.T) {
	api := startAPI(t, streamSSE(anStart(5, 0, 0), anBlockStart, anText("Sunny."), anBlockStop, anMessageDelta(1), anStop))
	req := Request{Tools: []Tool{weatherTool}, Messages: []Message{
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ToolCalls: []ToolCall{{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
		{Role: "tool", ToolCallID: "call_a", Content: `{"sky":"sunny"}`},
	}}
	if _, err := collect(t, NewAnthropic(anthropicFor(api)).Stream(context.Background(), req)); err != nil {
		t.Fatal(err)
	}
	body := checkAnthropicRequest(t, api.onlyRequest(t))
	if _, sent := body.raw["tools"]; sent {
		t.Errorf("tools were sent to Anthropic")
	}
	if len(body.Messages) != 3 {
		t.Fatalf("messages %+v, want user, assistant, user", body.Messages)
	}
	for i, m := range body.Messages {
		if strings.TrimSpace(m.Content) == "" {
			t.Errorf("message %d is empty: %+v", i, body.Messages)
		}
	}
	if !strings.Contains(body.Messages[1].Content, "get_weather") || body.Messages[2].Role != "user" || !strings.Contains(body.Messages[2].Content, "sunny") {
		t.Errorf("tool loop not written out: %+v", body.Messages)
	}
}

func TestUsesTools(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  Request
		want bool
	}{
		{"plain chat", userTurn, false},
		{"tools offered", Request{Tools: []Tool{weatherTool}, Messages: userTurn.Messages}, true},
		{"tool calls in the history", Request{Messages: []Message{{Role: "assistant", ToolCalls: []ToolCall{{ID: "c"}}}}}, true},
		{"a tool result", Request{Messages: []Message{{Role: "tool", ToolCallID: "c", Content: "{}"}}}, true},
	} {
		if got := UsesTools(tc.req); got != tc.want {
			t.Errorf("%s: UsesTools = %v, want %v", tc.name, got, tc.want)
		}
	}
}
