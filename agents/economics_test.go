package agents_test

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/llm/llmtest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// meteredProvider answers every request with the same chunks and usage, counts its calls and
// remembers the last request. gate, when set, holds each call until closed.
type meteredProvider struct {
	chunks []string
	usage  llm.Usage
	model  string
	// failAfter, when > 0, cuts the stream with an error after that many chunks.
	failAfter int
	gate      chan struct{}
	calls     atomic.Int64
	mu        sync.Mutex
	last      llm.Request
}

func (p *meteredProvider) Name() string { return "metered" }

func (p *meteredProvider) lastRequest() llm.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *meteredProvider) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		p.calls.Add(1)
		p.mu.Lock()
		p.last = req
		p.mu.Unlock()
		if p.gate != nil {
			select {
			case <-p.gate:
			case <-ctx.Done():
				yield(llm.Chunk{}, ctx.Err())
				return
			}
		}
		model := req.Model
		if model == "" {
			model = p.model
		}
		for i, c := range p.chunks {
			if p.failAfter > 0 && i == p.failAfter {
				yield(llm.Chunk{}, errors.New("upstream connection reset"))
				return
			}
			if !yield(llm.Chunk{Text: c, Model: model}, nil) {
				return
			}
		}
		u := p.usage
		yield(llm.Chunk{Usage: &u, Model: model}, nil)
	}
}

type economy struct {
	engine *agents.Engine
	store  *session.SQLStore
	kv     *session.MemoryKV
	cache  *agents.ResponseCache
	budget *agents.Budget
	alerts *alertLog
}

type alertLog struct {
	mu     sync.Mutex
	events []session.Event
}

func (a *alertLog) RecordEvent(_ context.Context, e session.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

func (a *alertLog) thresholds() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int
	for _, e := range a.events {
		out = append(out, e.Data["threshold"].(int))
	}
	return out
}

type economyOpts struct {
	cache  bool
	budget *agents.BudgetConfig
	prices *agents.Prices
	tweak  func(*agents.EngineConfig)
}

