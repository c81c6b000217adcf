package agents_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
)

// eventLog is an agents.EventRecorder that keeps what it is given.
type eventLog struct {
	mu     sync.Mutex
	events []session.Event
}

func (l *eventLog) RecordEvent(_ context.Context, e session.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) all() []session.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]session.Event(nil), l.events...)
}

// reports collects the engine's turn reports.
type reports struct {
	mu  sync.Mutex
	got []agents.TurnReport
}

func (r *reports) observe(tr agents.TurnReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, tr)
}

func (r *reports) last(t *testing.T) agents.TurnReport {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("no turn was reported")
	}
	return r.got[len(r.got)-1]
}

// Events go to EngineConfig.Events instead of the store when one is set, carrying what the
// usage report needs; observers hear about every finished turn, failed ones included.
func TestEngineEventsAndObservers(t *testing.T) {
	events := &eventLog{}
	h := newHarness(t, echo(), func(c *agents.EngineConfig) { c.Events = events })
	seen := &reports{}
	h.engine.Observe(seen.observe)

	res, _ := h.turn(t, agents.Request{AgentID: "echo", Message: "hi", UserID: "alice"})
	got := events.all()
	if len(got) != 1 || got[0].Type != session.EventTurnCompleted || got[0].AgentID != "echo" || got[0].UserID != "alice" || got[0].SessionID != res.SessionID {
		t.Fatalf("events: %+v", got)
	}
	wantMetadata(t, got[0].Data, map[string]any{"messageId": res.MessageID, "inputTokens": int64(10), "outputTokens": int64(5), "cost": res.Metadata.Cost})
	if _, ok := got[0].Data["firstTokenMs"]; !ok {
		t.Errorf("no firstTokenMs in %v", got[0].Data)
	}
	h.wantEvents(t, "alice", map[string]int{session.EventTurnCompleted: 0}) // not written to the store
	r := seen.last(t)
	if r.Err != nil || r.AgentID != "echo" || r.UserID != "alice" || r.Provider != "fake" || r.Tokens.Output != 5 || r.FirstToken <= 0 || r.Duration < r.FirstToken {
		t.Errorf("report of a good turn: %+v", r)
	}

	turn := h.start(t, agents.Request{AgentID: "broken", Message: "hi", UserID: "alice"})
	if _, err := turn.Run(t.Context(), func(string) error { return nil }); !errors.Is(err, errAgentBroken) {
		t.Fatal(err)
	}
	if got := events.all(); len(got) != 2 || got[1].Type != session.EventTurnFailed {
		t.Errorf("events after a failure: %+v", got)
	}
	if r := seen.last(t); !errors.Is(r.Err, errAgentBroken) || errors.Is(r.Err, context.Canceled) || r.FirstToken != 0 {
		t.Errorf("report of a failed turn: %+v", r)
	}

	// A client that leaves before any text is told apart from a broken agent.
	ctx, cancel := context.WithCancel(t.Context())
	turn = h.start(t, agents.Request{AgentID: "echo", Message: "hi", UserID: "alice"})
	cancel()
	if _, err := turn.Run(ctx, func(string) error { return nil }); err == nil {
		t.Fatal("a cancelled turn succeeded")
	}
	if r := seen.last(t); !errors.Is(r.Err, context.Canceled) {
		t.Errorf("report of an abandoned turn: %+v", r)
	}

	// The gateway's own events go the same way.
	if err := h.engine.RecordEvent(t.Context(), session.Event{Type: session.EventVoiceTurn, UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	if got := events.all(); got[len(got)-1].Type != session.EventVoiceTurn {
		t.Errorf("RecordEvent did not reach the recorder: %+v", got)
	}
}

// Without EngineConfig.Events the store records the events, one per turn.
func TestEngineEventsDefaultToTheStore(t *testing.T) {
	h := newHarness(t, echo())
	h.turn(t, agents.Request{AgentID: "echo", Message: "hi", UserID: "alice"})
	h.wantEvents(t, "alice", map[string]int{session.EventTurnCompleted: 1})
}
