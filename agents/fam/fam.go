// Package fam is FAM, the general assistant every other agent builds on. Each turn it reads
// the message in its conversation (intent with confidence, sentiment and frustration,
// repetition, the facts the user has stated), applies the agent's business constraints, and
// either answers by its own rules or asks the LLM chain with an enriched system prompt,
// validating the streamed reply before it reaches the user.
//
// FAM keeps nothing between turns: memory, repetition and restarts are read again every turn
// from the conversation the engine passes in (Input.History and Input.Summary), so one FAM
// serves every session, and nothing of one session reaches another.
//
// # Rules or model
//
// Always answered by rules, with or without a model: a request to start over, a request for a
// person, and a message asking for something a constraint forbids (a refund, a price, a
// delivery date, legal or medical advice), which gets the constraint's redirect.
//
// Answered by rules when there is no model (the offline engine), by the model otherwise (but
// by rules in cost-saving mode for a question about a fact the user stated):
// questions about what the user said ("what's my name?"), statements of fact ("I live in New
// York"), a question asked again, high or critical frustration (with the offer of a person or
// a restart), and feedback. FAM knows there is no model when the provider is the offline
// engine (Config.RulesOnly), or, through wrappers it cannot see into, when the reply turns out
// to come from the offline engine: it then drops that reply for its own.
//
// Everything else (greetings, arithmetic, the time, open questions) goes to Input.LLM, which
// is the offline engine when no model is configured.
package fam

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam/guard"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
)

// ID is FAM's agent id.
const ID = "fam"

// RulesModel is the model named on replies FAM writes itself, without any model.
const RulesModel = "fam-rules"

// Config configures FAM. The zero value is a working FAM with every constraint on.
type Config struct {
	// Model overrides the provider's default model. Default: the provider's.
	Model string
	// Temperature of replies. Default 0.7.
	Temperature float64
	// MaxTokens bounds a reply. Default 500.
	MaxTokens int
	// Constraints says which business constraints apply (all by default; Allow lifts some)
	// and how FAM redirects. Invalid settings are reported by Validate; New logs them and
	// keeps every constraint on.
	Constraints guard.Config
	// Validation configures the response validator. Defaults in guard.ValidatorConfig: replies
	// up to 1200 characters, unverifiable figures kept with a caveat, sentences held only
	// from their first risk marker.
	Validation guard.ValidatorConfig
	// Classifier settles, with the model, intents the rules are unsure about. Default none:
	// rules only. Never used without a model.
	Classifier IntentClassifier
	// ClassifyBelow is the rules' confidence under which Classifier is asked. Default 0.7,
	// which asks about messages no rule matched (0.6) and noise (0.3).
	ClassifyBelow float64
	// RulesOnly reports whether a provider answers without a language model, so FAM's rules
	// answer what they can. Default: the provider is the offline engine, or wraps only
	// offline engines (seen through Unwrap() llm.Provider and Providers() []llm.Provider).
	RulesOnly func(llm.Provider) bool
	// HumanHandoff is FAM's reply to a user who asks for a person. Default: an honest pointer
	// to the app's support options (FAM cannot transfer a chat itself).
	HumanHandoff string
	// Knowledge answers information and how-to questions FAM's own rules cannot, from the
	// passages above its similarity threshold, with a citation: quoted offline, passed to the
	// model as context otherwise. Default none: FAM answers from its rules and the LLM only.
	Knowledge Knowledge
	// Handoffs names the agents FAM passes a conversation to (the engine then lets them
	// answer, with the history). Default none: FAM answers everything itself.
	Handoffs Handoffs
	// KnowledgeBase is the knowledge base searched. Default rag.DefaultKB.
	KnowledgeBase string
	// KnowledgeTopK is how many passages are retrieved (all go to the model). Default 3.
	KnowledgeTopK int
	// Logger receives validator findings and classifier failures. Default slog.Default().
	Logger *slog.Logger
}

// Handoffs are the agents FAM hands conversations to.
type Handoffs struct {
	// Human takes a request for a person ("support"). Default "": FAM answers with
	// Config.HumanHandoff.
	Human string
	// Agents take the messages the router's rules give them (agents.RouteByRules: reminders,
	// tasks, calendar, notes and contacts to "pa"; print sizes to "artwork"; orders to
	// "support"), when listed here. Default none.
	Agents []string
}

// Validate reports settings New would ignore.
func (c Config) Validate() error {
	if err := c.Constraints.Validate(); err != nil {
		return fmt.Errorf("fam: %w", err)
	}
	if c.ClassifyBelow < 0 || c.ClassifyBelow > 1 {
		return fmt.Errorf("fam: ClassifyBelow %v is outside [0, 1]", c.ClassifyBelow)
	}
	return nil
}

