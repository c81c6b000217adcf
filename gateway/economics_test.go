package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/llm/llmtest"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

func TestCostsReportTodayAndMonth(t *testing.T) {
	srv := llmtest.NewOpenAI(func(int) llmtest.Reply {
		return llmtest.Reply{Chunks: []string{"Sure."}, InputTokens: 1000, CachedTokens: 400, OutputTokens: 200}
	})
	defer srv.Close()
	g := startGateway(t, llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: srv.URL + "/v1", Model: "gpt-4o-mini"}))
	for _, msg := range []string{"one?", "two?"} {
		if resp, out := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"`+msg+`"}`); resp.StatusCode != 200 {
			t.Fatalf("%d %v", resp.StatusCode, out)
		}
	}
	resp, report := getJSON(t, g.URL+"/api/v2/costs")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %v", resp.StatusCode, report)
	}
	// Each turn: 600 x $0.15 + 400 x $0.075 + 200 x $0.60 per 1M = $0.00024.
	today := report["today"].(map[string]any)
	if today["requests"] != 2.0 || !near(today["usd"].(float64), 0.00048) {
		t.Fatalf("today %v", today)
	}
	month := report["month"].(map[string]any)
	byProvider := report["monthByProvider"].([]any)[0].(map[string]any)
	byAgent := report["todayByAgent"].([]any)[0].(map[string]any)
	if month["requests"] != 2.0 || byProvider["key"] != "openai" || byAgent["key"] != "fam" || report["mode"] != "normal" {
		t.Fatalf("report %v", report)
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

// The documented behaviour when the answering provider dies mid-stream: the deltas already
// sent stay, an explicit error event follows, no "done"; the partial reply is stored as
// interrupted.
func TestSSEProviderDiesMidStream(t *testing.T) {
	primary := llmtest.NewOpenAI(func(int) llmtest.Reply {
		return llmtest.Reply{Chunks: []string{"First ", "part, ", "never ", "finished"}, CutAfter: 2}
	})
	defer primary.Close()
	backup := llmtest.NewAnthropic(func(int) llmtest.Reply { return llmtest.Reply{Chunks: []string{"unused"}} })
	defer backup.Close()
	chain := llm.NewChain(llm.ChainConfig{FirstTokenTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)},
		llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: primary.URL + "/v1"}),
		llm.NewAnthropic(llm.AnthropicConfig{APIKey: "k", BaseURL: backup.URL}))
	g := startGateway(t, chain)
	resp := openStream(t, context.Background(), g.URL+"/api/v2/chat/stream", `{"agentId":"fam","message":"tell me"}`)
	defer resp.Body.Close()
	sid := resp.Header.Get("X-Session-Id")
	events := newSSEReader(resp.Body)
	var names []string
	for {
		ev, err := events.next()
		if err != nil {
			break
		}
		names = append(names, ev.Name)
		if ev.Name == "error" && ev.Data["code"] != gateway.CodeProviderError {
			t.Fatalf("error event %v", ev.Data)
		}
	}
	if len(names) != 3 || names[0] != "delta" || names[1] != "delta" || names[2] != "error" {
		t.Fatalf("events %v, want delta delta error", names)
	}
	if n := len(backup.Requests()); n != 0 {
		t.Fatalf("a started reply must not be silently replaced by another provider's (%d calls)", n)
	}
	g.shutdown(t)
	msgs, _ := g.Store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0)
	if len(msgs) != 2 || msgs[1].Content != "First part, " || msgs[1].Metadata["interrupted"] != true {
		t.Fatalf("stored %+v", msgs)
	}
}
