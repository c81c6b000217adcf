package session

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The hourly roll-up groups events by agent, type, intent and tier (a turn's voice tier from the
// voice.turn of its reply, even one written just after the hour, else "text"); aggregating an
// hour again replaces its rows, so a late event is counted once; usage sums the hours by any
// dimensions.
func TestAnalyticsRollUp(t *testing.T) { forEachBackend(t, testAnalyticsRollUp) }

func testAnalyticsRollUp(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "alice", "paid")
	mustEnsureUser(t, s, "bob", "free")
	h0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	h1 := h0.Add(time.Hour)
	day2 := h0.Add(24 * time.Hour)
	record := func(at time.Time, typ, user, agent string, data map[string]any) {
		t.Helper()
		if err := s.RecordEvent(ctx, Event{Type: typ, UserID: user, AgentID: agent, SessionID: NewID("ses"), CreatedAt: at, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	turn := func(intent string, cost float64, cached bool, ms int) map[string]any {
		return map[string]any{"intent": intent, "cost": cost, "cached": cached, "processingMs": ms, "provider": "openai"}
	}
	record(h0.Add(time.Minute), "turn.completed", "alice", "fam", turn("greeting", 0.25, false, 100))
	record(h0.Add(2*time.Minute), "turn.completed", "alice", "fam", turn("greeting", 0, true, 10))
	record(h0.Add(3*time.Minute), "turn.completed", "bob", "fam", turn("greeting", 0.5, false, 300))
	record(h0.Add(4*time.Minute), "turn.completed", "bob", "pa", map[string]any{"intent": "reminder", "messageId": "m-pa", "cost": 1.0})
	record(h1.Add(10*time.Second), "voice.turn", "bob", "pa", map[string]any{"tier": "cloud", "messageId": "m-pa", "ttsCost": 0.01})
	record(h0.Add(5*time.Minute), "turn.failed", "alice", "fam", map[string]any{"error": "boom"})
	record(h0.Add(6*time.Minute), "budget.alert", "system", "", map[string]any{"percent": 50})
	record(h1.Add(time.Minute), "turn.completed", "alice", "fam", turn("greeting", 1, false, 50)) // the next hour
	record(day2, "turn.completed", "alice", "support", turn("howto", 2, false, 20))

	if n, err := s.AggregateAnalytics(ctx, h0.Add(30*time.Minute)); err != nil || n != 6 {
		t.Fatalf("AggregateAnalytics(h0) = %d, %v; want 6 events", n, err)
	}
	if latest, err := s.LatestAnalyticsHour(ctx); err != nil || !latest.Equal(h0) {
		t.Fatalf("LatestAnalyticsHour = %v, %v", latest, err)
	}
	// A late event of h0, then h0 again: counted once, nothing doubled.
	record(h0.Add(59*time.Minute), "turn.completed", "bob", "fam", turn("greeting", 0.25, false, 100))
	for _, h := range []time.Time{h0, h0, h1, day2} {
		if _, err := s.AggregateAnalytics(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	var hourly int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM analytics_hourly`).Scan(&hourly); err != nil {
		t.Fatal(err)
	}
	if hourly != 7 {
		t.Fatalf("analytics_hourly holds %d rows, want 7 groups", hourly)
	}

	day := Day(h0)
	from, to := h0, day2.Add(time.Hour)
	tests := []struct {
		name  string
		group []AnalyticsGroup
		want  []AnalyticsUsageRow
	}{
		{"by day", []AnalyticsGroup{AnalyticsByDay}, []AnalyticsUsageRow{
			{Day: day, Events: 9, Turns: 6, Failures: 1, Cached: 1, CostUSD: 3, ProcessingMs: 560},
			{Day: Day(day2), Events: 1, Turns: 1, CostUSD: 2, ProcessingMs: 20},
		}},
		{"by tier", []AnalyticsGroup{AnalyticsByTier}, []AnalyticsUsageRow{
			{Tier: "", Events: 1},
			{Tier: "cloud", Events: 2, Turns: 1, CostUSD: 1},
			{Tier: "text", Events: 7, Turns: 6, Failures: 1, Cached: 1, CostUSD: 4, ProcessingMs: 580},
		}},
		{"by agent and intent", []AnalyticsGroup{AnalyticsByAgent, AnalyticsByIntent}, []AnalyticsUsageRow{
			{Events: 1},
			{AgentID: "fam", Intent: "greeting", Events: 5, Turns: 5, Cached: 1, CostUSD: 2, ProcessingMs: 560},
			{AgentID: "fam", Intent: "unknown", Events: 1, Failures: 1},
			{AgentID: "pa", Events: 1},
			{AgentID: "pa", Intent: "reminder", Events: 1, Turns: 1, CostUSD: 1},
			{AgentID: "support", Intent: "howto", Events: 1, Turns: 1, CostUSD: 2, ProcessingMs: 20},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AnalyticsUsage(ctx, from, to, tt.group...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("AnalyticsUsage =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	// The default grouping is day, agent, intent and tier; the window is half-open.
	got, err := s.AnalyticsUsage(ctx, h1, day2)
	if err != nil {
		t.Fatal(err)
	}
	want := []AnalyticsUsageRow{
		{Day: day, AgentID: "fam", Intent: "greeting", Tier: "text", Events: 1, Turns: 1, CostUSD: 1, ProcessingMs: 50},
		{Day: day, AgentID: "pa", Tier: "cloud", Events: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("default grouping of h1 = %+v, want %+v", got, want)
	}
	if _, err := s.AnalyticsUsage(ctx, from, to, "user_id; DROP TABLE users"); err == nil || !strings.Contains(err.Error(), "unknown grouping") {
		t.Fatalf("a bad grouping: %v", err)
	}
}
