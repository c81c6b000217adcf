package agents_test

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/session"
)

// countingSummarizer records each call and summarizes by counting turns.
type countingSummarizer struct {
	mu    sync.Mutex
	calls []string // previous summary passed in, per call
}

func (s *countingSummarizer) Summarize(_ context.Context, previous string, turns []llm.Message) (string, llm.Usage, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, previous)
	return fmt.Sprintf("summary #%d covering %q", len(s.calls), turns[0].Content), llm.Usage{OutputTokens: 1000}, "unit-model", nil
}

// The running summary costs one call per block of old turns, not one per turn, and reaches
// the model's prompt; its cost is billed with the turn that made it.
func TestRollingSummaryIsMadeOncePerBlock(t *testing.T) {
	p := &meteredProvider{chunks: []string{"ok"}, model: "m"}
	sum := &countingSummarizer{}
	var kv session.KV
	ec := newEconomy(t, p, economyOpts{prices: testPrices(), tweak: func(c *agents.EngineConfig) {
		c.Window = agents.ContextWindow{KeepMessages: 2}
		c.Summarizer = sum
		kv = session.NewMemoryKV(nil)
		c.KV = kv
	}})
	sid := ""
	costs := []float64{}
	for i := range 6 {
		res, _, err := ec.turn(t, agents.Request{AgentID: "fam", Message: fmt.Sprintf("message %d", i), SessionID: sid})
		if err != nil {
			t.Fatal(err)
		}
		sid = res.SessionID
		costs = append(costs, res.Metadata.Cost)
	}
	// History before turn i has 2i messages; 2 stay verbatim, whole blocks of 2 are summarized:
	// turn 2 makes block 1, turn 3 block 2, turn 4 block 3, turn 5 block 4 (each once).
	if len(sum.calls) != 4 {
		t.Fatalf("summarizer called %d times, want 4 (once per block)", len(sum.calls))
	}
	if sum.calls[0] != "" || !strings.HasPrefix(sum.calls[1], "summary #1") {
		t.Fatalf("each block must fold into the previous summary: %q", sum.calls)
	}
	if !strings.Contains(p.lastRequest().System, "summary #4") {
		t.Fatalf("the running summary is missing from the prompt: %s", p.lastRequest().System)
	}
	if costs[0] != 0 || costs[2] != 0.001 {
		t.Fatalf("summary cost not billed with its turn: %v", costs)
	}
}

type scriptedSummaryLLM struct{ got llm.Request }

func (s *scriptedSummaryLLM) Name() string { return "s" }

func (s *scriptedSummaryLLM) Stream(_ context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	s.got = req
	return func(yield func(llm.Chunk, error) bool) {
		if yield(llm.Chunk{Text: "John lives in New York.", Model: "gpt-4o-mini"}, nil) {
			yield(llm.Chunk{Usage: &llm.Usage{InputTokens: 50, OutputTokens: 8}}, nil)
		}
	}
}

func TestLLMSummarizerPrompt(t *testing.T) {
	fake := &scriptedSummaryLLM{}
	out, usage, model, err := agents.LLMSummarizer{LLM: fake}.Summarize(context.Background(), "The user is John.",
		[]llm.Message{{Role: "user", Content: "I live in New York"}, {Role: "assistant", Content: "Noted."}})
	if err != nil || out != "John lives in New York." || usage.OutputTokens != 8 || model != "gpt-4o-mini" {
		t.Fatalf("%q %+v %q %v", out, usage, model, err)
	}
	prompt := fake.got.Messages[0].Content
	if !strings.Contains(prompt, "Earlier summary:\nThe user is John.") || !strings.Contains(prompt, "User: I live in New York") ||
		!strings.Contains(prompt, "Assistant: Noted.") || fake.got.MaxTokens != 200 || *fake.got.Temperature != 0 {
		t.Fatalf("request %+v", fake.got)
	}
}