func newEconomy(t testing.TB, provider llm.Provider, o economyOpts) *economy {
	t.Helper()
	ctx := context.Background()
	store, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: t.TempDir() + "/econ.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ec := &economy{store: store, kv: session.NewMemoryKV(nil), alerts: &alertLog{}}
	reg, err := agents.NewRegistry(fam.New(fam.Config{}), agents.Passthrough{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	cfg := agents.EngineConfig{Store: store, Registry: reg, LLM: provider, Prices: o.prices, Logger: quiet}
	if o.cache {
		ec.cache, err = agents.NewResponseCache(agents.ResponseCacheConfig{KV: ec.kv})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cache = ec.cache
	}
	if o.budget != nil {
		b := *o.budget
		b.KV, b.Events, b.Logger = ec.kv, ec.alerts, quiet
		if ec.budget, err = agents.NewBudget(b); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ec.budget.Close)
		cfg.Budget = ec.budget
	}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	if ec.engine, err = agents.NewEngine(cfg); err != nil {
		t.Fatal(err)
	}
	return ec
}

// turn runs one turn and returns its result and the deltas seen.
func (ec *economy) turn(t *testing.T, req agents.Request) (agents.Result, []string, error) {
	t.Helper()
	tr, err := ec.engine.Start(context.Background(), req)
	if err != nil {
		return agents.Result{}, nil, err
	}
	var deltas []string
	res, err := tr.Run(context.Background(), func(s string) error { deltas = append(deltas, s); return nil })
	return res, deltas, err
}

func TestCachedReplyReplaysAsAStreamAtNoCost(t *testing.T) {
	p := &meteredProvider{chunks: []string{"Hello ", "there, ", "how can I help?"}, usage: llm.Usage{InputTokens: 100, OutputTokens: 8}, model: "gpt-4o-mini"}
	ec := newEconomy(t, p, economyOpts{cache: true})
	first, _, err := ec.turn(t, agents.Request{AgentID: "fam", Message: "Hello!"})
	if err != nil || first.Metadata.Cached || first.Metadata.Cost <= 0 {
		t.Fatalf("first turn: %+v %v", first.Metadata, err)
	}
	// Another caller, another session: the same first message is answered from the cache.
	second, deltas, err := ec.turn(t, agents.Request{AgentID: "fam", Message: "Hello!"})
	if err != nil {
		t.Fatal(err)
	}
	if p.calls.Load() != 1 {
		t.Fatalf("provider called %d times, want 1", p.calls.Load())
	}
	if !second.Metadata.Cached || second.Metadata.Cost != 0 || second.Content != first.Content || second.SessionID == first.SessionID {
		t.Fatalf("cached turn: %+v", second)
	}
	if len(deltas) != 3 || deltas[1] != "there, " {
		t.Fatalf("a hit must replay as the original chunks, got %q", deltas)
	}
	if second.Metadata.Provider != "metered" || second.Metadata.Model != "gpt-4o-mini" {
		t.Fatalf("a hit names the provider that made it: %+v", second.Metadata)
	}
	report, err := ec.engine.CostReport(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if report.Today.Requests != 2 || report.Today.CachedRequests != 1 || math.Abs(report.Today.USD-first.Metadata.Cost) > 1e-12 {
		t.Fatalf("cost report %+v", report.Today)
	}
	if st := ec.cache.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCutOrAbandonedStreamsAreNotCached(t *testing.T) {
	cut := &meteredProvider{chunks: []string{"Part ", "one ", "and two"}, failAfter: 2, model: "gpt-4o-mini"}
	ec := newEconomy(t, cut, economyOpts{cache: true})
	if _, _, err := ec.turn(t, agents.Request{AgentID: "fam", Message: "Hello!"}); err == nil {
		t.Fatal("a cut stream must fail the turn")
	}
	cut.failAfter = 0
	res, _, err := ec.turn(t, agents.Request{AgentID: "fam", Message: "Hello!"})
	if err != nil || res.Metadata.Cached || cut.calls.Load() != 2 {
		t.Fatalf("after a cut stream the provider must be asked again: %+v calls=%d %v", res.Metadata, cut.calls.Load(), err)
	}

	// A client that leaves mid-reply leaves nothing in the cache either.
	p := &meteredProvider{chunks: []string{"a ", "b ", "c"}, model: "gpt-4o-mini"}
	ec = newEconomy(t, p, economyOpts{cache: true})
	tr, err := ec.engine.Start(context.Background(), agents.Request{AgentID: "fam", Message: "Hello!"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background(), func(string) error { return errors.New("client gone") }); err == nil {
		t.Fatal("want the delivery error")
	}
	if res, _, _ := ec.turn(t, agents.Request{AgentID: "fam", Message: "Hello!"}); res.Metadata.Cached {
		t.Fatal("an abandoned reply was cached")
	}
}

func TestIdenticalConcurrentRequestsShareOneCall(t *testing.T) {
	const n = 8
	p := &meteredProvider{chunks: []string{"Hi ", "all"}, model: "gpt-4o-mini", gate: make(chan struct{})}
	ec := newEconomy(t, p, economyOpts{cache: true})
	var wg sync.WaitGroup
	results := make(chan agents.Result, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, _, err := ec.turn(t, agents.Request{AgentID: "fam", Message: "Hello!"})
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	// Release the one provider call only once every other request waits for it.
	for ec.cache.Stats().Waiting < n-1 {
		runtime.Gosched()
	}
	close(p.gate)
	wg.Wait()
	close(results)
	cached := 0
	for r := range results {
		if r.Content != "Hi all" {
			t.Fatalf("content %q", r.Content)
		}
		if r.Metadata.Cached {
			cached++
		}
	}
	if p.calls.Load() != 1 || cached != n-1 {
		t.Fatalf("calls=%d cached=%d, want 1 and %d", p.calls.Load(), cached, n-1)
	}
}

func TestCacheTTLFollowsTheIntent(t *testing.T) {
	clock := &movableClock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	kv := session.NewMemoryKV(clock)
	cache, err := agents.NewResponseCache(agents.ResponseCacheConfig{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	p := &meteredProvider{chunks: []string{"x"}, model: "m"}
	ask := func(ttl time.Duration) bool {
		cached := false
		for c, err := range cache.Stream(context.Background(), p, llm.Request{Messages: []llm.Message{{Role: "user", Content: "q"}}}, ttl) {
			if err != nil {
				t.Fatal(err)
			}
			cached = cached || c.Cached
		}
		return cached
	}
	if cache.TTL("time") != 0 || cache.TTL("greeting") != 7*24*time.Hour || cache.TTL("information") != 30*time.Minute || cache.TTL("whatever") != 5*time.Minute {
		t.Fatal("default TTLs changed")
	}
	if ask(0) || ask(0) {
		t.Fatal("ttl 0 must bypass the cache")
	}
	ask(30 * time.Minute)
	if !ask(30 * time.Minute) {
		t.Fatal("want a hit inside the TTL")
	}
	clock.advance(30 * time.Minute)
	if ask(30 * time.Minute) {
		t.Fatal("want a miss once the TTL has passed")
	}
}

type movableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *movableClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// The cost of a request with cached prompt tokens equals the hand-computed figure.
func TestCostOfCachedPromptTokens(t *testing.T) {
	cases := []struct {
		name  string
		chain func() (llm.Provider, func())
		want  float64
		tok   agents.Tokens
	}{
		{
			// gpt-4o-mini: prompt_tokens 1000 of which 400 cached, 200 out:
			// 600 x $0.15 + 400 x $0.075 + 200 x $0.60 per 1M = $0.000240.
			name: "openai",
			chain: func() (llm.Provider, func()) {
				srv := llmtest.NewOpenAI(func(int) llmtest.Reply {
					return llmtest.Reply{Chunks: []string{"ok"}, InputTokens: 1000, CachedTokens: 400, OutputTokens: 200}
				})
				return llm.NewOpenAI(llm.OpenAIConfig{APIKey: "k", BaseURL: srv.URL + "/v1", Model: "gpt-4o-mini"}), srv.Close
			},
			want: 0.000240,
			tok:  agents.Tokens{Input: 600, CachedInput: 400, Output: 200},
		},
		{
			// claude-haiku-4-5: 100 in, 1000 cache reads, 500 cache writes, 50 out:
			// 100 x $1 + 1000 x $0.10 + 500 x $1.25 + 50 x $5 per 1M = $0.001075.
			name: "anthropic",
			chain: func() (llm.Provider, func()) {
				srv := llmtest.NewAnthropic(func(int) llmtest.Reply {
					return llmtest.Reply{Chunks: []string{"ok"}, InputTokens: 100, CachedTokens: 1000, CacheWriteTokens: 500, OutputTokens: 50}
				})
				return llm.NewAnthropic(llm.AnthropicConfig{APIKey: "k", BaseURL: srv.URL, Model: "claude-haiku-4-5"}), srv.Close
			},
			want: 0.001075,
			tok:  agents.Tokens{Input: 100, CachedInput: 1000, CacheWrite: 500, Output: 50},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, stop := tc.chain()
			defer stop()
			ec := newEconomy(t, p, economyOpts{})
			res, _, err := ec.turn(t, agents.Request{AgentID: "passthrough", Message: "price me"})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(res.Metadata.Cost-tc.want) > 1e-12 || res.Metadata.Tokens != tc.tok {
				t.Fatalf("cost %.9f tokens %+v, want %.9f %+v", res.Metadata.Cost, res.Metadata.Tokens, tc.want, tc.tok)
			}
			totals, err := ec.store.CostTotals(context.Background(), "2000-01-01", "2999-12-31", session.ByProvider, "")
			if err != nil || len(totals) != 1 || totals[0].Key != tc.name || math.Abs(totals[0].USD-tc.want) > 1e-12 {
				t.Fatalf("persisted %+v %v", totals, err)
			}
		})
	}
}

// testPrices makes every turn of meteredProvider cost exactly $0.0005 (500 output tokens at
// $1 per 1M), the same as the engine's estimate, so budgets count whole turns.
func testPrices() *agents.Prices {
	p := agents.DefaultPrices()
	p.Models["unit-model"] = agents.ModelPrice{Output: 1}
	p.Models["cheap-model"] = agents.ModelPrice{Output: 1}
	return p
}

const turnCost = 0.0005

func TestBudgetThresholdsSavingModeAndPause(t *testing.T) {
	p := &meteredProvider{chunks: []string{"fine"}, usage: llm.Usage{OutputTokens: 500}, model: "unit-model"}
	ec := newEconomy(t, p, economyOpts{
		prices: testPrices(),
		budget: &agents.BudgetConfig{DailyUSD: 10 * turnCost, CriticalAgents: []string{"passthrough"}},
		tweak: func(c *agents.EngineConfig) {
			c.EstimateModel, c.EstimateMaxTokens = "unit-model", 500
			c.SavingModel, c.SavingMaxTokens = "cheap-model", 60
		},
	})
	for i := 1; i <= 10; i++ {
		res, _, err := ec.turn(t, agents.Request{AgentID: "fam", Message: "question " + strings.Repeat("?", i)})
		if err != nil {
			t.Fatalf("turn %d: %v", i, err)
		}
		req := p.lastRequest()
		saving := i == 10 // 9 turns spent = 90%
		if saving != (res.Metadata.Mode == "cost-saving") || saving != (req.Model == "cheap-model") || saving != (req.MaxTokens == 60) {
			t.Fatalf("turn %d: mode %q model %q maxTokens %d", i, res.Metadata.Mode, req.Model, req.MaxTokens)
		}
	}
	if got := ec.alerts.thresholds(); len(got) != 4 || got[0] != 50 || got[1] != 80 || got[2] != 90 || got[3] != 100 {
		t.Fatalf("alerts %v, want 50 80 90 100 in order", got)
	}
	_, _, err := ec.turn(t, agents.Request{AgentID: "fam", Message: "one more"})
	var be *agents.BudgetError
	if !errors.As(err, &be) || !errors.Is(err, agents.ErrBudgetExceeded) || be.Scope != "global daily" || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("want a budget error at 100%%, got %v", err)
	}
	if _, _, err := ec.turn(t, agents.Request{AgentID: "passthrough", Message: "critical"}); err != nil {
		t.Fatalf("a critical agent keeps answering: %v", err)
	}
	report, err := ec.engine.CostReport(context.Background())
	if err != nil || report.Mode != "paused" || len(report.Budgets) != 1 || report.Budgets[0].Percent < 100 {
		t.Fatalf("report %+v %v", report, err)
	}
}

// 50 concurrent turns against a budget of 10 turns' worth: at most 10 get through.
func TestBudgetHoldsUnderConcurrency(t *testing.T) {
	p := &meteredProvider{chunks: []string{"ok"}, usage: llm.Usage{OutputTokens: 500}, model: "unit-model", gate: make(chan struct{})}
	ec := newEconomy(t, p, economyOpts{
		prices: testPrices(),
		budget: &agents.BudgetConfig{DailyUSD: 10 * turnCost},
		tweak:  func(c *agents.EngineConfig) { c.EstimateModel, c.EstimateMaxTokens = "unit-model", 500 },
	})
	var started, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := ec.engine.Start(context.Background(), agents.Request{AgentID: "fam", Message: "q" + strings.Repeat("!", i%5)})
			if errors.Is(err, agents.ErrBudgetExceeded) {
				refused.Add(1)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			started.Add(1)
			if _, err := tr.Run(context.Background(), func(string) error { return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	// All admissions are decided before any provider call finishes.
	for started.Load()+refused.Load() < 50 {
		runtime.Gosched()
	}
	close(p.gate)
	wg.Wait()
	if started.Load() != 10 || refused.Load() != 40 {
		t.Fatalf("started %d refused %d, want 10 and 40", started.Load(), refused.Load())
	}
	report, _ := ec.engine.CostReport(context.Background())
	if math.Abs(report.Today.USD-10*turnCost) > 1e-12 {
		t.Fatalf("spent %.6f, want %.6f", report.Today.USD, 10*turnCost)
	}
}

func TestContextWindowFoldsOldTurns(t *testing.T) {
	w := agents.ContextWindow{KeepMessages: 4, MaxTokens: 1000, SummaryTokens: 100}
	var history []llm.Message
	for i := range 10 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		history = append(history, llm.Message{Role: role, Content: "Message number " + string(rune('A'+i)) + ". More detail follows here."})
	}
	recent, summary := w.Fit(history)
	if len(recent) != 4 || recent[3].Content != history[9].Content {
		t.Fatalf("recent %v", recent)
	}
	if !strings.Contains(summary, "User: Message number A.") || strings.Contains(summary, "More detail") || strings.Contains(summary, "number G") {
		t.Fatalf("summary %q", summary)
	}
	// A budget too small for everything keeps the newest summary lines.
	w.SummaryTokens = 12
	_, summary = w.Fit(history)
	if strings.Contains(summary, "number A") || !strings.Contains(summary, "number F") {
		t.Fatalf("summary under a tight budget %q", summary)
	}
	if recent, summary := w.Fit(history[:3]); len(recent) != 3 || summary != "" {
		t.Fatal("short histories pass through whole")
	}
}
