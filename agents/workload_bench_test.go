package agents_test

import (
	"context"
	"iter"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// pricedEcho answers at once and bills like gpt-4o-mini would: prompt and reply at four
// characters a token.
type pricedEcho struct{}

func (pricedEcho) Name() string { return "priced-echo" }

func (pricedEcho) Stream(_ context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		prompt := len(req.System)
		for _, m := range req.Messages {
			prompt += len(m.Content)
		}
		reply := "Here is a helpful answer about " + req.Messages[len(req.Messages)-1].Content
		for _, w := range strings.SplitAfter(reply, " ") {
			if !yield(llm.Chunk{Text: w, Model: "gpt-4o-mini"}, nil) {
				return
			}
		}
		yield(llm.Chunk{Model: "gpt-4o-mini", Usage: &llm.Usage{InputTokens: int64(prompt / 4), OutputTokens: int64(len(reply) / 4)}}, nil)
	}
}

// workload is a replayable day of conversations: openings and FAQs repeat across users (a few
// are very common, most are rare), follow-ups are more personal.
func workload(conversations int, seed uint64) [][]string {
	r := rand.New(rand.NewPCG(seed, 1))
	openings := []string{"Hello!", "Hi", "Hello!", "Hey there", "Good morning", "Hello!"}
	faqs := []string{
		"What are your opening hours?", "How do I reset my password?", "Do you ship internationally?",
		"How can I contact support?", "What payment methods do you accept?", "Where is my order?",
		"How do I cancel my subscription?", "Can I change my delivery address?",
	}
	zipf := rand.NewZipf(r, 1.3, 1, uint64(len(faqs)-1))
	var out [][]string
	for i := range conversations {
		conv := []string{openings[r.IntN(len(openings))], faqs[zipf.Uint64()]}
		for range r.IntN(3) {
			if r.IntN(3) == 0 {
				conv = append(conv, faqs[zipf.Uint64()])
			} else {
				conv = append(conv, "My account number is "+strings.Repeat("7", 1+i%9)+", can you check it?")
			}
		}
		conv = append(conv, "Thanks!")
		out = append(out, conv)
	}
	return out
}

type workloadResult struct {
	turns   int
	usd     float64
	hitRate float64
}

func replay(b *testing.B, convs [][]string, cache bool) workloadResult {
	b.Helper()
	ec := newEconomy(b, pricedEcho{}, economyOpts{cache: cache})
	var res workloadResult
	ctx := context.Background()
	for _, conv := range convs {
		sid := ""
		for _, msg := range conv {
			tr, err := ec.engine.Start(ctx, agents.Request{AgentID: "fam", Message: msg, SessionID: sid})
			if err != nil {
				b.Fatal(err)
			}
			r, err := tr.Run(ctx, func(string) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			sid = r.SessionID
			res.turns++
			res.usd += r.Metadata.Cost
		}
	}
	if cache {
		res.hitRate = ec.cache.Stats().HitRate
	}
	return res
}

// BenchmarkReplayedConversations replays 80 conversations (over 200 turns) with and without
// the response cache and reports the hit rate and the cost per 1,000 conversations.
func BenchmarkReplayedConversations(b *testing.B) {
	convs := workload(80, 42)
	var with, without workloadResult
	for b.Loop() {
		without = replay(b, convs, false)
		with = replay(b, convs, true)
	}
	if with.turns < 200 {
		b.Fatalf("workload has %d turns, want at least 200", with.turns)
	}
	perThousand := 1000 / float64(len(convs))
	b.ReportMetric(float64(with.turns), "turns")
	b.ReportMetric(with.hitRate*100, "cache-hit-%")
	b.ReportMetric(without.usd*perThousand, "USD/1k-conv-uncached")
	b.ReportMetric(with.usd*perThousand, "USD/1k-conv-cached")
	b.ReportMetric(100*(1-with.usd/without.usd), "saved-%")
}
