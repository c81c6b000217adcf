// Package agents is the agent engine: the registry, the turn pipeline that loads a session's
// history, runs an agent, streams its reply and persists both sides, and the agents' contract.
package agents

import (
	"context"
	"iter"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

// Info describes an agent to clients.
type Info struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Input is what an agent gets for one turn. Agents are shared by all sessions: everything
// about the conversation arrives here, nothing is kept on the agent.
type Input struct {
	SessionID string
	UserID    string
	// Message is the user's new message.
	Message string
	// History is the recent conversation before Message, oldest first.
	History []llm.Message
	// Summary condenses the turns older than History; empty when there are none.
	Summary string
	// CostSaving is set when a budget is nearly spent: skip optional extras such as retrieval.
	CostSaving bool
	// Context is the client's free-form context (time zone, page, device).
	Context map[string]any
	// Options are the client's model settings; agents may honour or ignore them.
	Options Options
	// LLM is the provider chain the agent should use.
	LLM llm.Provider
}

// Reply is an agent's answer: what it understood, and the streamed text.
type Reply struct {
	Intent    nlu.Intent
	Sentiment nlu.Sentiment
	Stream    iter.Seq2[llm.Chunk, error]
	// Handoff, when set, passes the conversation to another agent: the engine lets it answer
	// this message instead (Stream is then never read) and continues the session with it.
	Handoff *Handoff
}

// Agent answers messages.
type Agent interface {
	Info() Info
	Respond(ctx context.Context, in Input) (Reply, error)
}