// Agent is FAM. It holds no per-conversation state.
type Agent struct {
	cfg         Config
	constraints *guard.Constraints
	// stable is the system prompt's unchanging head: SystemPrompt and the constraints' rules.
	stable string
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
	if cfg.ClassifyBelow <= 0 || cfg.ClassifyBelow > 1 {
		cfg.ClassifyBelow = 0.7
	}
	if cfg.RulesOnly == nil {
		cfg.RulesOnly = IsOffline
	}
	if cfg.HumanHandoff == "" {
		cfg.HumanHandoff = defaultHandoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.KnowledgeBase == "" {
		cfg.KnowledgeBase = rag.DefaultKB
	}
	if cfg.KnowledgeTopK <= 0 {
		cfg.KnowledgeTopK = 3
	}
	constraints, err := guard.New(cfg.Constraints)
	if err != nil {
		// The safe side of a bad setting is every constraint on.
		cfg.Logger.Error("fam: invalid constraints config; every constraint applies", "err", err)
		constraints, _ = guard.New(guard.Config{Team: cfg.Constraints.Team})
	}
	var b strings.Builder
	b.WriteString(SystemPrompt)
	for _, rule := range constraints.Rules() {
		b.WriteString("\n- " + rule)
	}
	return &Agent{cfg: cfg, constraints: constraints, stable: b.String()}
}

// Info implements agents.Agent.
func (a *Agent) Info() agents.Info {
	return agents.Info{ID: ID, Name: "FAM", Description: "General assistant: answers questions, detects intent and sentiment, remembers what you tell it within a conversation, and is the foundation of the other agents."}
}

// Constraints are the business constraints FAM applies.
func (a *Agent) Constraints() *guard.Constraints { return a.constraints }

// SystemPrompt is the head of FAM's system prompt. The active constraints' rules follow it
// in the same section, then the app's instructions, then the per-turn conversation context;
// everything before the context is stable, so providers can cache it.
const SystemPrompt = `You are FAM, a friendly and concise assistant speaking through Dartmouth, a voice and text gateway. Your replies may be read aloud, so write plain sentences without markdown, lists or emojis.

## Business Rules (CRITICAL)
- Keep replies to two or three sentences unless the user asks for detail.
- If the user repeats a question, answer it differently and more helpfully.
- If you do not know, say so plainly; never invent figures, names or dates.
- Use what the user has told you about themselves in this conversation, and never claim to remember other conversations.`

// IsOffline reports whether p answers without a language model: it is the offline engine, or
// a wrapper or chain of nothing else. It looks through providers that expose Unwrap() or
// Providers().
func IsOffline(p llm.Provider) bool {
	for range 16 {
		if p == nil {
			return false
		}
		if _, ok := p.(*offline.Engine); ok || p.Name() == "offline" {
			return true
		}
		switch v := p.(type) {
		case interface{ Providers() []llm.Provider }:
			members := v.Providers()
			for _, m := range members {
				if !IsOffline(m) {
					return false
				}
			}
			return len(members) > 0
		case interface{ Unwrap() llm.Provider }:
			p = v.Unwrap()
		default:
			return false
		}
	}
	return false
}

// Respond implements agents.Agent.
func (a *Agent) Respond(ctx context.Context, in agents.Input) (agents.Reply, error) {
	if in.LLM == nil {
		return agents.Reply{}, fmt.Errorf("fam: no LLM provider in the input")
	}
	t := a.read(in)
	t.rulesOnly = a.cfg.RulesOnly(in.LLM)
	reply := agents.Reply{Intent: t.u.Intent, Sentiment: t.u.Sentiment}
	if h, ok := a.handoff(t); ok {
		// The engine lets the other agent answer; FAM's own answer is the fallback should it
		// not be able to.
		reply.Handoff = h
		text, _ := a.alwaysRules(t)
		if text == "" {
			text = "I'll pass you to the right assistant for that."
		}
		reply.Stream = ownReply(ctx, text)
		return reply, nil
	}
	if text, ok := a.alwaysRules(t); ok {
		reply.Stream = ownReply(ctx, text)
		return reply, nil
	}
	extra := a.classify(ctx, t, in)
	reply.Intent = t.u.Intent
	fallback, hasFallback := a.offlineRules(t)
	if !hasFallback {
		if t.knowledge = a.lookup(ctx, t, in); len(t.knowledge) > 0 {
			// The knowledge base answers what FAM's rules cannot; a model words it from the
			// passages, and without one the best passage is quoted.
			fallback, hasFallback = a.empathy(t)+quote(in.Message, t.knowledge[0]), true
		}
	}
	switch {
	case t.rulesOnly && len(t.knowledge) > 0:
		reply.Stream = ownReplyAs(ctx, fallback, KnowledgeModel)
	case t.rulesOnly && hasFallback:
		reply.Stream = ownReply(ctx, fallback)
	case t.rulesOnly:
		reply.Stream = prefixed(ctx, a.empathy(t), in.LLM.Stream(ctx, a.request(t, in)))
	case in.CostSaving && t.isQuestion && t.facts.Len() > 0 && hasFallback:
		// A budget is nearly spent, and the answer is in what the user said: no call needed.
		reply.Stream = ownReply(ctx, fallback)
	default:
		reply.Stream = a.validated(ctx, t, in, a.request(t, in))
		if hasFallback {
			reply.Stream = unlessOffline(reply.Stream, ownReply(ctx, fallback))
		}
	}
	reply.Stream = withExtraUsage(reply.Stream, extra)
	return reply, nil
}

// classify asks Config.Classifier about an intent the rules are unsure of, with a model only;
// it returns what the call consumed, for the turn's bill.
func (a *Agent) classify(ctx context.Context, t *turn, in agents.Input) llm.Usage {
	if a.cfg.Classifier == nil || t.rulesOnly || t.u.Intent.Confidence >= a.cfg.ClassifyBelow ||
		t.u.Repeat != nil || t.frustration >= rankModerate {
		return llm.Usage{}
	}
	intent, usage, err := a.cfg.Classifier.ClassifyIntent(ctx, in.LLM, in.Message, t.conv.history)
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "fam: intent classifier failed; keeping the rules' intent", "session", in.SessionID, "err", err)
		return usage
	}
	t.u.Intent = intent
	return usage
}

