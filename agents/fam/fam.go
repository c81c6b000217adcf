// Package fam is FAM, the general assistant every other agent builds on: it reads the intent
// and sentiment of a message and answers through the LLM chain with its business rules in the
// system prompt.
package fam

import (
	"context"
	"fmt"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

// ID is FAM's agent id.
const ID = "fam"

// Config configures FAM.
type Config struct {
	// Model overrides the provider's default model. Default: the provider's.
	Model string
	// Temperature of replies. Default 0.7.
	Temperature float64
	// MaxTokens bounds a reply. Default 500.
	MaxTokens int
}

// Agent is FAM. It holds no per-conversation state.
type Agent struct {
	cfg Config
}

var _ agents.Agent = (*Agent)(nil)

// New builds FAM.
func New(cfg Config) *Agent {
	if cfg.Temperature == 0 {
		cfg.Temperature = 0.7
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 500
	}
	return &Agent{cfg: cfg}
}

// Info implements agents.Agent.
func (a *Agent) Info() agents.Info {
	return agents.Info{ID: ID, Name: "FAM", Description: "General assistant: answers questions, detects intent and sentiment, and is the foundation of the other agents."}
}

// SystemPrompt is FAM's base prompt, then the conversation context, then the business rules.
const SystemPrompt = `You are FAM, a friendly and concise assistant speaking through Dartmouth, a voice and text gateway. Your replies may be read aloud, so write plain sentences without markdown, lists or emojis.

## Business Rules (CRITICAL)
- Keep replies to two or three sentences unless the user asks for detail.
- Never quote prices, discounts or refunds, and never promise delivery dates.
- Do not give legal or medical advice; suggest a qualified professional instead.
- If the user repeats a question, answer it differently and more helpfully.
- If you do not know, say so plainly.`

// Respond implements agents.Agent.
func (a *Agent) Respond(ctx context.Context, in agents.Input) (agents.Reply, error) {
	intent := nlu.DetectIntent(in.Message)
	sentiment := nlu.AnalyzeSentiment(in.Message)
	temp := a.cfg.Temperature
	if in.Options.Temperature != nil {
		temp = *in.Options.Temperature
	}
	req := llm.Request{
		Model:       a.cfg.Model,
		System:      buildSystem(intent, sentiment, in.Context, in.Options.System, in.Summary),
		Messages:    append(append([]llm.Message(nil), in.History...), llm.Message{Role: "user", Content: in.Message}),
		Temperature: &temp,
		MaxTokens:   a.cfg.MaxTokens,
	}
	// FAM's rules and the app's instructions come first and never change within an app, so
	// providers can cache them; the per-turn context follows.
	req.CachePrefix = len(SystemPrompt)
	if in.Options.System != "" {
		req.CachePrefix = strings.Index(req.System, "\n\n## Conversation Context")
	}
	if in.Options.Model != "" {
		req.Model = in.Options.Model
	}
	if in.Options.MaxTokens > 0 && in.Options.MaxTokens < req.MaxTokens {
		req.MaxTokens = in.Options.MaxTokens
	}
	return agents.Reply{Intent: intent, Sentiment: sentiment, Stream: in.LLM.Stream(ctx, req)}, nil
}

func buildSystem(intent nlu.Intent, sentiment nlu.Sentiment, clientContext map[string]any, appInstructions, summary string) string {
	var b strings.Builder
	b.WriteString(SystemPrompt)
	if appInstructions != "" {
		// The app's own instructions come after FAM's rules, which still win.
		b.WriteString("\n\n## Instructions from the app\n")
		b.WriteString(appInstructions)
	}
	b.WriteString("\n\n## Conversation Context\n")
	fmt.Fprintf(&b, "- The user's message reads as %s (confidence %.2f) with %s sentiment.\n", intent.Name, intent.Confidence, sentiment.Label)
	if sentiment.Label == "negative" {
		b.WriteString("- Acknowledge the user's frustration briefly before helping.\n")
	}
	if summary != "" {
		b.WriteString("- Earlier in this conversation:\n")
		b.WriteString(summary)
		b.WriteString("\n")
	}
	for _, key := range []string{"timezone", "language", "location", "page"} {
		if v, ok := clientContext[key]; ok {
			if s, ok := v.(string); ok && s != "" && len(s) < 200 {
				fmt.Fprintf(&b, "- The user's %s: %s\n", key, s)
			}
		}
	}
	return b.String()
}
