package agents

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// ContextWindow keeps the last turns verbatim and folds older ones into a summary, so the
// prompt stays under a token budget however long the conversation.
type ContextWindow struct {
	// KeepMessages is how many recent messages are sent verbatim. Default 12.
	KeepMessages int
	// MaxTokens bounds history plus summary, counted at four characters a token. Default 3000.
	MaxTokens int
	// SummaryTokens bounds the summary. Default 400.
	SummaryTokens int
}

func (w ContextWindow) withDefaults() ContextWindow {
	if w.KeepMessages <= 0 {
		w.KeepMessages = 12
	}
	if w.MaxTokens <= 0 {
		w.MaxTokens = 3000
	}
	if w.SummaryTokens <= 0 {
		w.SummaryTokens = 400
	}
	return w
}

func tokensOf(s string) int { return (len(s) + 3) / 4 }

// Fit splits history into the recent messages kept verbatim and an extractive summary of the
// rest: the first sentence of each older message, the newest kept when it must be cut.
func (w ContextWindow) Fit(history []llm.Message) ([]llm.Message, string) {
	recent, older := w.split(history)
	return recent, w.extractive(older)
}

// split keeps the last KeepMessages verbatim, fewer when they alone are over the budget.
func (w ContextWindow) split(history []llm.Message) (recent, older []llm.Message) {
	keep := min(len(history), w.KeepMessages)
	recent = history[len(history)-keep:]
	older = history[:len(history)-keep]
	budget := w.MaxTokens - w.SummaryTokens
	for total := historyTokens(recent); total > budget && len(recent) > 1; total = historyTokens(recent) {
		older = history[:len(older)+1]
		recent = recent[1:]
	}
	return recent, older
}

// extractive summarizes messages by their first sentences, newest kept within SummaryTokens.
func (w ContextWindow) extractive(older []llm.Message) string {
	if len(older) == 0 {
		return ""
	}
	lines := make([]string, 0, len(older))
	for _, m := range older {
		who := "User"
		if m.Role == "assistant" {
			who = "Assistant"
		}
		lines = append(lines, who+": "+firstSentence(m.Content, 160))
	}
	used, start := 0, len(lines)
	for start > 0 && used+tokensOf(lines[start-1]) <= w.SummaryTokens {
		start--
		used += tokensOf(lines[start])
	}
	return strings.Join(lines[start:], "\n")
}

func historyTokens(msgs []llm.Message) int {
	n := 0
	for _, m := range msgs {
		n += tokensOf(m.Content)
	}
	return n
}

func firstSentence(s string, maxChars int) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.IndexAny(s, ".!?"); i >= 0 && i+1 < len(s) {
		s = s[:i+1]
	}
	if len(s) > maxChars {
		cut := strings.LastIndex(s[:maxChars], " ")
		if cut <= 0 {
			cut = maxChars
		}
		s = s[:cut] + "…"
	}
	return s
}

// Summarizer condenses older turns into a running summary. The engine falls back to the
// extractive summary when it fails or is not configured.
type Summarizer interface {
	// Summarize folds turns into previous, the summary of everything before them.
	Summarize(ctx context.Context, previous string, turns []llm.Message) (summary string, usage llm.Usage, model string, err error)
}

// LLMSummarizer asks the language model for the summary.
type LLMSummarizer struct {
	// LLM answers; usually the provider chain. Required.
	LLM llm.Provider
	// MaxTokens bounds the summary. Default 200.
	MaxTokens int
}

var _ Summarizer = LLMSummarizer{}

const summarizerPrompt = `You keep a running summary of a conversation between a user and an assistant. Merge the earlier summary with the new turns into one short paragraph in the third person. Keep names, facts the user stated about themselves, decisions, open questions and numbers; drop greetings and small talk. Reply with the summary only.`

// Summarize implements Summarizer.
func (s LLMSummarizer) Summarize(ctx context.Context, previous string, turns []llm.Message) (string, llm.Usage, string, error) {
	maxTokens := s.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 200
	}
	var b strings.Builder
	if previous != "" {
		b.WriteString("Earlier summary:\n" + previous + "\n\n")
	}
	b.WriteString("New turns:\n")
	for _, m := range turns {
		who := "User"
		if m.Role == "assistant" {
			who = "Assistant"
		}
		b.WriteString(who + ": " + m.Content + "\n")
	}
	zero := 0.0
	var out strings.Builder
	var usage llm.Usage
	model := ""
	for chunk, err := range s.LLM.Stream(ctx, llm.Request{System: summarizerPrompt, CachePrefix: len(summarizerPrompt),
		Messages: []llm.Message{{Role: "user", Content: b.String()}}, Temperature: &zero, MaxTokens: maxTokens}) {
		if err != nil {
			return "", usage, model, err
		}
		out.WriteString(chunk.Text)
		if chunk.Usage != nil {
			usage = *chunk.Usage
		}
		if chunk.Model != "" {
			model = chunk.Model
		}
	}
	summary := strings.TrimSpace(out.String())
	if summary == "" {
		return "", usage, model, errors.New("summarizer: empty summary")
	}
	return summary, usage, model, nil
}

// rollingSummary summarizes older turns block by block: the summary of the first k blocks is
// computed once, kept in the KV store, and reused by every later turn, so a long conversation
// costs one summary call per block rather than one per turn. The turns after the last whole
// block are summarized extractively.
func (e *Engine) rollingSummary(ctx context.Context, t *Turn, older []llm.Message) (string, bool) {
	block := e.cfg.Window.KeepMessages
	whole := len(older) / block * block
	summary := ""
	for end := block; end <= whole; end += block {
		key := "summary:" + t.sess.ID + ":" + strconv.Itoa(end)
		if raw, err := e.cfg.KV.Get(ctx, key); err == nil {
			summary = string(raw)
			continue
		}
		next, usage, model, err := e.cfg.Summarizer.Summarize(ctx, summary, older[end-block:end])
		if err != nil {
			e.cfg.Logger.WarnContext(ctx, "summary failed; using the extractive one", "session", t.sess.ID, "err", err)
			return "", false
		}
		summary = next
		_ = e.cfg.KV.Set(ctx, key, []byte(summary), 7*24*time.Hour)
		t.summaryCost += e.cfg.Prices.LLMCost(model, usage)
	}
	if rest := older[whole:]; len(rest) > 0 {
		summary = strings.TrimSpace(summary + "\n" + e.cfg.Window.extractive(rest))
	}
	return summary, true
}
