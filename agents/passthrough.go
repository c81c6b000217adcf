package agents

import (
	"context"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

// PassthroughID is the agent that hands the client's conversation to the model unchanged. The
// OpenAI-compatible endpoint uses it for model names that are not agents.
const PassthroughID = "passthrough"

// Passthrough adds nothing: the client's system prompt, history and settings go to the provider
// chain as they are. Turns are still stored, priced and cached like any other.
type Passthrough struct{}

var _ Agent = Passthrough{}

// Info implements Agent.
func (Passthrough) Info() Info {
	return Info{ID: PassthroughID, Name: "Passthrough", Description: "Sends the conversation to the configured model as it is, with no agent behaviour."}
}

// Respond implements Agent.
func (Passthrough) Respond(ctx context.Context, in Input) (Reply, error) {
	system := in.Options.System
	if in.Summary != "" {
		system = strings.TrimSpace(system + "\n\nEarlier in this conversation:\n" + in.Summary)
	}
	req := llm.Request{
		Model:       in.Options.Model,
		System:      system,
		CachePrefix: len(in.Options.System), // the summary after it changes; the app's prompt does not
		Messages:    append(append([]llm.Message(nil), in.History...), llm.Message{Role: "user", Content: in.Message}),
		Temperature: in.Options.Temperature,
		MaxTokens:   in.Options.MaxTokens,
	}
	return Reply{Intent: nlu.DetectIntent(in.Message), Sentiment: nlu.AnalyzeSentiment(in.Message), Stream: in.LLM.Stream(ctx, req)}, nil
}
