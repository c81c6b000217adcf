package session

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two migration files with the same number would make the second one silently skipped, and
// a dialect missing a version would drift from the others: loadMigrations refuses both.
func TestMigrationVersionsAreUnique(t *testing.T) {
	var want []int
	for _, m := range mustLoadMigrations(t, sqliteDialect.name) {
		want = append(want, m.version)
	}
	var got []int
	for _, m := range mustLoadMigrations(t, postgresDialect.name) {
		got = append(got, m.version)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("postgres runs migrations %v, sqlite %v", got, want)
	}
}

func TestKBDocumentsReplaceTheirChunks(t *testing.T) {
	forEachBackend(t, testKBDocumentsReplaceTheirChunks)
}

func testKBDocumentsReplaceTheirChunks(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	if rev, err := s.KBRevision(ctx, "default"); err != nil || rev != 0 {
		t.Fatalf("fresh revision = %d, %v", rev, err)
	}
	if _, err := s.GetDocument(ctx, "default", "returns.md"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing document: %v", err)
	}
	chunks := []KBChunk{{Section: "Refund window", Text: "Refunds within 30 days.", Tokens: 6}, {Section: "Exchanges", Text: "Swap sizes free.", Tokens: 4}}
	doc, err := s.PutDocument(ctx, KBDocument{KB: "default", Name: "returns.md", Title: "Returns", ContentHash: "h1"}, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.ID, "doc_") || doc.Chunks != 2 || !doc.CreatedAt.Equal(testEpoch) {
		t.Fatalf("stored document %+v", doc)
	}
	// Another knowledge base with the same document name is a different document.
	if _, err := s.PutDocument(ctx, KBDocument{KB: "other", Name: "returns.md", ContentHash: "x"}, chunks[:1]); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListChunks(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Doc != "returns.md" || got[0].Section != "Refund window" || got[1].Seq != 1 || got[1].Text != "Swap sizes free." || got[0].DocumentID != doc.ID {
		t.Fatalf("chunks %+v", got)
	}
	rev1, _ := s.KBRevision(ctx, "default")

	clock.Advance(time.Minute)
	again, err := s.PutDocument(ctx, KBDocument{KB: "default", Name: "returns.md", Title: "Returns v2", ContentHash: "h2"}, []KBChunk{{Section: "All", Text: "New policy."}})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != doc.ID || !again.CreatedAt.Equal(doc.CreatedAt) || !again.UpdatedAt.Equal(testEpoch.Add(time.Minute)) {
		t.Fatalf("an update keeps id and creation time: %+v", again)
	}
	got, _ = s.ListChunks(ctx, "default")
	if len(got) != 1 || got[0].Text != "New policy." {
		t.Fatalf("chunks were not replaced: %+v", got)
	}
	if rev2, _ := s.KBRevision(ctx, "default"); rev2 <= rev1 {
		t.Fatalf("revision did not move: %d then %d", rev1, rev2)
	}
	docs, err := s.ListDocuments(ctx, "default")
	if err != nil || len(docs) != 1 || docs[0].Title != "Returns v2" || docs[0].ContentHash != "h2" || docs[0].Chunks != 1 {
		t.Fatalf("documents %+v %v", docs, err)
	}

	if err := s.DeleteDocument(ctx, "default", "returns.md"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListChunks(ctx, "default"); len(got) != 0 {
		t.Fatalf("chunks outlived their document: %+v", got)
	}
	if err := s.DeleteDocument(ctx, "default", "returns.md"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if got, _ := s.ListChunks(ctx, "other"); len(got) != 1 {
		t.Fatalf("the other knowledge base was touched: %+v", got)
	}
	for name, d := range map[string]KBDocument{
		"no kb":   {Name: "a.md", ContentHash: "h"},
		"no name": {KB: "default", ContentHash: "h"},
		"no hash": {KB: "default", Name: "a.md"},
	} {
		if _, err := s.PutDocument(ctx, d, nil); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestEmbeddingsRoundTripExactly(t *testing.T) { forEachBackend(t, testEmbeddingsRoundTripExactly) }

func testEmbeddingsRoundTripExactly(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	vec := []float32{0, -1, 1, 0.1, -3.5e-8, math.MaxFloat32, float32(math.Inf(1))}
	key := EmbeddingKey("m1", "hello")
	if key == EmbeddingKey("m2", "hello") || key == EmbeddingKey("m1", "hello ") || EmbeddingKey("ab", "c") == EmbeddingKey("a", "bc") {
		t.Fatal("keys must differ by model and by text, and the boundary between them")
	}
	if err := s.PutEmbeddings(ctx, []Embedding{{Key: key, Model: "m1", Vector: vec}}); err != nil {
		t.Fatal(err)
	}
	// A second write of the same key keeps the first vector.
	if err := s.PutEmbeddings(ctx, []Embedding{{Key: key, Model: "m1", Vector: []float32{9}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEmbeddings(ctx, []string{key, "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Equal(got[key], vec) {
		t.Fatalf("got %v, want %v", got, vec)
	}
	// More keys than one IN list holds.
	var many []Embedding
	var keys []string
	for i := range embeddingBatch + 7 {
		k := EmbeddingKey("m1", fmt.Sprint(i))
		keys = append(keys, k)
		many = append(many, Embedding{Key: k, Model: "m1", Vector: []float32{float32(i)}})
	}
	if err := s.PutEmbeddings(ctx, many); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetEmbeddings(ctx, keys)
	if err != nil || len(got) != len(keys) || got[keys[len(keys)-1]][0] != float32(embeddingBatch+6) {
		t.Fatalf("batched read: %d of %d, %v", len(got), len(keys), err)
	}
	if err := s.PutEmbeddings(ctx, []Embedding{{Key: "k", Model: "m"}}); err == nil {
		t.Fatal("an empty vector must be refused")
	}
	if _, err := decodeVector([]byte{1, 2, 3}); err == nil {
		t.Fatal("a truncated vector must be refused")
	}
}

func TestTicketsBelongToTheirUser(t *testing.T) { forEachBackend(t, testTicketsBelongToTheirUser) }

func testTicketsBelongToTheirUser(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "alice", "")
	mustEnsureUser(t, s, "bob", "")
	due := testEpoch.Add(time.Hour)
	a1, err := s.CreateTicket(ctx, Ticket{UserID: "alice", AgentID: "support", SessionID: "ses_a", Subject: " Refund missing ", Description: "where is it",
		Status: TicketOpen, Priority: PriorityHigh, Reason: "requested", FirstResponseDue: due, Metadata: map[string]any{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if a1.Number != firstTicketNumber+1 || a1.Ref() != "TKT-1001" || !strings.HasPrefix(a1.ID, "tkt_") || a1.Subject != "Refund missing" {
		t.Fatalf("first ticket %+v", a1)
	}
	clock.Advance(time.Second)
	b1, err := s.CreateTicket(ctx, Ticket{UserID: "bob", Subject: "Login", Status: TicketEscalated, Priority: PriorityUrgent})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	a2, err := s.CreateTicket(ctx, Ticket{UserID: "alice", SessionID: "ses_b", Subject: "Invoice", Status: TicketOpen, Priority: PriorityLow})
	if err != nil {
		t.Fatal(err)
	}
	if b1.Number != 1002 || a2.Number != 1003 {
		t.Fatalf("numbers %d, %d", b1.Number, a2.Number)
	}

	got, err := s.GetTicket(ctx, "alice", a1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.FirstResponseDue.Equal(due) || !got.ResolutionDue.IsZero() || !got.ClosedAt.IsZero() || got.Metadata["k"] != "v" || got.Priority != PriorityHigh || got.Reason != "requested" {
		t.Fatalf("read back %+v", got)
	}
	if byNum, err := s.GetTicketByNumber(ctx, "alice", 1001); err != nil || byNum.ID != a1.ID {
		t.Fatalf("by number: %+v %v", byNum, err)
	}

	// Bob sees nothing of Alice's, whatever the method; the error does not tell "exists".
	if _, err := s.GetTicket(ctx, "bob", a1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob read alice's ticket: %v", err)
	}
	if _, err := s.GetTicketByNumber(ctx, "bob", a1.Number); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob read alice's ticket by number: %v", err)
	}
	if _, err := s.UpdateTicketStatus(ctx, "bob", a1.ID, TicketClosed); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob closed alice's ticket: %v", err)
	}
	if list, err := s.ListTickets(ctx, "bob", TicketFilter{}); err != nil || len(list) != 1 || list[0].ID != b1.ID {
		t.Fatalf("bob's list %+v %v", list, err)
	}
	list, err := s.ListTickets(ctx, "alice", TicketFilter{})
	if err != nil || len(list) != 2 || list[0].ID != a2.ID || list[1].ID != a1.ID {
		t.Fatalf("alice's list, newest first: %+v %v", list, err)
	}
	if list, _ := s.ListTickets(ctx, "alice", TicketFilter{SessionID: "ses_a"}); len(list) != 1 || list[0].ID != a1.ID {
		t.Fatalf("by session: %+v", list)
	}
	if list, _ := s.ListTickets(ctx, "alice", TicketFilter{Limit: 1}); len(list) != 1 {
		t.Fatalf("limit: %+v", list)
	}

	clock.Advance(time.Minute)
	closed, err := s.UpdateTicketStatus(ctx, "alice", a1.ID, TicketClosed)
	if err != nil || closed.Status != TicketClosed || !closed.ClosedAt.Equal(clock.Now()) || !closed.UpdatedAt.Equal(clock.Now()) {
		t.Fatalf("closed %+v %v", closed, err)
	}
	clock.Advance(time.Minute)
	if again, _ := s.UpdateTicketStatus(ctx, "alice", a1.ID, TicketClosed); !again.ClosedAt.Equal(closed.ClosedAt) {
		t.Fatalf("closing twice moved ClosedAt: %v then %v", closed.ClosedAt, again.ClosedAt)
	}
	reopened, err := s.UpdateTicketStatus(ctx, "alice", a1.ID, TicketPending)
	if err != nil || reopened.Status != TicketPending || !reopened.ClosedAt.IsZero() {
		t.Fatalf("reopened %+v %v", reopened, err)
	}
	if list, _ := s.ListTickets(ctx, "alice", TicketFilter{Status: TicketPending}); len(list) != 1 || list[0].ID != a1.ID {
		t.Fatalf("by status: %+v", list)
	}

	for name, tk := range map[string]Ticket{
		"no user":      {Subject: "x", Status: TicketOpen, Priority: PriorityLow},
		"no subject":   {UserID: "alice", Subject: "  ", Status: TicketOpen, Priority: PriorityLow},
		"bad status":   {UserID: "alice", Subject: "x", Status: "new", Priority: PriorityLow},
		"bad priority": {UserID: "alice", Subject: "x", Status: TicketOpen, Priority: "p1"},
		"unknown user": {UserID: "carol", Subject: "x", Status: TicketOpen, Priority: PriorityLow},
	} {
		if _, err := s.CreateTicket(ctx, tk); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := s.UpdateTicketStatus(ctx, "alice", a1.ID, "solved"); err == nil {
		t.Error("unknown status accepted")
	}
	if _, err := s.ListTickets(ctx, "alice", TicketFilter{Status: "solved"}); err == nil {
		t.Error("unknown status filter accepted")
	}
}

func TestParseTicketRef(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"TKT-1001", 1001, true},
		{"tkt 1001", 1001, true},
		{"#1001", 1001, true},
		{"1001", 1001, true},
		{" TKT_42 ", 42, true},
		{"TKT-", 0, false},
		{"TKT-10a", 0, false},
		{"0", 0, false},
		{"", 0, false},
		{"99999999999999999999", 0, false},
		{"-5", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseTicketRef(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseTicketRef(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
