package session

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The ledger counts a request once however often it is recorded, and sums it by every
// grouping, per user when asked.
func TestCostLedger(t *testing.T) { forEachBackend(t, testCostLedger) }

func testCostLedger(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	yesterday := testEpoch.Add(-24 * time.Hour)
	costs := []Cost{
		{ID: "r1", UserID: "alice", AgentID: "fam", Kind: "llm", Provider: "openai", Model: "gpt-4o-mini", InputTokens: 1000, CachedInputTokens: 200, OutputTokens: 50, USD: 0.5},
		{ID: "r2", UserID: "alice", AgentID: "fam", Kind: "tts", Provider: "elevenlabs", Units: 120, USD: 0.25},
		{ID: "r3", UserID: "alice", AgentID: "support", Kind: "llm", Provider: "openai", Cached: true},
		{ID: "r4", UserID: "bob", AgentID: "fam", Kind: "llm", Provider: "anthropic", USD: 1, CreatedAt: yesterday},
	}
	for _, c := range costs {
		if err := s.RecordCost(ctx, c); err != nil {
			t.Fatalf("RecordCost(%s): %v", c.ID, err)
		}
	}
	clock.Advance(time.Hour)
	again := costs[0]
	again.USD = 99
	if err := s.RecordCost(ctx, again); err != nil {
		t.Fatalf("recording r1 again: %v", err)
	}
	today, before := Day(testEpoch), Day(yesterday)
	tests := []struct {
		name     string
		from, to string
		group    CostGroup
		user     string
		want     []CostTotal
	}{
		{"everything", before, today, ByNothing, "", []CostTotal{{USD: 1.75, Requests: 4, CachedRequests: 1}}},
		{"today", today, today, ByNothing, "", []CostTotal{{USD: 0.75, Requests: 3, CachedRequests: 1}}},
		{"by agent, costliest first", before, today, ByAgent, "", []CostTotal{{Key: "fam", USD: 1.75, Requests: 3}, {Key: "support", Requests: 1, CachedRequests: 1}}},
		{"by user", before, today, ByUser, "", []CostTotal{{Key: "bob", USD: 1, Requests: 1}, {Key: "alice", USD: 0.75, Requests: 3, CachedRequests: 1}}},
		{"by day", before, today, ByDay, "", []CostTotal{{Key: before, USD: 1, Requests: 1}, {Key: today, USD: 0.75, Requests: 3, CachedRequests: 1}}},
		{"by kind for one user", before, today, ByKind, "alice", []CostTotal{{Key: "llm", USD: 0.5, Requests: 2, CachedRequests: 1}, {Key: "tts", USD: 0.25, Requests: 1}}},
		{"by provider for one user", before, today, ByProvider, "bob", []CostTotal{{Key: "anthropic", USD: 1, Requests: 1}}},
		{"nobody's", before, today, ByAgent, "carol", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.CostTotals(ctx, tt.from, tt.to, tt.group, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CostTotals = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := s.CostTotals(ctx, before, today, CostGroup("user_id; DROP TABLE costs"), ""); err == nil || !strings.Contains(err.Error(), "unknown grouping") {
		t.Errorf("a made-up grouping: err = %v", err)
	}
}
