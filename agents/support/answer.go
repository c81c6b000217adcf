package support

import (
	"context"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
)

// Model names of the replies the agent writes itself.
const (
	// ModelRetrieval: an answer quoted from a help article.
	ModelRetrieval = "support-retrieval"
	// ModelRules: a canned reply or a ticket confirmation.
	ModelRules = "support-rules"
)

// say streams text the agent wrote itself, a few words at a time like a model, ending with
// an empty usage so the engine sees a complete reply.
func say(text string) iter.Seq2[llm.Chunk, error] {
	return sayAs(text, ModelRules)
}

func sayAs(text, model string) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		words := strings.SplitAfter(text, " ")
		for i := 0; i < len(words); i += 4 {
			piece := strings.Join(words[i:min(i+4, len(words))], "")
			if !yield(llm.Chunk{Text: piece, Provider: ID, Model: model}, nil) {
				return
			}
		}
		yield(llm.Chunk{Provider: ID, Model: model, Usage: &llm.Usage{}}, nil)
	}
}

// Citation is how an answer names its source: "(source: returns.md › Refund window)".
func Citation(h rag.Hit) string { return "(source: " + h.Citation() + ")" }

var (
	markdownPrefix = regexp.MustCompile(`^\s*(#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)`)
	markdownInline = strings.NewReplacer("**", "", "__", "", "`", "")
)

// maxQuoteWords bounds a quoted answer; replies may be spoken.
const maxQuoteWords = 70

// Extract answers from a hit without a model: the sentences of the chunk that share the most
// words with the question (at most three, in their original order, about 70 words), then
// the citation. It only ever quotes the article.
func Extract(question string, h rag.Hit) string {
	sents := splitSentences(h.Text)
	if len(sents) == 0 {
		return Citation(h)
	}
	q := map[string]bool{}
	for _, t := range rag.Terms(question) {
		q[t] = true
	}
	type scored struct {
		idx   int
		score float64
	}
	var ranked []scored
	for i, s := range sents {
		seen := map[string]bool{}
		score := 0.0
		for _, t := range rag.Terms(s) {
			if q[t] && !seen[t] {
				seen[t] = true
				score++
			}
		}
		// Earlier sentences usually carry the point of a section: a small tie-breaker.
		ranked = append(ranked, scored{i, score - float64(i)*0.01})
	}
	slices.SortStableFunc(ranked, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	var picked []int
	words := 0
	for _, r := range ranked {
		n := len(strings.Fields(sents[r.idx]))
		if len(picked) > 0 && (r.score <= 0 || words+n > maxQuoteWords || len(picked) == 3) {
			break
		}
		picked = append(picked, r.idx)
		words += n
	}
	slices.Sort(picked)
	var b strings.Builder
	for _, i := range picked {
		b.WriteString(sents[i])
		b.WriteString(" ")
	}
	b.WriteString(Citation(h))
	return b.String()
}

// splitSentences cuts a chunk into sentences, dropping Markdown markup; a line that is not a
// sentence (a sub-heading kept in a merged chunk, a code fence) is skipped.
func splitSentences(text string) []string {
	var out []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || trimmed == "" {
			continue
		}
		heading := strings.HasPrefix(trimmed, "#")
		trimmed = markdownInline.Replace(markdownPrefix.ReplaceAllString(trimmed, ""))
		if heading || (!strings.ContainsAny(trimmed[len(trimmed)-1:], ".!?:") && len(strings.Fields(trimmed)) < 5) {
			continue
		}
		start := 0
		for i := 0; i < len(trimmed)-1; i++ {
			if strings.ContainsRune(".!?", rune(trimmed[i])) && trimmed[i+1] == ' ' {
				out = append(out, strings.TrimSpace(trimmed[start:i+1]))
				start = i + 1
			}
		}
		if s := strings.TrimSpace(trimmed[start:]); s != "" {
			if !strings.ContainsAny(s[len(s)-1:], ".!?") {
				s += "."
			}
			out = append(out, s)
		}
	}
	return out
}

// SystemPrompt is the support agent's rules when a model words the answer; the help articles
// follow it.
const SystemPrompt = `You are the customer support assistant, speaking through Dartmouth, a voice and text gateway. Your replies may be read aloud, so write plain sentences without markdown, lists or emojis.

## Rules (CRITICAL)
- Answer only from the help articles below. Never add policies, prices, dates, order details or promises they do not state.
- If the articles do not answer the question, say exactly "` + missReply + `" and offer to open a ticket so a person can help.
- End the answer with the source you used, written exactly as in the article's header, such as (source: returns.md › Refund window).
- Keep it to two or three sentences.`

// generate asks the model to answer from the hits. If the chain falls back to the offline
// engine, or fails before any text, the answer is quoted from the best hit instead: the
// offline engine knows nothing of these articles.
func (a *Agent) generate(ctx context.Context, in agents.Input, hits []rag.Hit, empathy string) iter.Seq2[llm.Chunk, error] {
	var sys strings.Builder
	sys.WriteString(SystemPrompt)
	if in.Options.System != "" {
		sys.WriteString("\n\n## Instructions from the app\n")
		sys.WriteString(in.Options.System)
	}
	stable := sys.Len()
	if empathy != "" || in.Summary != "" {
		sys.WriteString("\n\n## Conversation Context")
		if empathy != "" {
			sys.WriteString("\n- The customer sounds frustrated: acknowledge it in a few words first.")
		}
		if in.Summary != "" {
			sys.WriteString("\n- Earlier in this conversation:\n")
			sys.WriteString(in.Summary)
		}
	}
	sys.WriteString("\n\n## Help articles")
	for i, h := range hits {
		fmt.Fprintf(&sys, "\n\n[%d] %s\n%s", i+1, Citation(h), h.Text)
	}
	temp := a.cfg.Temperature
	if in.Options.Temperature != nil {
		temp = *in.Options.Temperature
	}
	req := llm.Request{
		Model:       a.cfg.Model,
		System:      sys.String(),
		CachePrefix: stable,
		Messages:    append(slices.Clone(in.History), llm.Message{Role: "user", Content: in.Message}),
		Temperature: &temp,
		MaxTokens:   a.cfg.MaxTokens,
	}
	if in.Options.Model != "" {
		req.Model = in.Options.Model
	}
	if in.Options.MaxTokens > 0 && in.Options.MaxTokens < req.MaxTokens {
		req.MaxTokens = in.Options.MaxTokens
	}
	quoted := sayAs(empathy+Extract(in.Message, hits[0]), ModelRetrieval)
	return func(yield func(llm.Chunk, error) bool) {
		started := false
		for chunk, err := range in.LLM.Stream(ctx, req) {
			if err != nil {
				if !started && ctx.Err() == nil {
					a.cfg.Logger.WarnContext(ctx, "support: no model answered, quoting the article", "err", err)
					break
				}
				yield(chunk, err)
				return
			}
			if !started && chunk.Provider == offlineProvider {
				break
			}
			started = true
			if !yield(chunk, nil) {
				return
			}
		}
		if started {
			return
		}
		for chunk, err := range quoted {
			if !yield(chunk, err) {
				return
			}
		}
	}
}

// offlineProvider is the name the offline engine answers under in a chain.
const offlineProvider = "offline"
