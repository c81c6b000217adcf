package fam_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
)

// shelf is a Knowledge with fixed hits that records what it was asked.
type shelf struct {
	hits    []rag.Hit
	err     error
	queries []string
	kbs     []string
}

func (s *shelf) Search(_ context.Context, kb, query string, _ int) ([]rag.Hit, error) {
	s.queries = append(s.queries, query)
	s.kbs = append(s.kbs, kb)
	return s.hits, s.err
}

var lampHit = rag.Hit{Doc: "lamp.md", Section: "Zephyr lamp › Pairing", Score: 0.8,
	Text: "## Pairing\nHold the power button for **seven seconds** until the light blinks blue. Then open the app and tap Add device.\nThe lamp ships in three colours."}

func drainKnowledge(t *testing.T, reply agents.Reply) (text, model string) {
	t.Helper()
	var b strings.Builder
	for c, err := range reply.Stream {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		b.WriteString(c.Text)
		if c.Model != "" {
			model = c.Model
		}
	}
	return b.String(), model
}

// Offline, FAM quotes the best passage with its source; questions its rules answer, and
// messages that ask for no information, never reach the knowledge base.
func TestKnowledgeAnswersOfflineWithCitation(t *testing.T) {
	tests := []struct {
		name, message string
		hits          []rag.Hit
		err           error
		want          string // substring of the reply; "" means not the knowledge answer
		searched      bool
	}{
		{"how-to", "How do I pair the Zephyr lamp?", []rag.Hit{lampHit}, nil, "Hold the power button for seven seconds until the light blinks blue.", true},
		{"nothing above the threshold", "How do I pair the Zephyr lamp?", nil, nil, "", true},
		{"search fails", "How do I pair the Zephyr lamp?", nil, errors.New("db down"), "", true},
		{"greeting", "hello there", []rag.Hit{lampHit}, nil, "", false},
		{"arithmetic", "what is 12 times 7?", []rag.Hit{lampHit}, nil, "", false},
		{"a fact about the user", "My name is John", []rag.Hit{lampHit}, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kb := &shelf{hits: tt.hits, err: tt.err}
			reply, err := fam.New(fam.Config{Knowledge: kb, Logger: slog.New(slog.DiscardHandler)}).Respond(t.Context(), agents.Input{Message: tt.message, LLM: offline.New(offline.Config{})})
			if err != nil {
				t.Fatal(err)
			}
			text, model := drainKnowledge(t, reply)
			if tt.want != "" && (!strings.Contains(text, tt.want) || model != fam.KnowledgeModel) {
				t.Fatalf("reply %q (model %s), want it to contain %q from %s", text, model, tt.want, fam.KnowledgeModel)
			}
			if tt.want != "" && !strings.HasSuffix(text, "(source: lamp.md › Zephyr lamp › Pairing)") {
				t.Fatalf("reply %q does not end with its citation", text)
			}
			if tt.want == "" && (strings.Contains(text, "source:") || model == fam.KnowledgeModel) {
				t.Fatalf("reply %q (model %s) should not come from the knowledge base", text, model)
			}
			if searched := len(kb.queries) > 0; searched != tt.searched {
				t.Fatalf("searched = %v, want %v", searched, tt.searched)
			}
			if tt.searched && kb.kbs[0] != rag.DefaultKB {
				t.Fatalf("searched knowledge base %q", kb.kbs[0])
			}
		})
	}
}

// With a model, the passages go into the system prompt's context, after the cacheable head.
func TestKnowledgeGoesToTheModelAsContext(t *testing.T) {
	req, _ := respond(t, fam.Config{Knowledge: &shelf{hits: []rag.Hit{lampHit}}, KnowledgeBase: "help"}, agents.Input{Message: "How do I pair the Zephyr lamp?"})
	at := strings.Index(req.System, "(source: lamp.md › Zephyr lamp › Pairing)")
	if at < 0 || !strings.Contains(req.System, "Hold the power button") {
		t.Fatalf("system prompt lacks the passage:\n%s", req.System)
	}
	if req.CachePrefix <= 0 || at < req.CachePrefix {
		t.Fatalf("passage at %d is inside the cached prefix (%d)", at, req.CachePrefix)
	}
}
