package agents_test

import (
	"context"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

// toolCaller answers by asking the model with a tool and reporting the call it got, under an
// intent the cache would keep for a week.
type toolCaller struct{}

func (toolCaller) Info() agents.Info { return agents.Info{ID: "tooly", Name: "Tooly"} }

func (toolCaller) Respond(ctx context.Context, in agents.Input) (agents.Reply, error) {
	req := llm.Request{
		Messages: []llm.Message{{Role: "user", Content: in.Message}},
		Tools:    []llm.Tool{{Name: "create_task", Parameters: map[string]any{"type": "object"}}},
	}
	return agents.Reply{Intent: nlu.Intent{Name: nlu.IntentGreeting, Confidence: 1}, Stream: func(yield func(llm.Chunk, error) bool) {
		for c, err := range in.LLM.Stream(ctx, req) {
			if err != nil {
				yield(c, err)
				return
			}
			for _, call := range c.ToolCalls {
				c.Text += "called " + call.Name
			}
			c.ToolCalls = nil
			if !yield(c, nil) {
				return
			}
		}
	}}, nil
}

// toolProvider always says a word and asks for one tool call.
type toolProvider struct{ calls atomic.Int64 }

func (*toolProvider) Name() string { return "tools" }

func (p *toolProvider) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		p.calls.Add(1)
		if !yield(llm.Chunk{Text: "Sure. ", Model: "m"}, nil) {
			return
		}
		if len(req.Tools) > 0 && !yield(llm.Chunk{Model: "m", ToolCalls: []llm.ToolCall{{ID: "call_1", Name: req.Tools[0].Name, Arguments: "{}"}}}, nil) {
			return
		}
		yield(llm.Chunk{Model: "m", Usage: &llm.Usage{InputTokens: 10, OutputTokens: 5}}, nil)
	}
}

// A tool-calling request is never answered from the response cache: the cache keeps text, so a
// replay would drop the calls and the tools would never run.
func TestToolCallingRequestsBypassTheResponseCache(t *testing.T) {
	p := &toolProvider{}
	ec := newEconomy(t, p, economyOpts{cache: true, tweak: func(cfg *agents.EngineConfig) {
		reg, err := agents.NewRegistry(toolCaller{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Registry = reg
	}})
	for i := range 2 {
		res, _, err := ec.turn(t, agents.Request{AgentID: "tooly", Message: "add milk"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Content != "Sure. called create_task" || res.Metadata.Cached {
			t.Fatalf("turn %d: %q cached=%v, want the tool call, not a replay", i, res.Content, res.Metadata.Cached)
		}
	}
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("provider called %d times, want 2", n)
	}
	if st := ec.cache.Stats(); st.Hits != 0 {
		t.Fatalf("cache stats %+v: a tool request was looked up", st)
	}
}
