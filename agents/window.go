package agents

import (
	"strings"

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

// Fit splits history into the recent messages kept verbatim and a summary of the rest. The
// summary is extractive: the first sentence of each older message, newest kept when it must be
// cut.
func (w ContextWindow) Fit(history []llm.Message) ([]llm.Message, string) {
	keep := min(len(history), w.KeepMessages)
	recent := history[len(history)-keep:]
	older := history[:len(history)-keep]
	// Drop the oldest recent messages while the verbatim part alone is over budget.
	budget := w.MaxTokens - w.SummaryTokens
	for total := historyTokens(recent); total > budget && len(recent) > 1; total = historyTokens(recent) {
		older = history[:len(older)+1]
		recent = recent[1:]
	}
	if len(older) == 0 {
		return recent, ""
	}
	lines := make([]string, 0, len(older))
	for _, m := range older {
		who := "User"
		if m.Role == "assistant" {
			who = "Assistant"
		}
		lines = append(lines, who+": "+firstSentence(m.Content, 160))
	}
	// Keep the newest lines that fit the summary budget.
	used, start := 0, len(lines)
	for start > 0 && used+tokensOf(lines[start-1]) <= w.SummaryTokens {
		start--
		used += tokensOf(lines[start])
	}
	return recent, strings.Join(lines[start:], "\n")
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
