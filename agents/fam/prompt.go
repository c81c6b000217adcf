package fam

import (
	"fmt"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam/memory"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

const contextHeading = "\n\n## Conversation Context\n"

// maxQuoted bounds an earlier answer quoted in the prompt.
const maxQuoted = 600

// system builds the system prompt: the stable head (SystemPrompt and the constraints), the
// app's instructions, then this turn's context.
func (a *Agent) system(t *turn, in agents.Input) string {
	var b strings.Builder
	b.WriteString(a.stable)
	if in.Options.System != "" {
		// The app's own instructions come after FAM's rules, which still win.
		b.WriteString("\n\n## Instructions from the app\n")
		b.WriteString(in.Options.System)
	}
	b.WriteString(contextHeading)
	s := t.u.Sentiment
	fmt.Fprintf(&b, "- The user's message reads as %s (confidence %.2f) with %s sentiment.\n", t.u.Intent.Name, t.u.Intent.Confidence, s.Label)
	if s.Label == nlu.SentimentNegative {
		b.WriteString("- Acknowledge the user's frustration briefly before helping.\n")
	}
	if t.frustration >= rankModerate {
		fmt.Fprintf(&b, "- The user's frustration is %s (score %d).", s.Frustration, s.FrustrationScore)
		if t.frustration >= rankHigh {
			b.WriteString(" Apologise briefly, keep the reply short, and offer to put them in touch with a person or to start over.")
		}
		b.WriteString("\n")
	}
	if rep := t.u.Repeat; rep != nil {
		fmt.Fprintf(&b, "- The user is asking again something they asked before (%q).", clip(rep.Question, 200))
		if t.previous != "" {
			fmt.Fprintf(&b, " Your earlier answer was: %q.", clip(t.previous, maxQuoted))
		}
		b.WriteString(" It did not help: answer differently, with other words, a concrete example or another angle, or ask what is unclear. Do not repeat your earlier answer.\n")
	}
	if facts := t.facts.All(); len(facts) > 0 {
		b.WriteString("- Facts the user has told you in this conversation (their own words; use them when relevant):\n")
		for _, f := range facts {
			fmt.Fprintf(&b, "  - %s: %s\n", memory.Label(f.Key), f.Value)
		}
	}
	if t.conv.summary != "" {
		b.WriteString("- Earlier in this conversation:\n")
		b.WriteString(t.conv.summary)
		b.WriteString("\n")
	}
	b.WriteString(knowledgeSection(t.knowledge))
	for _, key := range []string{"timezone", "language", "location", "page"} {
		if v, ok := in.Context[key]; ok {
			if s, ok := v.(string); ok && s != "" && len(s) < 200 {
				fmt.Fprintf(&b, "- The user's %s: %s\n", key, s)
			}
		}
	}
	return b.String()
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndex(s[:n], " ")
	if cut <= 0 {
		cut = n
	}
	return s[:cut] + "…"
}
