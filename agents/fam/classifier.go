package fam

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

// IntentClassifier settles the intent of a message the rules are unsure about. FAM asks it
// only with a model configured, and only when the rules' confidence is under
// Config.ClassifyBelow, so most turns cost no extra call. What the call consumed is added to
// the turn's usage; a failure keeps the rules' intent.
type IntentClassifier interface {
	// ClassifyIntent classifies message with p, the turn's provider; history is the recent
	// conversation, oldest first.
	ClassifyIntent(ctx context.Context, p llm.Provider, message string, history []llm.Message) (nlu.Intent, llm.Usage, error)
}

// LLMClassifier is an IntentClassifier that asks the model for one intent name.
type LLMClassifier struct {
	// Model overrides the provider's default model, for a cheaper one. Default: the provider's.
	Model string
	// Confidence is given to the model's answers. Default 0.8.
	Confidence float64
	// Context is how many recent messages the model sees with the message. Default 2.
	Context int
}

var _ IntentClassifier = LLMClassifier{}

// ErrUnclassified is returned when the model's answer names no known intent.
var ErrUnclassified = errors.New("fam: the model named no known intent")

// classifiable are the intents the model may pick: repeat and frustration come from the
// conversation and the frustration score, not from a guess.
var classifiable = slices.DeleteFunc(nlu.Intents(), func(s string) bool {
	return s == nlu.IntentRepeat || s == nlu.IntentFrustration
})

var classifierPrompt = "Classify the user's last message by its intent. Answer with exactly one of these words and nothing else: " +
	strings.Join(classifiable, ", ") + "."

var intentWord = regexp.MustCompile(`[a-z]+`)

// ClassifyIntent implements IntentClassifier.
func (c LLMClassifier) ClassifyIntent(ctx context.Context, p llm.Provider, message string, history []llm.Message) (nlu.Intent, llm.Usage, error) {
	confidence := c.Confidence
	if confidence <= 0 || confidence > 1 {
		confidence = 0.8
	}
	keep := c.Context
	if keep <= 0 {
		keep = 2
	}
	var transcript strings.Builder
	for _, m := range history[max(0, len(history)-keep):] {
		fmt.Fprintf(&transcript, "%s: %s\n", m.Role, clip(m.Content, 300))
	}
	fmt.Fprintf(&transcript, "user (classify this): %s", clip(message, 1000))
	zero := 0.0
	req := llm.Request{
		Model: c.Model, System: classifierPrompt, CachePrefix: len(classifierPrompt),
		Messages:    []llm.Message{{Role: "user", Content: transcript.String()}},
		Temperature: &zero, MaxTokens: 5,
	}
	var out strings.Builder
	var usage llm.Usage
	for chunk, err := range p.Stream(ctx, req) {
		if err != nil {
			return nlu.Intent{}, usage, fmt.Errorf("classify intent: %w", err)
		}
		out.WriteString(chunk.Text)
		if chunk.Usage != nil {
			usage = *chunk.Usage
		}
	}
	for _, w := range intentWord.FindAllString(strings.ToLower(out.String()), 3) {
		if w == "how" || w == "follow" {
			// "how-to", "follow-up" written with a hyphen.
			w += map[string]string{"how": "to", "follow": "up"}[w]
		}
		if slices.Contains(classifiable, w) {
			return nlu.Intent{Name: w, Confidence: confidence}, usage, nil
		}
	}
	return nlu.Intent{}, usage, fmt.Errorf("%w: %q", ErrUnclassified, clip(out.String(), 80))
}
