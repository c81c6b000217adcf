// Package offline is the language-model stand-in used when no model is configured: rules,
// arithmetic and retrieval from a small built-in knowledge base. It answers honestly, says
// what it cannot do, and never echoes the question back as an answer.
package offline

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/session"
)

// Config configures the Engine.
type Config struct {
	// Knowledge is markdown with "# " headed sections. Default: the built-in guide to Dartmouth.
	Knowledge string
	// MinScore is the BM25 score a section needs to be used as an answer. Default 1.5.
	MinScore float64
	// Clock answers questions about the time. Default session.SystemClock.
	Clock session.Clock
	// Location is the time zone for the date and time. Default UTC.
	Location *time.Location
}

// Engine implements llm.Provider without a model.
type Engine struct {
	cfg   Config
	index *Index
}

var _ llm.Provider = (*Engine)(nil)

// ModelName is reported as the model of every offline reply.
const ModelName = "dartmouth-offline-1"

// New builds the engine.
func New(cfg Config) *Engine {
	if cfg.Knowledge == "" {
		cfg.Knowledge = builtinKnowledge
	}
	if cfg.MinScore <= 0 {
		cfg.MinScore = 1.5
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Engine{cfg: cfg, index: NewIndex(ParseKnowledge(cfg.Knowledge))}
}

// Name implements llm.Provider.
func (e *Engine) Name() string { return "offline" }

// Stream implements llm.Provider: the reply is streamed a few words at a time, like a model's.
func (e *Engine) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		question := lastUserMessage(req.Messages)
		reply := e.Answer(question, len(req.Messages) <= 1)
		outWords := 0
		for piece := range pieces(reply, 3) {
			if err := ctx.Err(); err != nil {
				yield(llm.Chunk{}, err)
				return
			}
			outWords += len(strings.Fields(piece))
			if !yield(llm.Chunk{Text: piece, Model: ModelName}, nil) {
				return
			}
		}
		yield(llm.Chunk{Model: ModelName, Usage: &llm.Usage{
			InputTokens:  int64(estimateTokens(req)),
			OutputTokens: int64(outWords * 4 / 3),
		}}, nil)
	}
}

// Answer returns the reply to one message; first says whether it opens the conversation.
func (e *Engine) Answer(question string, first bool) string {
	intent := nlu.DetectIntent(question)
	switch intent.Name {
	case nlu.IntentGreeting:
		if first {
			return "Hello! I'm Dartmouth's assistant, running on the built-in offline engine. I can answer questions about Dartmouth, do arithmetic and tell you the date and time. What can I help you with?"
		}
		return "Hello again! What else can I help you with?"
	case nlu.IntentGratitude:
		return "You're welcome! Let me know if there's anything else I can help with."
	case nlu.IntentFarewell:
		return "Goodbye! Come back any time."
	case nlu.IntentSmallTalk:
		return "I'm Dartmouth's assistant, running on the built-in offline engine because no language model is configured. I can answer questions about Dartmouth, do arithmetic and tell you the date and time; for anything else an operator can connect a model."
	case nlu.IntentTime:
		now := e.cfg.Clock.Now().In(e.cfg.Location)
		return fmt.Sprintf("It's %s (%s) on %s.", now.Format("15:04"), now.Format("MST"), now.Format("Monday, 2 January 2006"))
	case nlu.IntentCalculation:
		if expr, ok := extractExpression(question); ok {
			v, err := Evaluate(expr)
			if err != nil {
				return fmt.Sprintf("I couldn't work out %q: %v.", expr, err)
			}
			return fmt.Sprintf("%s = %s", expr, formatNumber(v))
		}
	}
	if hits := e.index.Search(question, 1); len(hits) > 0 && hits[0].Score >= e.cfg.MinScore {
		return hits[0].Section.Body
	}
	if intent.Name == nlu.IntentUnknown {
		return "I didn't catch that. Could you say it another way? I can answer questions about Dartmouth, do arithmetic and tell you the date and time."
	}
	return "I can't answer that offline: this gateway has no language model configured, and my built-in knowledge only covers Dartmouth itself, arithmetic and the date and time. An operator can set OPENAI_API_KEY or ANTHROPIC_API_KEY, or point OPENAI_BASE_URL at a local model, for full answers."
}

func lastUserMessage(msgs []llm.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	return ""
}

// pieces splits text into runs of n words, keeping the spaces, so joined they give text back.
func pieces(text string, n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		words := strings.SplitAfter(text, " ")
		for i := 0; i < len(words); i += n {
			if !yield(strings.Join(words[i:min(i+n, len(words))], "")) {
				return
			}
		}
	}
}

// estimateTokens approximates a prompt's size at four characters a token.
func estimateTokens(req llm.Request) int {
	n := len(req.System)
	for _, m := range req.Messages {
		n += len(m.Content)
	}
	return (n + 3) / 4
}