// request is the LLM request of a turn.
func (a *Agent) request(t *turn, in agents.Input) llm.Request {
	temp := a.cfg.Temperature
	if in.Options.Temperature != nil {
		temp = *in.Options.Temperature
	}
	req := llm.Request{
		Model:       a.cfg.Model,
		System:      a.system(t, in),
		Messages:    append(append(make([]llm.Message, 0, len(t.conv.history)+1), t.conv.history...), llm.Message{Role: "user", Content: in.Message}),
		Temperature: &temp,
		MaxTokens:   a.cfg.MaxTokens,
	}
	// FAM's rules and the app's instructions come first and never change within an app, so
	// providers can cache them; the per-turn context follows.
	req.CachePrefix = strings.Index(req.System, contextHeading)
	if in.Options.Model != "" {
		req.Model = in.Options.Model
	}
	if in.Options.MaxTokens > 0 && in.Options.MaxTokens < req.MaxTokens {
		req.MaxTokens = in.Options.MaxTokens
	}
	return req
}

// validated is the model's reply through the response validator.
func (a *Agent) validated(ctx context.Context, t *turn, in agents.Input, req llm.Request) iter.Seq2[llm.Chunk, error] {
	check := guard.Check{
		Constraints: a.constraints,
		Config:      a.cfg.Validation,
		Strict:      t.sensitive,
		Variant:     t.conv.assistantTurns,
		Trusted:     func(c llm.Chunk) bool { return c.Model == offline.ModelName },
		Report: func(i guard.Issue) {
			a.cfg.Logger.InfoContext(ctx, "fam: reply checked", "session", in.SessionID, "issue", i.Kind, "constraint", string(i.Constraint), "figures", i.Figures)
		},
		EstimateUsage: func(generated string) llm.Usage {
			n := len(req.System)
			for _, m := range req.Messages {
				n += len(m.Content)
			}
			return llm.Usage{InputTokens: int64(n+3) / 4, OutputTokens: int64(len(generated)+3) / 4}
		},
	}
	if !t.figuresAreComputed() {
		sources := []string{req.System, in.Message, in.Summary}
		for _, m := range in.History {
			sources = append(sources, m.Content)
		}
		for _, v := range in.Context {
			if s, ok := v.(string); ok {
				sources = append(sources, s)
			}
		}
		check.Known = guard.NewNumbers(sources...)
	}
	if t.frustration >= rankHigh {
		check.Finish = func(sent string) string {
			if offersHelp.MatchString(strings.ToLower(sent)) {
				return ""
			}
			return humanOrRestartOffer
		}
	}
	return check.Stream(in.LLM.Stream(ctx, req))
}
