package pa_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/llm/llmtest"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// toolHarness runs the assistant with tool calling against a local server speaking the OpenAI
// wire format, through the real gateway, with the response cache on (tool calls must bypass it).
type toolHarness struct {
	url   string
	store *session.SQLStore
	api   *llmtest.Server
}

func startToolPA(t *testing.T, script func(n int) llmtest.Reply, fallbackOffline bool) *toolHarness {
	t.Helper()
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/pa.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	api := llmtest.NewOpenAI(script)
	t.Cleanup(api.Close)
	quiet := slog.New(slog.DiscardHandler)
	providers := []llm.Provider{llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test", BaseURL: api.URL + "/v1", Model: "gpt-test", HTTPClient: api.Client()})}
	if fallbackOffline {
		providers = append(providers, offline.New(offline.Config{}))
	}
	chain := llm.NewChain(llm.ChainConfig{Retries: -1, Logger: quiet}, providers...)
	agent, err := pa.New(pa.Config{Store: store, Tools: true, Clock: &manualClock{now: scenarioNow}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := agents.NewRegistry(agent)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := agents.NewResponseCache(agents.ResponseCacheConfig{KV: session.NewMemoryKV(nil), DefaultTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: chain, Cache: cache, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &toolHarness{url: gatewaytest.Serve(t, engine), store: store, api: api}
}

type toolReply struct {
	Content  string `json:"content"`
	Metadata struct {
		Provider string `json:"provider"`
		Model    string `json:"model"`
		Cached   bool   `json:"cached"`
		Tokens   struct {
			Input  int64 `json:"input"`
			Output int64 `json:"output"`
		} `json:"tokens"`
	} `json:"metadata"`
}

func (h *toolHarness) chat(t *testing.T, user, message string) toolReply {
	t.Helper()
	var r toolReply
	gatewaytest.Chat(t, h.url, map[string]any{"agentId": pa.ID, "userId": user, "message": message,
		"context": map[string]any{"timeZone": "America/New_York"}}, &r)
	return r
}

// messagesOf reads the chat messages a recorded request sent.
func messagesOf(t *testing.T, r llmtest.Recorded) []map[string]any {
	t.Helper()
	raw, _ := json.Marshal(r.Body["messages"])
	var msgs []map[string]any
	if err := json.Unmarshal(raw, &msgs); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// Acceptance: with a server speaking the OpenAI wire format, PA creates a task through a tool
// call, the task is persisted for the caller, the tool result goes back to the model, and the
// tools offered are the assistant's.
func TestToolCallCreatesAndPersistsATask(t *testing.T) {
	h := startToolPA(t, func(n int) llmtest.Reply {
		if n%2 == 0 {
			return llmtest.Reply{InputTokens: 900, OutputTokens: 20, ToolCalls: []llmtest.ToolCall{
				{ID: "call_1", Name: "create_task", Arguments: `{"title":"buy milk","list":"Shopping","due":"2025-03-04T17:00"}`},
			}}
		}
		return llmtest.Reply{InputTokens: 1000, OutputTokens: 12, Chunks: []string{"Added buy milk to your shopping list, ", "due tomorrow at 5 PM."}}
	}, false)
	r := h.chat(t, "nina", "add buy milk to my shopping list for tomorrow 5pm")
	if r.Content != "Added buy milk to your shopping list, due tomorrow at 5 PM." || r.Metadata.Cached {
		t.Fatalf("reply %+v", r)
	}
	if r.Metadata.Tokens.Input != 1900 || r.Metadata.Tokens.Output != 32 {
		t.Fatalf("usage of both model calls must be counted: %+v", r.Metadata.Tokens)
	}

	tasks, err := h.store.ListTasks(context.Background(), "nina", session.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Title != "buy milk" || tasks[0].List != "shopping" ||
		!tasks[0].DueAt.Equal(time.Date(2025, 3, 4, 22, 0, 0, 0, time.UTC)) {
		t.Fatalf("persisted tasks %+v", tasks)
	}

	reqs := h.api.Requests()
	if len(reqs) != 2 {
		t.Fatalf("model called %d times, want 2", len(reqs))
	}
	var want []string
	for _, tool := range pa.Tools {
		want = append(want, tool.Name)
	}
	if got := reqs[0].ToolNames(); !slices.Equal(got, want) || !slices.Contains(got, "create_task") {
		t.Fatalf("tools sent %v, want %v", got, want)
	}
	tools, _ := reqs[0].Body["tools"].([]any)
	createTask := tools[0].(map[string]any)["function"].(map[string]any)
	params := createTask["parameters"].(map[string]any)
	if createTask["name"] != "create_task" || params["type"] != "object" || !slices.Equal(params["required"].([]any), []any{"title"}) {
		t.Fatalf("create_task definition %v", createTask)
	}
	first := messagesOf(t, reqs[0])
	if first[0]["role"] != "system" || !strings.Contains(first[0]["content"].(string), "America/New_York") ||
		!strings.Contains(first[0]["content"].(string), "Monday, March 3, 2025 09:00 EST") {
		t.Fatalf("system prompt must give the user's zone and local time: %v", first[0])
	}
	second := messagesOf(t, reqs[1])
	call, result := second[len(second)-2], second[len(second)-1]
	if calls, _ := call["tool_calls"].([]any); call["role"] != "assistant" || len(calls) != 1 {
		t.Fatalf("the model's call is sent back: %v", call)
	}
	content, _ := result["content"].(string)
	if result["role"] != "tool" || result["tool_call_id"] != "call_1" || !strings.Contains(content, `"id":"`+tasks[0].ID+`"`) ||
		!strings.Contains(content, `"due":"2025-03-04T17:00:00-05:00 (Tuesday)"`) {
		t.Fatalf("tool result %v", result)
	}
	if _, offered := reqs[1].Body["tools"]; !offered {
		t.Fatalf("the tools stay offered after a result")
	}

	// The same message again is a new request, not a cached replay: another task would be
	// created, so the model must be asked.
	h.chat(t, "nina", "add buy milk to my shopping list for tomorrow 5pm")
	if n := len(h.api.Requests()); n != 4 {
		t.Fatalf("second turn made %d model calls in all, want 4 (no cache)", n)
	}
}

// A tool can only reach the caller's records: an id of another user's task is "not found"
// for the model, and that task is untouched.
func TestToolCallsAreScopedToTheCaller(t *testing.T) {
	var bobsID string // set before the model is first asked
	h := startToolPA(t, func(n int) llmtest.Reply {
		if n == 0 {
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{
				{ID: "c1", Name: "complete_task", Arguments: `{"id":"` + bobsID + `"}`},
				{ID: "c2", Name: "list_tasks", Arguments: `{"status":"all"}`},
				{ID: "c3", Name: "create_note", Arguments: `{not json`},
				{ID: "c4", Name: "drop_database", Arguments: `{}`},
			}}
		}
		return llmtest.Reply{Chunks: []string{"I couldn't find that task."}}
	}, false)
	ctx := context.Background()
	if _, err := h.store.EnsureUser(ctx, "bob", ""); err != nil {
		t.Fatal(err)
	}
	bobs, err := h.store.CreateTask(ctx, session.Task{UserID: "bob", Title: "bob's secret"})
	if err != nil {
		t.Fatal(err)
	}
	bobsID = bobs.ID
	h.chat(t, "alice", "mark task "+bobs.ID+" as done")
	results := map[string]string{}
	for _, m := range messagesOf(t, h.api.Requests()[1]) {
		if m["role"] == "tool" {
			results[m["tool_call_id"].(string)] = m["content"].(string)
		}
	}
	if !strings.Contains(results["c1"], `"error"`) || !strings.Contains(results["c1"], "not found") {
		t.Fatalf("completing another user's task: %q", results["c1"])
	}
	if results["c2"] != `{"tasks":[]}` {
		t.Fatalf("alice's list shows %q", results["c2"])
	}
	if !strings.Contains(results["c3"], "not a valid JSON object") {
		t.Fatalf("bad arguments: %q", results["c3"])
	}
	if !strings.Contains(results["c4"], `no tool named \"drop_database\"`) {
		t.Fatalf("unknown tool: %q", results["c4"])
	}
	got, err := h.store.GetTask(ctx, "bob", bobs.ID)
	if err != nil || got.Done {
		t.Fatalf("bob's task after alice's turn: %+v %v", got, err)
	}
	if notes, _ := h.store.ListNotes(ctx, "alice", session.NoteFilter{}); len(notes) != 0 {
		t.Fatalf("a call with bad arguments created %+v", notes)
	}
}

// When the model cannot be reached, the offline parser takes the message: the reminder is
// still set, and the reply is the parser's.
func TestToolModeFallsBackToTheParser(t *testing.T) {
	h := startToolPA(t, func(int) llmtest.Reply { return llmtest.Reply{Status: 503} }, true)
	r := h.chat(t, "nina", "remind me to call mom at 5pm tomorrow")
	if !strings.Contains(r.Content, "I'll remind you to call mom tomorrow (Tuesday, March 4) at 5:00 PM EST") || r.Metadata.Provider != pa.Provider {
		t.Fatalf("reply %+v", r)
	}
	list, err := h.store.ListReminders(context.Background(), "nina", session.ReminderFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("reminders %+v %v", list, err)
	}
}

// A model that acts and then says nothing still leaves the user a confirmation.
func TestToolModeConfirmsWhatTheModelDid(t *testing.T) {
	h := startToolPA(t, func(n int) llmtest.Reply {
		if n == 0 {
			return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "create_reminder", Arguments: `{"text":"stretch","when":"2025-03-03T10:30"}`}}}
		}
		return llmtest.Reply{}
	}, false)
	r := h.chat(t, "nina", "remind me to stretch at 10:30")
	if r.Content != "Done. I'll remind you: stretch, today (Monday, March 3) at 10:30 AM EST." {
		t.Fatalf("reply %q", r.Content)
	}
}
