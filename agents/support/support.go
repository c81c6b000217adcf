// Package support is the customer support agent: it answers from a knowledge base by
// retrieval, naming the article it used, and hands the conversation to a person with a
// ticket when the customer asks for one, is angry, or asks what the articles do not cover.
package support

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/session"
)

// ID is the support agent's id.
const ID = "support"

// Intents the agent reports besides nlu's.
const (
	IntentEscalation   = "escalation"
	IntentTicketStatus = "ticket_status"
	IntentNotFound     = "not_found"
)

// Reasons a ticket is opened.
const (
	ReasonRequested     = "requested"
	ReasonFrustration   = "frustration"
	ReasonLowConfidence = "low_confidence"
)

// TicketStore keeps tickets per user; session.SQLStore implements it.
type TicketStore interface {
	CreateTicket(ctx context.Context, t session.Ticket) (session.Ticket, error)
	GetTicketByNumber(ctx context.Context, userID string, number int64) (session.Ticket, error)
	ListTickets(ctx context.Context, userID string, f session.TicketFilter) ([]session.Ticket, error)
}

var _ TicketStore = (*session.SQLStore)(nil)

// Config configures the agent. It is shared by every conversation: the store and the
// retriever come here, never per session.
type Config struct {
	// Retriever finds help articles. Required.
	Retriever rag.Retriever
	// Tickets stores hand-offs to people. Required.
	Tickets TicketStore
	// KB is the knowledge base searched. Default rag.DefaultKB.
	KB string
	// TopK is how many chunks are retrieved; with Generate they all go to the model. Default 3.
	TopK int
	// Generate lets the LLM word answers from the retrieved articles (set it when a model is
	// configured). Default false: answers are the most relevant sentences of the best
	// article, quoted, which needs no model. In cost-saving mode answers are quoted anyway.
	Generate bool
	// Model overrides the provider's default model when generating. Default: the provider's.
	Model string
	// Temperature when generating. Default 0.2: answers should stick to the articles.
	Temperature float64
	// MaxTokens bounds a generated answer. Default 400.
	MaxTokens int
	// Clock stamps tickets and their SLA deadlines. Default session.SystemClock.
	Clock session.Clock
	// Logger receives retrieval failures. Default slog.Default().
	Logger *slog.Logger
}

// Agent is the support agent. It holds no per-conversation state.
type Agent struct {
	cfg Config
}

var _ agents.Agent = (*Agent)(nil)

// New builds the agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Retriever == nil || cfg.Tickets == nil {
		return nil, errors.New("support: the agent needs a retriever and a ticket store")
	}
	if cfg.KB == "" {
		cfg.KB = rag.DefaultKB
	}
	if !rag.ValidKB(cfg.KB) {
		return nil, errors.New("support: bad knowledge base name " + cfg.KB)
	}
	if cfg.TopK <= 0 {
		cfg.TopK = 3
	}
	if cfg.Temperature == 0 {
		cfg.Temperature = 0.2
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 400
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Agent{cfg: cfg}, nil
}

// Info implements agents.Agent.
func (a *Agent) Info() agents.Info {
	return agents.Info{ID: ID, Name: "Support", Description: "Customer support: answers from the help articles with their source, and opens a ticket for a person when asked, when the customer is upset, or when the articles do not cover the question."}
}

// Canned replies. missReply and offerReply are also how the agent recognises, from the
// history, that it made an offer the customer may now accept.
const (
	missReply     = "I couldn't find that in our help articles."
	offerReply    = "Would you like me to open a ticket so a person can help?"
	greetingReply = "Hi! I'm the support assistant. Ask me a question and I'll answer from our help articles, naming the article I used. If you'd rather talk to a person, just say so and I'll open a ticket."
)

