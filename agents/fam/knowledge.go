package fam

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
)

// KnowledgeModel is the model named on replies FAM quotes from the knowledge base.
const KnowledgeModel = "fam-knowledge"

// Knowledge finds passages of a knowledge base that answer a question; rag.Index implements
// it (the same index the support agent searches).
type Knowledge interface {
	Search(ctx context.Context, kb, query string, k int) ([]rag.Hit, error)
}

var _ Knowledge = (*rag.Index)(nil)

// knowledgeIntents are the messages that may be answered from the knowledge base: questions
// for information, not greetings, arithmetic or the time.
var knowledgeIntents = map[string]bool{
	nlu.IntentHowTo:           true,
	nlu.IntentInformation:     true,
	nlu.IntentTroubleshooting: true,
	nlu.IntentFollowUp:        true,
	nlu.IntentUnknown:         true,
}

// maxKnowledgeWords bounds a quoted answer; replies may be spoken.
const maxKnowledgeWords = 70

// lookup searches the knowledge base for a turn FAM's own rules cannot answer. Retrieval
// failing is logged and leaves FAM answering as it would without a knowledge base.
func (a *Agent) lookup(ctx context.Context, t *turn, in agents.Input) []rag.Hit {
	if a.cfg.Knowledge == nil || !knowledgeIntents[t.u.Intent.Name] || t.figuresAreComputed() {
		return nil
	}
	if len(t.stated) > 0 && !looksLikeRequest(t.message) {
		return nil // a statement about the user asks for nothing
	}
	hits, err := a.cfg.Knowledge.Search(ctx, a.cfg.KnowledgeBase, in.Message, a.cfg.KnowledgeTopK)
	if err != nil {
		if ctx.Err() == nil {
			a.cfg.Logger.WarnContext(ctx, "fam: knowledge search failed; answering without it", "session", in.SessionID, "kb", a.cfg.KnowledgeBase, "err", err)
		}
		return nil
	}
	return hits
}

// quote answers from the best hit without a model: the sentences sharing the most words with
// the question (at most three, in their order), then the citation. It only quotes.
func quote(question string, h rag.Hit) string {
	sents := articleSentences(h.Text)
	q := rag.Terms(question)
	// Retrieval matched the section as a whole, often on its heading ("Pairing" for "how do
	// I pair"): its opening sentence carries the heading's match.
	heading := overlap(q, h.Section)
	type scored struct {
		idx   int
		score float64
	}
	ranked := make([]scored, 0, len(sents))
	for i, s := range sents {
		score := overlap(q, s)
		if i == 0 {
			score += heading
		}
		// A section's point usually comes first: a small tie-breaker.
		ranked = append(ranked, scored{i, score - float64(i)*0.01})
	}
	slices.SortStableFunc(ranked, func(x, y scored) int {
		switch {
		case x.score > y.score:
			return -1
		case x.score < y.score:
			return 1
		}
		return 0
	})
	var picked []int
	words := 0
	for _, r := range ranked {
		n := len(strings.Fields(sents[r.idx]))
		if len(picked) > 0 && (r.score <= 0 || words+n > maxKnowledgeWords || len(picked) == 3) {
			break
		}
		picked = append(picked, r.idx)
		words += n
	}
	slices.Sort(picked)
	var b strings.Builder
	for _, i := range picked {
		b.WriteString(sents[i] + " ")
	}
	b.WriteString(citation(h))
	return b.String()
}

// overlap counts the question's terms found in text, a term matching its longer forms
// ("pair" matches "pairing").
func overlap(question []string, text string) float64 {
	terms := rag.Terms(text)
	n := 0.0
	seen := map[string]bool{}
	for _, q := range question {
		if seen[q] {
			continue
		}
		seen[q] = true
		for _, term := range terms {
			if term == q || (len(q) >= 4 && strings.HasPrefix(term, q)) || (len(term) >= 4 && strings.HasPrefix(q, term)) {
				n++
				break
			}
		}
	}
	return n
}

// citation names the source of an answer: "(source: pairing.md › Pairing)".
func citation(h rag.Hit) string { return "(source: " + h.Citation() + ")" }

// articleSentences cuts a chunk into sentences without its Markdown: headings, list markers,
// emphasis and code fences go.
func articleSentences(text string) []string {
	var out []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "```") || strings.HasPrefix(line, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimLeft(line, "-*+> ")
		line = strings.NewReplacer("**", "", "__", "", "`", "").Replace(line)
		for _, s := range sentences(line) {
			if s = strings.TrimSpace(s); s != "" {
				if !strings.ContainsAny(s[len(s)-1:], ".!?:") {
					s += "."
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// knowledgeSection is the system prompt's part holding the retrieved passages, for a model
// to answer from.
func knowledgeSection(hits []rag.Hit) string {
	if len(hits) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("- Passages from the knowledge base that may answer the message. Answer from them when they do, and end with the source written as in its header, such as (source: guide.md › Setup):\n")
	for i, h := range hits {
		fmt.Fprintf(&b, "  [%d] %s\n%s\n", i+1, citation(h), h.Text)
	}
	return b.String()
}
