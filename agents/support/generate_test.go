package support

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/llm/llmtest"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/session"
)

// fixedRetriever returns the same hits (or error) for every query and records the queries.
type fixedRetriever struct {
	hits    []rag.Hit
	err     error
	queries []string
}

func (f *fixedRetriever) Search(_ context.Context, _, query string, _ int) ([]rag.Hit, error) {
	f.queries = append(f.queries, query)
	return f.hits, f.err
}

// brokenTickets fails every call.
type brokenTickets struct{}

func (brokenTickets) CreateTicket(context.Context, session.Ticket) (session.Ticket, error) {
	return session.Ticket{}, errors.New("disk full")
}
func (brokenTickets) GetTicketByNumber(context.Context, string, int64) (session.Ticket, error) {
	return session.Ticket{}, errors.New("disk full")
}
func (brokenTickets) ListTickets(context.Context, string, session.TicketFilter) ([]session.Ticket, error) {
	return nil, nil
}

var refundHit = rag.Hit{Doc: "returns.md", Section: "Refund window", Score: 0.6,
	Text: "You can return most items within 30 days. Refunds go back to the original payment method within 5 to 7 business days."}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newAgent(t *testing.T, cfg Config) *Agent {
	t.Helper()
	if cfg.Tickets == nil {
		cfg.Tickets = brokenTickets{}
	}
	cfg.Logger = quiet()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// run collects a reply's text and the model that wrote it.
func run(t *testing.T, a *Agent, in agents.Input) (text, provider, model string) {
	t.Helper()
	rep, err := a.Respond(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sawUsage := false
	for c, err := range rep.Stream {
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(c.Text)
		if c.Provider != "" {
			provider = c.Provider
		}
		if c.Model != "" {
			model = c.Model
		}
		sawUsage = sawUsage || c.Usage != nil
	}
	if !sawUsage {
		t.Fatal("the reply never reported usage: the engine would take it as cut short")
	}
	return b.String(), provider, model
}

func fastChain(providers ...llm.Provider) *llm.Chain {
	return llm.NewChain(llm.ChainConfig{Retries: -1, FirstTokenTimeout: 10 * time.Second, Logger: quiet()}, providers...)
}

func TestGenerateAnswersOnlyFromTheArticles(t *testing.T) {
	fake := llmtest.NewOpenAI(func(int) llmtest.Reply {
		return llmtest.Reply{Chunks: []string{"Refunds reach your card ", "in 5 to 7 business days. ", "(source: returns.md › Refund window)"}, InputTokens: 300, OutputTokens: 20}
	})
	defer fake.Close()
	ret := &fixedRetriever{hits: []rag.Hit{refundHit, {Doc: "shipping.md", Section: "Costs", Text: "Standard delivery is free."}}}
	a := newAgent(t, Config{Retriever: ret, Generate: true})
	provider := fastChain(llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: fake.URL + "/v1", Model: "gpt-4o-mini"}))
	history := []llm.Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: greetingReply}}
	text, prov, _ := run(t, a, agents.Input{Message: "When do I get my refund?", History: history, LLM: provider})
	if text != "Refunds reach your card in 5 to 7 business days. (source: returns.md › Refund window)" || prov != "openai" {
		t.Fatalf("reply %q from %s", text, prov)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model calls", len(reqs))
	}
	body := reqs[0].Body
	msgs := body["messages"].([]any)
	system := msgs[0].(map[string]any)["content"].(string)
	for _, want := range []string{"Answer only from the help articles", missReply, "[1] (source: returns.md › Refund window)\n" + refundHit.Text, "[2] (source: shipping.md › Costs)"} {
		if !strings.Contains(system, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, system)
		}
	}
	if len(msgs) != 4 || msgs[3].(map[string]any)["content"] != "When do I get my refund?" || body["temperature"] != 0.2 {
		t.Errorf("messages %v, temperature %v", msgs, body["temperature"])
	}
}

// The offline engine knows nothing of the articles: when the chain falls back to it, or no
// model answers at all, the agent quotes the article instead.
func TestGenerateQuotesWhenNoModelAnswers(t *testing.T) {
	down := llmtest.NewOpenAI(func(int) llmtest.Reply { return llmtest.Reply{Status: 500} })
	defer down.Close()
	failing := llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: down.URL + "/v1"})
	want := Extract("When do I get my refund?", refundHit)
	for name, provider := range map[string]llm.Provider{
		"offline fallback": fastChain(failing, offline.New(offline.Config{})),
		"every model down": fastChain(failing),
	} {
		t.Run(name, func(t *testing.T) {
			a := newAgent(t, Config{Retriever: &fixedRetriever{hits: []rag.Hit{refundHit}}, Generate: true})
			text, prov, model := run(t, a, agents.Input{Message: "When do I get my refund?", LLM: provider})
			if text != want || prov != ID || model != ModelRetrieval {
				t.Fatalf("got %q from %s/%s, want the quote %q", text, prov, model, want)
			}
		})
	}
}

func TestCostSavingQuotesWithoutAModel(t *testing.T) {
	fake := llmtest.NewOpenAI(func(int) llmtest.Reply { return llmtest.Reply{Chunks: []string{"x"}} })
	defer fake.Close()
	a := newAgent(t, Config{Retriever: &fixedRetriever{hits: []rag.Hit{refundHit}}, Generate: true})
	provider := fastChain(llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: fake.URL + "/v1"}))
	text, _, _ := run(t, a, agents.Input{Message: "When do I get my refund?", LLM: provider, CostSaving: true})
	if !strings.HasSuffix(text, Citation(refundHit)) || len(fake.Requests()) != 0 {
		t.Fatalf("reply %q after %d model calls", text, len(fake.Requests()))
	}
}

func TestRetrievalFailureIsAMissNotAnError(t *testing.T) {
	a := newAgent(t, Config{Retriever: &fixedRetriever{err: errors.New("database locked")}})
	text, _, _ := run(t, a, agents.Input{Message: "When do I get my refund?"})
	if !strings.HasPrefix(text, missReply) {
		t.Fatalf("reply %q", text)
	}
}

func TestTicketStoreFailureIsToldHonestly(t *testing.T) {
	a := newAgent(t, Config{Retriever: &fixedRetriever{}, Tickets: brokenTickets{}})
	text, _, _ := run(t, a, agents.Input{Message: "speak to a human", SessionID: "ses_1", UserID: "alice"})
	if !strings.Contains(text, "couldn't open a ticket") || strings.Contains(text, "TKT-") {
		t.Fatalf("reply %q", text)
	}
}

func TestSearchQueryDropsTheFrustration(t *testing.T) {
	ret := &fixedRetriever{hits: []rag.Hit{refundHit}}
	a := newAgent(t, Config{Retriever: ret})
	run(t, a, agents.Input{Message: "I'm so frustrated, where is my refund?"})
	if len(ret.queries) != 1 || strings.Contains(ret.queries[0], "frustrated") || !strings.Contains(ret.queries[0], "refund") {
		t.Fatalf("queries %q", ret.queries)
	}
}
