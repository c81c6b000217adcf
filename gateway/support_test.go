package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/agents/support"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// startSupportGateway serves the support agent, its tickets and the knowledge base over one
// SQLite store, in open mode.
func startSupportGateway(t *testing.T) *paGateway {
	t.Helper()
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/support.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	index, err := rag.NewIndex(rag.Config{Store: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := support.New(support.Config{Retriever: index, Tickets: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := agents.NewRegistry(agent)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: offline.New(offline.Config{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &paGateway{store: store, url: gatewaytest.Serve(t, engine, func(c *gateway.Config) {
		c.Tickets = store
		c.KnowledgeBase = index
	})}
}

// Acceptance 4 for tickets: a ticket opened through chat is its user's alone; another user
// can neither list, read nor change it over REST, and the owner can.
func TestTicketsFromChatBelongToTheirUser(t *testing.T) {
	g := startSupportGateway(t)
	status, reply := g.call(t, "POST", "/api/v2/chat", `{"agentId":"support","userId":"alice","message":"I want to speak to a human"}`)
	if status != http.StatusOK || !strings.Contains(reply["content"].(string), "TKT-") {
		t.Fatalf("chat: %d %v", status, reply)
	}
	_, mine := g.call(t, "GET", "/api/v2/tickets?userId=alice", "")
	if mine["total"] != float64(1) {
		t.Fatalf("alice's tickets: %v", mine)
	}
	ticket := mine["tickets"].([]any)[0].(map[string]any)
	id := ticket["id"].(string)
	if ticket["userId"] != "alice" || ticket["sessionId"] != reply["sessionId"] || ticket["status"] == "" || !strings.HasPrefix(ticket["ref"].(string), "TKT-") {
		t.Fatalf("ticket %v", ticket)
	}
	if _, theirs := g.call(t, "GET", "/api/v2/tickets?userId=bob", ""); theirs["total"] != float64(0) {
		t.Fatalf("bob lists %v", theirs)
	}
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/api/v2/tickets/" + id + "?userId=bob", ""},
		{"PATCH", "/api/v2/tickets/" + id, `{"userId":"bob","status":"closed"}`},
		{"GET", "/api/v2/tickets/tkt_missing?userId=alice", ""},
	} {
		if status, out := g.call(t, tt.method, tt.path, tt.body); status != http.StatusNotFound || errCode(out) != gateway.CodeNotFound {
			t.Fatalf("%s %s: %d %v", tt.method, tt.path, status, out)
		}
	}
	if _, got := g.call(t, "GET", "/api/v2/tickets/"+id+"?userId=alice", ""); got["status"] != ticket["status"] || got["closedAt"] != nil {
		t.Fatalf("bob's PATCH changed alice's ticket: %v", got)
	}
	status, closed := g.call(t, "PATCH", "/api/v2/tickets/"+id, `{"userId":"alice","status":"closed"}`)
	if status != http.StatusOK || closed["status"] != "closed" || closed["closedAt"] == nil {
		t.Fatalf("alice closes her ticket: %d %v", status, closed)
	}
	if _, open := g.call(t, "GET", "/api/v2/tickets?userId=alice&status=open", ""); open["total"] != float64(0) {
		t.Fatalf("open filter: %v", open)
	}
	// And through chat: bob asking for his tickets' status hears nothing of alice's.
	if _, bobs := g.call(t, "POST", "/api/v2/chat", `{"agentId":"support","userId":"bob","message":"what is the status of `+ticket["ref"].(string)+`?"}`); strings.Contains(bobs["content"].(string), "closed") {
		t.Fatalf("bob learns about alice's ticket: %v", bobs)
	}
}

func TestTicketsRESTRefusesBadInput(t *testing.T) {
	g := startSupportGateway(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"no user", "GET", "/api/v2/tickets", "", 400, gateway.CodeValidation},
		{"bad user", "GET", "/api/v2/tickets?userId=a%20b", "", 400, gateway.CodeValidation},
		{"bad status filter", "GET", "/api/v2/tickets?userId=alice&status=lost", "", 400, gateway.CodeValidation},
		{"bad limit", "GET", "/api/v2/tickets?userId=alice&limit=0", "", 400, gateway.CodeValidation},
		{"bad status", "PATCH", "/api/v2/tickets/x", `{"userId":"alice","status":"done"}`, 400, gateway.CodeValidation},
		{"no status", "PATCH", "/api/v2/tickets/x", `{"userId":"alice"}`, 400, gateway.CodeValidation},
		{"not JSON", "PATCH", "/api/v2/tickets/x", `{"status":`, 400, gateway.CodeInvalidJSON},
	}
	for _, tt := range tests {
		if status, out := g.call(t, tt.method, tt.path, tt.body); status != tt.status || errCode(out) != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, status, out, tt.status, tt.code)
		}
	}
}

// In keys mode the caller's key decides whose tickets are served; naming another user is
// refused.
func TestTicketsRESTFollowsAuthentication(t *testing.T) {
	ctx := context.Background()
	store, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: t.TempDir() + "/tickets.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ids := map[string]string{}
	for _, user := range []string{"alice", "bob"} {
		if _, err := store.EnsureUser(ctx, user, ""); err != nil {
			t.Fatal(err)
		}
		tk, err := store.CreateTicket(ctx, session.Ticket{UserID: user, Subject: user + "'s parcel", Status: session.TicketOpen, Priority: session.PriorityMedium})
		if err != nil {
			t.Fatal(err)
		}
		ids[user] = tk.ID
	}
	a := startAuthGateway(t, func(c *gateway.Config) { c.Tickets = store })
	if resp, out := do(t, "GET", a.URL+"/api/v2/tickets", bearer(a.alice), ""); resp.StatusCode != 200 || out["total"] != float64(1) || out["tickets"].([]any)[0].(map[string]any)["id"] != ids["alice"] {
		t.Fatalf("alice lists: %d %v", resp.StatusCode, out)
	}
	if resp, out := do(t, "GET", a.URL+"/api/v2/tickets?userId=bob", bearer(a.alice), ""); resp.StatusCode != http.StatusForbidden || errCode(out) != gateway.CodeForbidden {
		t.Fatalf("alice naming bob: %d %v", resp.StatusCode, out)
	}
	if resp, out := do(t, "PATCH", a.URL+"/api/v2/tickets/"+ids["bob"], bearer(a.alice), `{"status":"closed"}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("alice closing bob's ticket: %d %v", resp.StatusCode, out)
	}
	if tk, _ := store.GetTicket(ctx, "bob", ids["bob"]); tk.Status != session.TicketOpen {
		t.Fatalf("bob's ticket is %s", tk.Status)
	}
	if resp, _ := do(t, "GET", a.URL+"/api/v2/tickets", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
}

// Documents posted over REST are answered by the support agent at once, with their source,
// and leave the answers when deleted.
func TestKBDocumentsREST(t *testing.T) {
	g := startSupportGateway(t)
	doc := `{"name":"billing/invoices.md","content":"# Invoices\n\n## Downloading invoices\nOpen Settings, then Billing, and press Download next to the invoice you need.\n"}`
	if status, out := g.call(t, "POST", "/api/v2/kb/documents?kb=default", doc); status != http.StatusCreated || out["chunks"] != float64(1) || out["unchanged"] != false {
		t.Fatalf("ingest: %d %v", status, out)
	}
	if status, out := g.call(t, "POST", "/api/v2/kb/documents", doc); status != http.StatusOK || out["unchanged"] != true || out["embedded"] != float64(0) {
		t.Fatalf("ingest again: %d %v", status, out)
	}
	if _, list := g.call(t, "GET", "/api/v2/kb/documents", ""); list["total"] != float64(1) || list["documents"].([]any)[0].(map[string]any)["name"] != "billing/invoices.md" {
		t.Fatalf("list: %v", list)
	}
	ask := `{"agentId":"support","userId":"carol","message":"How do I download my invoices?"}`
	if _, reply := g.call(t, "POST", "/api/v2/chat", ask); !strings.Contains(reply["content"].(string), "press Download") || !strings.Contains(reply["content"].(string), "(source: billing/invoices.md › Downloading invoices)") {
		t.Fatalf("support's answer: %v", reply)
	}
	if status, _ := g.call(t, "DELETE", "/api/v2/kb/documents/billing%2Finvoices.md", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	if _, reply := g.call(t, "POST", "/api/v2/chat", ask); strings.Contains(reply["content"].(string), "press Download") {
		t.Fatalf("answered from a deleted document: %v", reply)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"no name", "POST", "/api/v2/kb/documents", `{"content":"text"}`, 400, gateway.CodeValidation},
		{"no content", "POST", "/api/v2/kb/documents", `{"name":"a.md","content":"  "}`, 400, gateway.CodeValidation},
		{"bad kb", "POST", "/api/v2/kb/documents?kb=../etc", `{"name":"a.md","content":"text"}`, 400, gateway.CodeValidation},
		{"bad kb listed", "GET", "/api/v2/kb/documents?kb=.x", "", 400, gateway.CodeValidation},
		{"delete missing", "DELETE", "/api/v2/kb/documents/nope.md", "", 404, gateway.CodeNotFound},
	}
	for _, tt := range tests {
		if status, out := g.call(t, tt.method, tt.path, tt.body); status != tt.status || errCode(out) != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, status, out, tt.status, tt.code)
		}
	}
}

// Only the admin key changes the knowledge base; users may list it.
func TestKBDocumentsNeedTheAdminKeyToChange(t *testing.T) {
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/kb.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	index, err := rag.NewIndex(rag.Config{Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a := startAuthGateway(t, func(c *gateway.Config) { c.KnowledgeBase = index })
	doc := `{"name":"a.md","content":"## A\nSome text."}`
	if resp, out := do(t, "POST", a.URL+"/api/v2/kb/documents", bearer(a.alice), doc); resp.StatusCode != http.StatusForbidden || errCode(out) != gateway.CodeForbidden {
		t.Fatalf("alice ingests: %d %v", resp.StatusCode, out)
	}
	if resp, out := do(t, "POST", a.URL+"/api/v2/kb/documents", bearer(testAdminKey), doc); resp.StatusCode != http.StatusCreated {
		t.Fatalf("admin ingests: %d %v", resp.StatusCode, out)
	}
	if resp, out := do(t, "GET", a.URL+"/api/v2/kb/documents", bearer(a.alice), ""); resp.StatusCode != 200 || out["total"] != float64(1) {
		t.Fatalf("alice lists: %d %v", resp.StatusCode, out)
	}
	if resp, _ := do(t, "DELETE", a.URL+"/api/v2/kb/documents/a.md", bearer(a.bob), ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob deletes: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("DELETE", a.URL+"/api/v2/kb/documents/a.md", nil)
	req.Header.Set("Authorization", bearer(testAdminKey))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("admin deletes: %d", resp.StatusCode)
	}
}

// Without the stores configured the endpoints say so.
func TestSupportRESTUnconfigured(t *testing.T) {
	g := startGateway(t, nil)
	for _, path := range []string{"/api/v2/tickets?userId=a", "/api/v2/kb/documents"} {
		if resp, out := do(t, "GET", g.URL+path, "", ""); resp.StatusCode != http.StatusServiceUnavailable || errCode(out) != gateway.CodeUnavailable {
			t.Errorf("%s: %d %v", path, resp.StatusCode, out)
		}
	}
}
