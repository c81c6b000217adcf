package fam_test

import (
	"context"
	"fmt"
	"iter"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an llm.Provider that answers "ok" and keeps the requests it got.
type recorder struct {
	mu       sync.Mutex
	requests []llm.Request
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Stream(_ context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.mu.Unlock()
	return func(yield func(llm.Chunk, error) bool) {
		if yield(llm.Chunk{Text: "ok"}, nil) {
			yield(llm.Chunk{Usage: &llm.Usage{InputTokens: 1, OutputTokens: 1}}, nil)
		}
	}
}

// respond runs one FAM turn against a recorder, drains the reply and returns the request FAM
// sent with the reply.
func respond(t *testing.T, cfg fam.Config, in agents.Input) (llm.Request, agents.Reply) {
	t.Helper()
	rec := &recorder{}
	in.LLM = rec
	reply, err := fam.New(cfg).Respond(t.Context(), in)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	var text strings.Builder
	for c, err := range reply.Stream {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		text.WriteString(c.Text)
	}
	if text.String() != "ok" {
		t.Errorf("reply text = %q, want the provider's stream passed through", text.String())
	}
	if len(rec.requests) != 1 {
		t.Fatalf("provider got %d requests, want 1", len(rec.requests))
	}
	return rec.requests[0], reply
}

func TestInfo(t *testing.T) {
	info := fam.New(fam.Config{}).Info()
	if info.ID != "fam" || info.Name == "" || info.Description == "" {
		t.Errorf("Info() = %+v", info)
	}
}

func TestRespondBuildsRequest(t *testing.T) {
	// Negative, but not frustrated enough for FAM to add its offer of a person to the reply
	// (TestHighFrustrationOffersAPersonOrARestart covers that).
	const message = "This is slow and bad. How do I fix it?"
	history := []llm.Message{
		{Role: "user", Content: "Hello"},
		{Role: "assistant", Content: "Hi! How can I help?"},
	}
	req, reply := respond(t, fam.Config{}, agents.Input{
		SessionID: "ses_1", UserID: "alice", Message: message, History: history,
		Context: map[string]any{
			"timezone": "Europe/Paris",
			"language": 42,                       // not a string
			"page":     strings.Repeat("p", 300), // too long
			"location": "",                       // empty
			"secret":   "not a known key",
		},
	})

	// FAM reads the message in its conversation (repeats, follow-ups, frustration).
	understood := nlu.Understand(message, []string{"Hello"})
	wantIntent, wantSentiment := understood.Intent, understood.Sentiment
	if reply.Intent != wantIntent || reply.Sentiment != wantSentiment {
		t.Errorf("reply intent/sentiment = %+v/%+v, want %+v/%+v", reply.Intent, reply.Sentiment, wantIntent, wantSentiment)
	}
	if wantSentiment.Label != "negative" {
		t.Fatalf("test message should read as negative, got %+v", wantSentiment)
	}

	for _, want := range []string{
		"## Business Rules",
		fmt.Sprintf("reads as %s (confidence %.2f) with %s sentiment", wantIntent.Name, wantIntent.Confidence, wantSentiment.Label),
		"Acknowledge the user's frustration",
		"- The user's timezone: Europe/Paris\n",
	} {
		if !strings.Contains(req.System, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, req.System)
		}
	}
	if !strings.HasPrefix(req.System, fam.SystemPrompt) {
		t.Errorf("system prompt does not start with fam.SystemPrompt:\n%s", req.System)
	}
	for _, unwanted := range []string{"user's language", "user's page", "user's location", "secret", "not a known key"} {
		if strings.Contains(req.System, unwanted) {
			t.Errorf("system prompt contains %q, which should have been ignored:\n%s", unwanted, req.System)
		}
	}

	wantMessages := append(append([]llm.Message(nil), history...), llm.Message{Role: "user", Content: message})
	if !reflect.DeepEqual(req.Messages, wantMessages) {
		t.Errorf("messages = %+v, want %+v", req.Messages, wantMessages)
	}
	if req.Temperature == nil || *req.Temperature != 0.7 || req.MaxTokens != 500 || req.Model != "" {
		t.Errorf("model/temperature/max tokens = %q/%v/%d, want the defaults \"\"/0.7/500", req.Model, req.Temperature, req.MaxTokens)
	}
}

func TestRespondUsesConfig(t *testing.T) {
	req, _ := respond(t, fam.Config{Model: "gpt-4o", Temperature: 0.2, MaxTokens: 120}, agents.Input{Message: "What are the voice tiers?"})
	if req.Model != "gpt-4o" || req.Temperature == nil || *req.Temperature != 0.2 || req.MaxTokens != 120 {
		t.Errorf("model/temperature/max tokens = %q/%v/%d, want gpt-4o/0.2/120", req.Model, req.Temperature, req.MaxTokens)
	}
}

func TestRespondNeutralMessage(t *testing.T) {
	const message = "What are the voice tiers?"
	req, reply := respond(t, fam.Config{}, agents.Input{Message: message})
	if reply.Intent.Name != nlu.IntentInformation || reply.Sentiment.Label != "neutral" {
		t.Errorf("reply = %+v/%+v, want information/neutral", reply.Intent, reply.Sentiment)
	}
	_, contextLines, _ := strings.Cut(req.System, "## Conversation Context\n")
	if n := strings.Count(contextLines, "\n"); n != 1 {
		t.Errorf("a neutral message without client context should give one context line, got %d:\n%s", n, contextLines)
	}
	if want := []llm.Message{{Role: "user", Content: message}}; !reflect.DeepEqual(req.Messages, want) {
		t.Errorf("messages = %+v, want %+v", req.Messages, want)
	}
}

// Agents are shared by every session: FAM must not write into the caller's history.
func TestRespondDoesNotAliasHistory(t *testing.T) {
	backing := make([]llm.Message, 1, 4)
	backing[0] = llm.Message{Role: "user", Content: "earlier"}
	req, _ := respond(t, fam.Config{}, agents.Input{Message: "and now?", History: backing})
	if spare := backing[:2][1]; spare.Role != "" || spare.Content != "" || spare.ToolCalls != nil || spare.ToolCallID != "" {
		t.Errorf("Respond wrote %+v into the history's spare capacity", spare)
	}
	if len(req.Messages) != 2 || &req.Messages[0] == &backing[0] {
		t.Errorf("request messages share the caller's history array")
	}
}
