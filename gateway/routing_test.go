package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/artwork"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/agents/support"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// startAllAgents serves the four agents as cmd wires them: FAM hands requests for a person to
// support and personal organisation to pa.
func startAllAgents(t *testing.T) *paGateway {
	t.Helper()
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/all.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	index, err := rag.NewIndex(rag.Config{Store: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	supportAgent, err := support.New(support.Config{Retriever: index, Tickets: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	paAgent, err := pa.New(pa.Config{Store: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	famAgent := fam.New(fam.Config{Knowledge: index, Handoffs: fam.Handoffs{Human: support.ID, Agents: []string{pa.ID}}, Logger: quiet})
	reg, err := agents.NewRegistry(famAgent, artwork.New(artwork.Config{}), supportAgent, paAgent)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: offline.New(offline.Config{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &paGateway{store: store, url: gatewaytest.Serve(t, engine, func(c *gateway.Config) { c.PA = store; c.Tickets = store })}
}

func metadataOf(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	md, ok := out["metadata"].(map[string]any)
	if !ok {
		t.Fatalf("no metadata in %v", out)
	}
	return md
}

// agentId "auto": the router picks the agent from the first message, says so in the
// metadata, and the session stays with that agent.
func TestChatAutoRoutesByMessage(t *testing.T) {
	g := startAllAgents(t)
	tests := []struct {
		message, agent, reason string
	}{
		{"remind me to call mom at 5pm tomorrow", "pa", "reminder"},
		{"add milk to my shopping list", "pa", "task"},
		{"what's on my calendar on Friday?", "pa", "calendar"},
		{"What DPI do I get from 3000 px printed 25 cm wide?", "artwork", "print size"},
		{"where is my order?", "support", "order"},
		{"I want to speak to a human", "support", "human"},
		{"hello, how are you?", "fam", "default"},
		{"what is 12 times 7?", "fam", "default"},
	}
	for _, tt := range tests {
		status, out := g.call(t, "POST", "/api/v2/chat", `{"agentId":"auto","userId":"ada","message":"`+tt.message+`"}`)
		if status != http.StatusOK {
			t.Fatalf("%q: %d %v", tt.message, status, out)
		}
		md := metadataOf(t, out)
		route, _ := md["route"].(map[string]any)
		if md["agentId"] != tt.agent || route["agentId"] != tt.agent || route["reason"] != tt.reason {
			t.Errorf("%q: agent %v route %v, want %s (%s)", tt.message, md["agentId"], route, tt.agent, tt.reason)
		}
	}

	// A reminder request went to pa, which really created it.
	if list, err := g.store.ListReminders(context.Background(), "ada", session.ReminderFilter{}); err != nil || len(list) != 1 {
		t.Fatalf("reminders %v %v", list, err)
	}

	// The session stays with the routed agent: "auto" continues it, another agent id is refused.
	_, first := g.call(t, "POST", "/api/v2/chat", `{"agentId":"auto","userId":"ada","message":"add eggs to my shopping list"}`)
	sid := first["sessionId"].(string)
	status, next := g.call(t, "POST", "/api/v2/chat", `{"agentId":"auto","userId":"ada","sessionId":"`+sid+`","message":"hello"}`)
	if md := metadataOf(t, next); status != 200 || md["agentId"] != "pa" || md["route"] != nil {
		t.Fatalf("continuing with auto: %d %v", status, next)
	}
	if status, out := g.call(t, "POST", "/api/v2/chat", `{"agentId":"fam","userId":"ada","sessionId":"`+sid+`","message":"hello"}`); status != http.StatusConflict || errCode(out) != gateway.CodeSessionConflict {
		t.Fatalf("continuing with another agent: %d %v", status, out)
	}
	// Unknown agents are still refused, and a missing one still asked for.
	if status, out := g.call(t, "POST", "/api/v2/chat", `{"agentId":"nope","message":"hello"}`); status != http.StatusNotFound || errCode(out) != gateway.CodeAgentNotFound {
		t.Fatalf("unknown agent: %d %v", status, out)
	}
	if status, out := g.call(t, "POST", "/api/v2/chat", `{"message":"hello"}`); status != http.StatusBadRequest || errCode(out) != gateway.CodeValidation {
		t.Fatalf("no agent: %d %v", status, out)
	}
}

// FAM hands a request for a person to support, which opens a ticket with what the user told
// FAM before: the conversation is carried over, and the session continues with support.
func TestFAMHandsOffToSupportWithTheConversation(t *testing.T) {
	g := startAllAgents(t)
	status, first := g.call(t, "POST", "/api/v2/chat", `{"agentId":"fam","userId":"bea","message":"My printer from order 5521 arrived broken"}`)
	if status != http.StatusOK {
		t.Fatalf("%d %v", status, first)
	}
	sid := first["sessionId"].(string)
	status, out := g.call(t, "POST", "/api/v2/chat", `{"agentId":"fam","userId":"bea","sessionId":"`+sid+`","message":"I want to speak to a human"}`)
	if status != http.StatusOK {
		t.Fatalf("%d %v", status, out)
	}
	md := metadataOf(t, out)
	handoff, _ := md["handoff"].(map[string]any)
	if md["agentId"] != "support" || handoff["from"] != "fam" || handoff["to"] != "support" || handoff["reason"] != "human" || !strings.Contains(out["content"].(string), "TKT-") {
		t.Fatalf("hand-off turn: %v", out)
	}
	tickets, err := g.store.ListTickets(context.Background(), "bea", session.TicketFilter{SessionID: sid})
	if err != nil || len(tickets) != 1 {
		t.Fatalf("tickets %v %v", tickets, err)
	}
	if !strings.Contains(tickets[0].Description, "order 5521 arrived broken") {
		t.Fatalf("the ticket lacks what the user told FAM:\n%s", tickets[0].Description)
	}
	// The session is support's now: its own id and "auto" continue it, fam's no longer does.
	if status, out := g.call(t, "POST", "/api/v2/chat", `{"agentId":"support","userId":"bea","sessionId":"`+sid+`","message":"thanks"}`); status != 200 || metadataOf(t, out)["agentId"] != "support" {
		t.Fatalf("continuing with support: %d %v", status, out)
	}
	if status, out := g.call(t, "POST", "/api/v2/chat", `{"agentId":"fam","userId":"bea","sessionId":"`+sid+`","message":"hello"}`); status != http.StatusConflict {
		t.Fatalf("continuing with fam: %d %v", status, out)
	}
	// Another user cannot reach the session, handed off or not.
	if status, _ := g.call(t, "POST", "/api/v2/chat", `{"agentId":"auto","userId":"eve","sessionId":"`+sid+`","message":"hello"}`); status != http.StatusNotFound {
		t.Fatalf("another user continuing the session: %d", status)
	}
}

// FAM hands "remind me ..." to pa, which creates the reminder; a statement about the user
// that merely mentions a meeting stays with FAM.
func TestFAMHandsOffToPA(t *testing.T) {
	g := startAllAgents(t)
	status, out := g.call(t, "POST", "/api/v2/chat", `{"agentId":"fam","userId":"cal","message":"remind me to water the plants at 6pm tomorrow"}`)
	if status != http.StatusOK {
		t.Fatalf("%d %v", status, out)
	}
	md := metadataOf(t, out)
	if handoff, _ := md["handoff"].(map[string]any); md["agentId"] != "pa" || handoff["to"] != "pa" || handoff["reason"] != "reminder" {
		t.Fatalf("hand-off turn: %v", out)
	}
	if list, err := g.store.ListReminders(context.Background(), "cal", session.ReminderFilter{}); err != nil || len(list) != 1 || !strings.Contains(list[0].Text, "water the plants") {
		t.Fatalf("reminders %v %v", list, err)
	}
	_, stays := g.call(t, "POST", "/api/v2/chat", `{"agentId":"fam","userId":"cal","message":"hello there"}`)
	if md := metadataOf(t, stays); md["agentId"] != "fam" || md["handoff"] != nil {
		t.Fatalf("a greeting was handed off: %v", stays)
	}
}