// Respond implements agents.Agent.
func (a *Agent) Respond(ctx context.Context, in agents.Input) (agents.Reply, error) {
	msg := in.Message
	intent := nlu.DetectIntent(msg)
	sentiment := nlu.AnalyzeSentiment(msg)
	frustration := MeasureFrustration(msg)
	if frustration.Score >= moderateAt && sentiment.Label != "negative" {
		sentiment = nlu.Sentiment{Label: "negative", Score: min(sentiment.Score, -0.5)}
	}
	reply := func(name string, confidence float64, stream func(yield func(llm.Chunk, error) bool)) (agents.Reply, error) {
		return agents.Reply{Intent: nlu.Intent{Name: name, Confidence: confidence}, Sentiment: sentiment, Stream: stream}, nil
	}
	lastBot := lastAssistant(in.History)

	// Hand-offs first: a customer who asks for a person or is angry gets one, whatever else
	// the message says.
	switch {
	case WantsHuman(msg):
		text, err := a.escalate(ctx, in, ReasonRequested, frustration)
		if err != nil {
			return agents.Reply{}, err
		}
		return reply(IntentEscalation, 0.95, say(text))
	case frustration.Score >= escalateAt || (frustration.Score >= moderateAt && MeasureFrustration(previousUser(in.History)).Score >= moderateAt):
		text, err := a.escalate(ctx, in, ReasonFrustration, frustration)
		if err != nil {
			return agents.Reply{}, err
		}
		return reply(IntentEscalation, 0.9, say(text))
	case strings.Contains(lastBot, offerReply) && yesReply.MatchString(msg):
		text, err := a.escalate(ctx, in, ReasonLowConfidence, frustration)
		if err != nil {
			return agents.Reply{}, err
		}
		return reply(IntentEscalation, 0.9, say(text))
	case strings.Contains(lastBot, offerReply) && noReply.MatchString(msg):
		return reply(nlu.IntentSmallTalk, 0.9, say("No problem. Is there anything else I can help you with?"))
	}
	if text, ok, err := a.ticketStatus(ctx, in); err != nil {
		return agents.Reply{}, err
	} else if ok {
		return reply(IntentTicketStatus, 0.9, say(text))
	}
	switch intent.Name {
	case nlu.IntentGreeting:
		return reply(intent.Name, intent.Confidence, say(greetingReply))
	case nlu.IntentGratitude:
		return reply(intent.Name, intent.Confidence, say("You're welcome! Is there anything else I can help you with?"))
	case nlu.IntentFarewell:
		return reply(intent.Name, intent.Confidence, say("Goodbye, and thanks for getting in touch."))
	case nlu.IntentSmallTalk:
		return reply(intent.Name, intent.Confidence, say("I'm the support assistant: I answer from our help articles and can open a ticket for a person on our team. What do you need help with?"))
	case nlu.IntentUnknown:
		return reply(intent.Name, intent.Confidence, say("I didn't catch that. Could you tell me a bit more about what you need help with?"))
	}

	hits, err := a.cfg.Retriever.Search(ctx, a.cfg.KB, searchQuery(msg), a.cfg.TopK)
	if err != nil {
		if ctx.Err() != nil {
			return agents.Reply{}, ctx.Err()
		}
		// The articles being out of reach is no reason to leave the customer stuck.
		a.cfg.Logger.ErrorContext(ctx, "support: retrieval failed", "kb", a.cfg.KB, "err", err)
		hits = nil
	}
	if len(hits) == 0 {
		// A second question in a row the articles cannot answer goes to a person.
		if strings.Contains(lastBot, missReply) {
			text, err := a.escalate(ctx, in, ReasonLowConfidence, frustration)
			if err != nil {
				return agents.Reply{}, err
			}
			return reply(IntentEscalation, 0.8, say(text))
		}
		return reply(IntentNotFound, intent.Confidence, say(missReply+" "+offerReply+" Just say yes, or ask me something else."))
	}
	empathy := ""
	if frustration.Score >= moderateAt {
		empathy = "I'm sorry for the trouble. "
	}
	if a.cfg.Generate && !in.CostSaving {
		return reply(intent.Name, intent.Confidence, a.generate(ctx, in, hits, empathy))
	}
	return reply(intent.Name, intent.Confidence, sayAs(empathy+Extract(msg, hits[0]), ModelRetrieval))
}

// searchQuery is the message without its frustration ("I'm fed up, where is my parcel?" is
// a question about a parcel), unless nothing else is left.
func searchQuery(msg string) string {
	q := msg
	for _, s := range frustrationSignals {
		q = s.re.ReplaceAllString(q, " ")
	}
	if strings.TrimSpace(strings.Trim(q, " ,.!?;:'\"")) == "" {
		return msg
	}
	return q
}

// lastAssistant is the agent's previous reply, or "".
func lastAssistant(history []llm.Message) string {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Role == session.RoleAssistant {
			return history[i].Content
		}
	}
	return ""
}

// previousUser is the customer's previous message, or "".
func previousUser(history []llm.Message) string {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Role == session.RoleUser {
			return history[i].Content
		}
	}
	return ""
}
