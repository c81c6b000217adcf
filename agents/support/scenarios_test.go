package support_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/agents/support"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// These scenarios drive the support agent through the real gateway (POST /api/v2/chat) with
// the offline engine, over a real SQLite store and the test help articles in testdata/kb.

// testNow is when every ticket is opened: the agent's clock is stopped.
var testNow = time.Date(2025, time.March, 3, 9, 30, 0, 0, time.UTC)

type stoppedClock struct{}

func (stoppedClock) Now() time.Time { return testNow }

type harness struct {
	url   string
	store *session.SQLStore
}

func startSupport(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	store, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: t.TempDir() + "/support.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	index, err := rag.NewIndex(rag.Config{Store: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := index.IngestPath(ctx, rag.DefaultKB, "testdata/kb", nil); err != nil || sum.Files != 4 {
		t.Fatalf("ingest the help articles: %+v %v", sum, err)
	}
	agent, err := support.New(support.Config{Retriever: index, Tickets: store, Clock: stoppedClock{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := agents.NewRegistry(agent, agents.Passthrough{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: offline.New(offline.Config{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{url: gatewaytest.Serve(t, engine), store: store}
}

// reply is the part of a chat response the scenarios look at.
type reply struct {
	SessionID string `json:"sessionId"`
	Content   string `json:"content"`
	Intent    string `json:"intent"`
	Sentiment struct {
		Label string `json:"label"`
	} `json:"sentiment"`
	Metadata struct {
		Provider string  `json:"provider"`
		Model    string  `json:"model"`
		Cost     float64 `json:"cost"`
	} `json:"metadata"`
}

// say posts one message as user (empty: anonymous) in session (empty: a new one).
func (h *harness) say(t *testing.T, user, sessionID, message string) reply {
	t.Helper()
	var r reply
	gatewaytest.Chat(t, h.url, map[string]string{"agentId": support.ID, "message": message, "userId": user, "sessionId": sessionID}, &r)
	return r
}

func (h *harness) tickets(t *testing.T, user string) []session.Ticket {
	t.Helper()
	list, err := h.store.ListTickets(context.Background(), user, session.TicketFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

var ticketInReply = regexp.MustCompile(`TKT-(\d+)`)

// ticketOf returns the one ticket the user has and checks the reply names it.
func (h *harness) ticketOf(t *testing.T, user string, r reply) session.Ticket {
	t.Helper()
	list := h.tickets(t, user)
	if len(list) != 1 {
		t.Fatalf("%s has %d tickets, want 1: %+v", user, len(list), list)
	}
	if m := ticketInReply.FindString(r.Content); m != list[0].Ref() {
		t.Fatalf("reply names %q, ticket is %s: %q", m, list[0].Ref(), r.Content)
	}
	return list[0]
}

func TestScenarioAnswersWithCitation(t *testing.T) {
	h := startSupport(t)
	tests := []struct {
		question, mustSay, citation string
	}{
		{"How do I reset my password?", "Forgot password", "(source: account/passwords.md › Reset your password)"},
		{"How long does delivery take?", "3 to 5 working days", "(source: shipping.md › Delivery times)"},
		{"Where is my parcel?", "tracking link", "(source: shipping.md › Tracking your parcel)"},
		{"What payment methods do you accept?", "Visa, Mastercard", "(source: billing.txt)"},
		{"Can I exchange for a different size?", "return the item for a refund", "(source: returns.md › Exchanges)"},
	}
	for _, tt := range tests {
		t.Run(tt.question, func(t *testing.T) {
			r := h.say(t, "alice", "", tt.question)
			if !strings.Contains(r.Content, tt.mustSay) || !strings.HasSuffix(r.Content, tt.citation) {
				t.Fatalf("want an answer with %q ending %q, got %q", tt.mustSay, tt.citation, r.Content)
			}
			if r.Metadata.Provider != support.ID || r.Metadata.Model != support.ModelRetrieval || r.Metadata.Cost != 0 {
				t.Fatalf("metadata %+v", r.Metadata)
			}
		})
	}
	if n := len(h.tickets(t, "alice")); n != 0 {
		t.Fatalf("answered questions opened %d tickets", n)
	}
}

func TestScenarioInventsNothingWhenNothingMatches(t *testing.T) {
	h := startSupport(t)
	for _, q := range []string{"Do you sell gift cards?", "Is there a student discount?", "What's the weather in Paris?"} {
		r := h.say(t, "alice", "", q)
		if !strings.HasPrefix(r.Content, "I couldn't find that in our help articles.") || !strings.Contains(r.Content, "open a ticket") {
			t.Errorf("%q: want the honest miss and the offer, got %q", q, r.Content)
		}
		if strings.Contains(r.Content, "(source:") || r.Intent != support.IntentNotFound {
			t.Errorf("%q: nothing may be cited: %q (%s)", q, r.Content, r.Intent)
		}
	}
	if n := len(h.tickets(t, "alice")); n != 0 {
		t.Fatalf("a single miss opened %d tickets; it should only offer", n)
	}
}

func TestScenarioAcceptingTheOfferOpensATicket(t *testing.T) {
	h := startSupport(t)
	first := h.say(t, "alice", "", "Do you sell gift cards?")
	r := h.say(t, "alice", first.SessionID, "yes please")
	tk := h.ticketOf(t, "alice", r)
	if tk.Reason != support.ReasonLowConfidence || tk.Subject != "Do you sell gift cards?" || tk.SessionID != first.SessionID || tk.Status != session.TicketOpen {
		t.Fatalf("ticket %+v", tk)
	}
	if !strings.HasPrefix(r.Content, "Done: I've opened ticket TKT-") || r.Intent != support.IntentEscalation {
		t.Fatalf("reply %q (%s)", r.Content, r.Intent)
	}
	// Declining instead opens nothing.
	miss := h.say(t, "bob", "", "Do you sell gift cards?")
	if r := h.say(t, "bob", miss.SessionID, "no thanks"); !strings.Contains(r.Content, "No problem") {
		t.Fatalf("decline: %q", r.Content)
	}
	if n := len(h.tickets(t, "bob")); n != 0 {
		t.Fatalf("declining opened %d tickets", n)
	}
}

func TestScenarioEscalatesOnLowConfidence(t *testing.T) {
	h := startSupport(t)
	first := h.say(t, "alice", "", "Do you sell gift cards?")
	r := h.say(t, "alice", first.SessionID, "Can I pay with cryptocurrency?")
	tk := h.ticketOf(t, "alice", r)
	if tk.Reason != support.ReasonLowConfidence || tk.Priority != session.PriorityMedium || !strings.Contains(tk.Description, "gift cards") || !strings.Contains(tk.Description, "cryptocurrency") {
		t.Fatalf("ticket %+v", tk)
	}
	if !strings.HasPrefix(r.Content, "I couldn't find that in our help articles. I've opened ticket "+tk.Ref()) || !strings.Contains(r.Content, "within 4 hours") {
		t.Fatalf("reply %q", r.Content)
	}
}

func TestScenarioEscalatesOnExplicitRequest(t *testing.T) {
	h := startSupport(t)
	for i, msg := range []string{"I want to speak to a human", "agent please", "Can I talk to a person?", "get me a real person"} {
		user := fmt.Sprintf("user%d", i)
		t.Run(msg, func(t *testing.T) {
			r := h.say(t, user, "", msg)
			tk := h.ticketOf(t, user, r)
			if tk.Reason != support.ReasonRequested || tk.UserID != user || tk.AgentID != support.ID || tk.SessionID != r.SessionID {
				t.Fatalf("ticket %+v", tk)
			}
			if r.Intent != support.IntentEscalation || !strings.HasPrefix(r.Content, "Of course. I've opened ticket "+tk.Ref()) {
				t.Fatalf("reply %q (%s)", r.Content, r.Intent)
			}
		})
	}
}

func TestScenarioEscalatesOnAnger(t *testing.T) {
	h := startSupport(t)
	r := h.say(t, "alice", "", "This is useless, I'm furious! Where is my refund?")
	tk := h.ticketOf(t, "alice", r)
	if tk.Reason != support.ReasonFrustration || tk.Status != session.TicketEscalated || tk.Metadata["frustration"] != support.FrustrationCritical {
		t.Fatalf("ticket %+v", tk)
	}
	if !strings.HasPrefix(r.Content, "I'm sorry this has been so frustrating.") || r.Sentiment.Label != "negative" {
		t.Fatalf("reply %q (%s)", r.Content, r.Sentiment.Label)
	}
}

// Frustration that builds up: the first upset message gets an answer with an apology, the
// second in a row a person.
func TestScenarioEscalatesWhenFrustrationPersists(t *testing.T) {
	h := startSupport(t)
	first := h.say(t, "alice", "", "I'm really frustrated, where is my parcel?")
	if !strings.HasPrefix(first.Content, "I'm sorry for the trouble.") || !strings.Contains(first.Content, "(source: shipping.md › Tracking your parcel)") {
		t.Fatalf("first: %q", first.Content)
	}
	if n := len(h.tickets(t, "alice")); n != 0 {
		t.Fatalf("one frustrated message opened %d tickets", n)
	}
	r := h.say(t, "alice", first.SessionID, "That's annoying, the tracking link still doesn't work")
	tk := h.ticketOf(t, "alice", r)
	if tk.Reason != support.ReasonFrustration || tk.Status != session.TicketEscalated {
		t.Fatalf("ticket %+v", tk)
	}
}

func TestScenarioTicketPriorityAndSLA(t *testing.T) {
	h := startSupport(t)
	tests := []struct {
		msg      string
		priority string
		status   string
		within   string
		due      time.Duration
	}{
		{"This is urgent, I need to talk to a person now", session.PriorityUrgent, session.TicketEscalated, "within 15 minutes", 15 * time.Minute},
		{"I have a problem with my invoice, can I talk to someone?", session.PriorityHigh, session.TicketOpen, "within 1 hour", time.Hour},
		{"I'm a VIP customer, get me a manager", session.PriorityHigh, session.TicketEscalated, "within 1 hour", time.Hour},
		{"I have a question, can I talk to a human?", session.PriorityLow, session.TicketOpen, "within 24 hours", 24 * time.Hour},
		{"Please connect me to an agent about my parcel", session.PriorityMedium, session.TicketOpen, "within 4 hours", 4 * time.Hour},
	}
	for i, tt := range tests {
		user := fmt.Sprintf("customer%d", i)
		t.Run(tt.msg, func(t *testing.T) {
			r := h.say(t, user, "", tt.msg)
			tk := h.ticketOf(t, user, r)
			if tk.Priority != tt.priority || tk.Status != tt.status {
				t.Fatalf("ticket priority %s status %s, want %s %s", tk.Priority, tk.Status, tt.priority, tt.status)
			}
			if !tk.FirstResponseDue.Equal(testNow.Add(tt.due)) || !tk.ResolutionDue.Equal(testNow.Add(support.ResolutionSLA(tt.priority))) || !tk.CreatedAt.Equal(testNow) {
				t.Fatalf("due %v / %v, created %v", tk.FirstResponseDue, tk.ResolutionDue, tk.CreatedAt)
			}
			if !strings.Contains(r.Content, "(priority: "+tt.priority+")") || !strings.Contains(r.Content, tt.within) {
				t.Fatalf("reply %q should give priority %s and %q", r.Content, tt.priority, tt.within)
			}
		})
	}
}

// What the customer said before asking for a person counts: its urgency and its subject.
func TestScenarioTicketUsesTheConversation(t *testing.T) {
	h := startSupport(t)
	first := h.say(t, "alice", "", "My payment failed and the order is urgent")
	r := h.say(t, "alice", first.SessionID, "speak to a human")
	tk := h.ticketOf(t, "alice", r)
	if tk.Priority != session.PriorityUrgent || tk.Subject != "My payment failed and the order is urgent" || !strings.Contains(tk.Description, "speak to a human") {
		t.Fatalf("ticket %+v", tk)
	}
	// Asking again in the same conversation points to the same ticket.
	again := h.say(t, "alice", first.SessionID, "talk to a person please")
	if !strings.Contains(again.Content, "Your ticket "+tk.Ref()+" is already with our support team") {
		t.Fatalf("again: %q", again.Content)
	}
	if n := len(h.tickets(t, "alice")); n != 1 {
		t.Fatalf("%d tickets after asking twice", n)
	}
}

func TestScenarioTicketNumbersAndStatus(t *testing.T) {
	h := startSupport(t)
	a := h.say(t, "alice", "", "talk to a person about my refund")
	b := h.say(t, "bob", "", "human please")
	ta, tb := h.ticketOf(t, "alice", a), h.ticketOf(t, "bob", b)
	if ta.Ref() != "TKT-1001" || tb.Ref() != "TKT-1002" {
		t.Fatalf("numbers %s %s", ta.Ref(), tb.Ref())
	}
	// Alice can ask about her ticket, in a new conversation.
	r := h.say(t, "alice", "", "What's the status of ticket TKT-1001?")
	if r.Intent != support.IntentTicketStatus || !strings.Contains(r.Content, "Ticket TKT-1001") || !strings.Contains(r.Content, "is open") {
		t.Fatalf("status: %q (%s)", r.Content, r.Intent)
	}
	// Bob cannot learn anything about it, not even that it exists.
	r = h.say(t, "bob", "", "What's the status of ticket TKT-1001?")
	if !strings.Contains(r.Content, "I can't find ticket TKT-1001") || strings.Contains(r.Content, "refund") {
		t.Fatalf("bob saw alice's ticket: %q", r.Content)
	}
	// Anonymous callers share a user id: one cannot read another's ticket by number.
	anon := h.say(t, "", "", "I want to speak to a human about my invoice")
	anonTicket := ticketInReply.FindString(anon.Content)
	if r := h.say(t, "", anon.SessionID, "status of my ticket "+anonTicket); !strings.Contains(r.Content, "Ticket "+anonTicket) {
		t.Fatalf("anonymous owner: %q", r.Content)
	}
	if r := h.say(t, "", "", "status of my ticket "+anonTicket); !strings.Contains(r.Content, "I can't find ticket "+anonTicket) {
		t.Fatalf("another anonymous caller: %q", r.Content)
	}
}

func TestScenarioSmallTalkNeedsNoArticles(t *testing.T) {
	h := startSupport(t)
	r := h.say(t, "alice", "", "Hello!")
	if r.Intent != "greeting" || !strings.Contains(r.Content, "help articles") || strings.Contains(r.Content, "(source:") {
		t.Fatalf("greeting %q (%s)", r.Content, r.Intent)
	}
	r = h.say(t, "alice", r.SessionID, "thanks!")
	if r.Intent != "gratitude" || !strings.HasPrefix(r.Content, "You're welcome") {
		t.Fatalf("thanks %q (%s)", r.Content, r.Intent)
	}
}
