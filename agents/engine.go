package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/session"
)

// Errors a turn can fail with before it starts; the gateway maps each to a status and code.
var (
	ErrAgentNotFound   = errors.New("agent not found")
	ErrSessionNotFound = errors.New("session not found")
	// ErrSessionAgent is returned when a session is continued with another agent than its own.
	ErrSessionAgent = errors.New("session belongs to another agent")
)

// ValidationError is bad input from the client.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// EngineConfig configures the Engine.
type EngineConfig struct {
	// Store persists sessions and messages. Required.
	Store session.Store
	// Registry holds the agents. Required.
	Registry *Registry
	// LLM is the provider (usually a chain) agents answer with. Required.
	LLM llm.Provider
	// Clock times turns. Default session.SystemClock.
	Clock session.Clock
	// Logger receives turn failures. Default slog.Default().
	Logger *slog.Logger
	// HistoryMessages is how many earlier messages are loaded for the context window. Default 50.
	HistoryMessages int
	// MaxMessageChars bounds a user message. Default 8000.
	MaxMessageChars int
	// Window shapes the history an agent sees. Defaults in ContextWindow.
	Window ContextWindow
	// Summarizer folds turns older than the window into a running summary, kept in KV.
	// Default none: the summary is extractive.
	Summarizer Summarizer
	// KV keeps the running summaries. Required with a Summarizer.
	KV session.KV
	// Prices turns usage into cost. Default DefaultPrices().
	Prices *Prices
	// Cache reuses complete replies. Default none.
	Cache *ResponseCache
	// Budget enforces spending limits. Default none.
	Budget *Budget
	// Ledger persists each turn's cost. Default: the Store, when it keeps costs.
	Ledger CostLedger
	// EstimateModel is the model priced when reserving budget before a call. Default
	// "gpt-4o-mini".
	EstimateModel string
	// EstimateMaxTokens is the reply length assumed when reserving budget. Default 500.
	EstimateMaxTokens int
	// SavingModel replaces the model in cost-saving mode; empty keeps the model. Default "".
	SavingModel string
	// SavingMaxTokens bounds replies in cost-saving mode. Default 150.
	SavingMaxTokens int
	// Events receives each turn's analytics event (turn.completed, turn.failed). Default the
	// Store, one write per turn; cmd passes a session.AnalyticsBuffer to write them in batches.
	Events EventRecorder
}

// EventRecorder stores analytics events; session.Store and session.AnalyticsBuffer implement
// it.
type EventRecorder interface {
	RecordEvent(ctx context.Context, e session.Event) error
}

var (
	_ EventRecorder = session.Store(nil)
	_ EventRecorder = (*session.AnalyticsBuffer)(nil)
)

// TurnReport describes a finished turn to the engine's observers (metrics, health from real
// traffic). Durations are measurements on the monotonic wall clock (not the engine's Clock,
// which schedules), from when the turn started.
type TurnReport struct {
	AgentID, UserID, SessionID string
	Intent, Provider, Model    string
	// FirstToken is when the first reply text came; 0 when none did.
	FirstToken time.Duration
	Duration   time.Duration
	Tokens     Tokens
	Cost       float64
	Cached     bool
	// Err is why the turn produced no reply, nil when it did (interrupted replies included).
	// A turn whose client left first fails with an error matching context.Canceled.
	Err error
}

// systemPromptAllowance is the system prompt's share of a budget estimate, in characters.
const systemPromptAllowance = 2000

// CostLedger persists what each request cost and sums it for reports.
type CostLedger interface {
	RecordCost(ctx context.Context, c session.Cost) error
	CostTotals(ctx context.Context, fromDay, toDay string, group session.CostGroup, userID string) ([]session.CostTotal, error)
}

// Engine runs turns.
type Engine struct {
	cfg EngineConfig

	observersMu sync.RWMutex
	observers   []func(TurnReport)
}

// Observe registers fn to be told about every finished turn, on the goroutine that ran it:
// fn must be quick and must not block. Observers cannot be removed; they live as long as the
// engine (one per gateway).
func (e *Engine) Observe(fn func(TurnReport)) {
	e.observersMu.Lock()
	defer e.observersMu.Unlock()
	e.observers = append(e.observers, fn)
}

func (e *Engine) report(r TurnReport) {
	e.observersMu.RLock()
	defer e.observersMu.RUnlock()
	for _, fn := range e.observers {
		fn(r)
	}
}

// RecordEvent stores an analytics event through the engine's EngineConfig.Events, for events
// the engine does not see itself (the gateway's voice.turn).
func (e *Engine) RecordEvent(ctx context.Context, ev session.Event) error {
	return e.cfg.Events.RecordEvent(ctx, ev)
}

// NewEngine checks the config and fills defaults.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.LLM == nil {
		return nil, errors.New("agents: engine needs a store, a registry and an LLM")
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HistoryMessages <= 0 {
		cfg.HistoryMessages = 50
	}
	cfg.Window = cfg.Window.withDefaults()
	if cfg.Prices == nil {
		cfg.Prices = DefaultPrices()
	}
	if cfg.Ledger == nil {
		if l, ok := cfg.Store.(CostLedger); ok {
			cfg.Ledger = l
		}
	}
	if cfg.EstimateModel == "" {
		cfg.EstimateModel = "gpt-4o-mini"
	}
	if cfg.EstimateMaxTokens <= 0 {
		cfg.EstimateMaxTokens = 500
	}
	if cfg.SavingMaxTokens <= 0 {
		cfg.SavingMaxTokens = 150
	}
	if cfg.MaxMessageChars <= 0 {
		cfg.MaxMessageChars = 8000
	}
	if cfg.Events == nil {
		cfg.Events = cfg.Store
	}
	return &Engine{cfg: cfg}, nil
}

// Registry returns the engine's agents.
func (e *Engine) Registry() *Registry { return e.cfg.Registry }

// CacheStats returns the response cache's counters; false when the engine has no cache.
func (e *Engine) CacheStats() (CacheStats, bool) {
	if e.cfg.Cache == nil {
		return CacheStats{}, false
	}
	return e.cfg.Cache.Stats(), true
}

// Request is one user message to an agent.
type Request struct {
	AgentID string
	Message string
	// SessionID continues a conversation; empty starts a new one.
	SessionID string
	// UserID owns the session; empty means session.AnonymousUserID.
	UserID  string
	Context map[string]any
	// History, when set, is the conversation as the client keeps it (OpenAI-style clients
	// send it whole every time) and replaces the stored history for this turn.
	History []llm.Message
	// Options are the client's model settings, for agents that take them.
	Options Options
}

// Options are model settings a client may ask for; zero values leave the agent's choice.
type Options struct {
	Model       string
	System      string
	Temperature *float64
	MaxTokens   int
}

// Tokens is the usage of a turn as clients see it.
type Tokens struct {
	Input       int64 `json:"input"`
	CachedInput int64 `json:"cachedInput"`
	CacheWrite  int64 `json:"cacheWrite"`
	Output      int64 `json:"output"`
}

// Metadata describes how a reply was produced.
type Metadata struct {
	Provider         string  `json:"provider"`
	Model            string  `json:"model"`
	Tokens           Tokens  `json:"tokens"`
	Cost             float64 `json:"cost"`
	Cached           bool    `json:"cached"`
	ProcessingMs     int64   `json:"processingMs"`
	IntentConfidence float64 `json:"intentConfidence"`
	// Interrupted is set when the reply was cut short (client gone, turn cancelled).
	Interrupted bool `json:"interrupted,omitempty"`
	// Mode is "cost-saving" when a budget is nearly spent; empty otherwise.
	Mode string `json:"mode,omitempty"`
	// AgentID is the agent that answered: the router's pick for "auto", the hand-off's target.
	AgentID string `json:"agentId,omitempty"`
	// Route is the router's choice when the request named "auto" and opened the session.
	Route *Route `json:"route,omitempty"`
	// Handoff is set when the agent asked passed the conversation to AgentID this turn.
	Handoff *HandoffInfo `json:"handoff,omitempty"`
}

// HandoffInfo describes a hand-off in a turn's metadata.
type HandoffInfo struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// Result is a finished turn.
type Result struct {
	SessionID string        `json:"sessionId"`
	MessageID string        `json:"messageId"`
	Content   string        `json:"content"`
	Intent    string        `json:"intent"`
	Sentiment nlu.Sentiment `json:"sentiment"`
	Metadata  Metadata      `json:"metadata"`
}

// Turn is a started exchange: the session is resolved and the user's message is stored.
type Turn struct {
	engine      *Engine
	agent       Agent
	req         Request
	sess        session.Session
	history     []llm.Message
	started     time.Time
	newSession  bool
	reservation *Reservation
	mode        Mode
	measured    time.Time     // started on the monotonic wall clock, for latencies
	firstToken  time.Duration // when the first reply text came, from measured; 0 until then
	summaryCost float64       // what the running summary cost this turn, billed with it
	route       *Route        // the router's choice, when the request named "auto"
}

// SessionID is the turn's session.
func (t *Turn) SessionID() string { return t.sess.ID }

// NewSession reports whether the turn opened its session.
func (t *Turn) NewSession() bool { return t.newSession }

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,128}$`)

// ValidUserID reports whether id is acceptable as a user id: 1-128 letters, digits or _.@:-.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// Conversation names who talks to which agent in which session.
type Conversation struct {
	AgentID string
	// SessionID continues a conversation; empty starts a new one.
	SessionID string
	// UserID owns the session; empty means session.AnonymousUserID.
	UserID string
}

func (c *Conversation) validate(reg *Registry) error {
	c.AgentID = strings.TrimSpace(c.AgentID)
	c.SessionID = strings.TrimSpace(c.SessionID)
	c.UserID = strings.TrimSpace(c.UserID)
	if c.AgentID == "" {
		return &ValidationError{Field: "agentId", Message: `is required (or "auto", to let the router pick)`}
	}
	if c.UserID != "" && !userIDPattern.MatchString(c.UserID) {
		return &ValidationError{Field: "userId", Message: "must be 1-128 letters, digits or _.@:-"}
	}
	if len(c.SessionID) > 128 {
		return &ValidationError{Field: "sessionId", Message: "is too long"}
	}
	if _, ok := reg.Get(c.AgentID); !ok && c.AgentID != AutoAgentID {
		return fmt.Errorf("%w: %q", ErrAgentNotFound, c.AgentID)
	}
	if c.UserID == "" {
		c.UserID = session.AnonymousUserID
	}
	return nil
}

// validateMessage checks a user message against the engine's limits.
func (e *Engine) validateMessage(msg string) error {
	if strings.TrimSpace(msg) == "" {
		return &ValidationError{Field: "message", Message: "is required"}
	}
	if !utf8.ValidString(msg) {
		return &ValidationError{Field: "message", Message: "is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(msg); n > e.cfg.MaxMessageChars {
		return &ValidationError{Field: "message", Message: fmt.Sprintf("has %d characters, over the limit of %d", n, e.cfg.MaxMessageChars)}
	}
	return nil
}

// OpenSession resumes the conversation's session, or creates one when it names none. created
// reports which.
func (e *Engine) OpenSession(ctx context.Context, conv Conversation) (sess session.Session, created bool, err error) {
	if err := conv.validate(e.cfg.Registry); err != nil {
		return session.Session{}, false, err
	}
	store := e.cfg.Store
	if _, err := store.EnsureUser(ctx, conv.UserID, ""); err != nil {
		return session.Session{}, false, fmt.Errorf("open session: %w", err)
	}
	if conv.SessionID == "" {
		if conv.AgentID == AutoAgentID {
			// No message to route on yet (a voice session starting): the general assistant.
			route, err := e.cfg.Registry.Route("")
			if err != nil {
				return session.Session{}, false, fmt.Errorf("%w: no agent to route to", err)
			}
			conv.AgentID = route.AgentID
		}
		sess = session.Session{ID: session.NewID("ses"), UserID: conv.UserID, AgentID: conv.AgentID}
		if err := store.CreateSession(ctx, sess); err != nil {
			return session.Session{}, false, fmt.Errorf("open session: %w", err)
		}
		return sess, true, nil
	}
	sess, err = store.GetSession(ctx, conv.UserID, conv.SessionID)
	if errors.Is(err, session.ErrNotFound) {
		return session.Session{}, false, fmt.Errorf("%w: %q", ErrSessionNotFound, conv.SessionID)
	}
	if err != nil {
		return session.Session{}, false, fmt.Errorf("open session: %w", err)
	}
	if sess.AgentID != conv.AgentID && conv.AgentID != AutoAgentID {
		return session.Session{}, false, fmt.Errorf("%w: session %q is with %q (continue it with that agentId, or \"auto\")", ErrSessionAgent, sess.ID, sess.AgentID)
	}
	return sess, false, nil
}

// Start opens or resumes the session and stores the user's message, so what the user said is
// kept whatever happens to the reply.
func (e *Engine) Start(ctx context.Context, req Request) (*Turn, error) {
	if err := e.validateMessage(req.Message); err != nil {
		return nil, err
	}
	var route *Route
	if strings.TrimSpace(req.AgentID) == AutoAgentID && strings.TrimSpace(req.SessionID) == "" {
		r, err := e.cfg.Registry.Route(req.Message)
		if err != nil {
			return nil, fmt.Errorf("%w: no agent to route to", err)
		}
		req.AgentID, route = r.AgentID, &r
	}
	sess, created, err := e.OpenSession(ctx, Conversation{AgentID: req.AgentID, SessionID: req.SessionID, UserID: req.UserID})
	if err != nil {
		return nil, err
	}
	agent, _ := e.cfg.Registry.Get(sess.AgentID)
	req.AgentID, req.SessionID, req.UserID = sess.AgentID, sess.ID, sess.UserID
	t := &Turn{engine: e, agent: agent, req: req, sess: sess, newSession: created, started: e.cfg.Clock.Now(), measured: time.Now(), route: route}
	if req.History != nil {
		t.history = req.History
	} else if !created {
		msgs, err := e.cfg.Store.ListMessages(ctx, sess.UserID, sess.ID, e.cfg.HistoryMessages)
		if err != nil {
			return nil, fmt.Errorf("start turn: %w", err)
		}
		for _, m := range msgs {
			// An interrupted reply the user heard nothing of was never said.
			if (m.Role == session.RoleUser || m.Role == session.RoleAssistant) && m.Content != "" {
				t.history = append(t.history, llm.Message{Role: m.Role, Content: m.Content})
			}
		}
	}
	if e.cfg.Budget != nil {
		// A paused agent refuses before anything is stored: the client gets a clear error and
		// still holds what the user said.
		promptChars := len(req.Message) + systemPromptAllowance
		for _, m := range t.history {
			promptChars += len(m.Content)
		}
		estimate := e.cfg.Prices.Estimate(e.cfg.EstimateModel, promptChars, e.cfg.EstimateMaxTokens)
		if t.reservation, t.mode, err = e.cfg.Budget.Reserve(ctx, sess.AgentID, estimate); err != nil {
			return nil, err
		}
	}
	if err := e.cfg.Store.AppendMessage(ctx, session.Message{
		ID: session.NewID("msg"), SessionID: sess.ID, Role: session.RoleUser, Content: req.Message,
		Metadata: map[string]any{"context": req.Context},
	}); err != nil {
		t.reservation.Settle(ctx, 0)
		return nil, fmt.Errorf("start turn: store user message: %w", err)
	}
	return t, nil
}

// Run streams the agent's reply to onDelta as it is generated and stores it. If onDelta fails
// (the client left) or ctx ends, the provider call is cancelled and what was generated so far
// is stored, marked interrupted.
func (t *Turn) Run(ctx context.Context, onDelta func(text string) error) (Result, error) {
	e := t.engine
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := Result{SessionID: t.sess.ID, MessageID: session.NewID("msg")}
	var provider llm.Provider = e.cfg.LLM
	if t.mode >= ModeSaving {
		provider = savingProvider{inner: provider, model: e.cfg.SavingModel, maxTokens: e.cfg.SavingMaxTokens}
		res.Metadata.Mode = ModeSaving.String()
	}
	turnLLM := &turnProvider{inner: provider, cache: e.cfg.Cache}
	history, older := e.cfg.Window.split(t.history)
	summary, ok := "", false
	if len(older) > 0 && e.cfg.Summarizer != nil && e.cfg.KV != nil {
		summary, ok = e.rollingSummary(ctx, t, older)
	}
	if !ok {
		summary = e.cfg.Window.extractive(older)
	}
	in := Input{
		SessionID: t.sess.ID, UserID: t.req.UserID, Message: t.req.Message,
		History: history, Summary: summary, Context: t.req.Context, Options: t.req.Options,
		CostSaving: t.mode >= ModeSaving, LLM: turnLLM,
	}
	reply, err := t.agent.Respond(ctx, in)
	if err == nil && reply.Handoff != nil {
		reply, res.Metadata.Handoff, err = t.handOff(ctx, in, reply)
	}
	res.Metadata.AgentID, res.Metadata.Route = t.req.AgentID, t.route
	if err != nil {
		t.reservation.Settle(ctx, 0)
		return res, t.fail(ctx, fmt.Errorf("agent %s: %w", t.req.AgentID, err))
	}
	res.Intent, res.Sentiment = reply.Intent.Name, reply.Sentiment
	res.Metadata.IntentConfidence = reply.Intent.Confidence
	if e.cfg.Cache != nil {
		turnLLM.ttl = e.cfg.Cache.TTL(reply.Intent.Name)
	}
	var content strings.Builder
	var usage *llm.Usage
	var runErr error
	for chunk, err := range reply.Stream {
		if err != nil {
			runErr = err
			break
		}
		if chunk.Provider != "" {
			res.Metadata.Provider = chunk.Provider
		}
		if chunk.Model != "" {
			res.Metadata.Model = chunk.Model
		}
		res.Metadata.Cached = res.Metadata.Cached || chunk.Cached
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		if chunk.Text == "" {
			continue
		}
		if t.firstToken == 0 {
			t.firstToken = max(time.Since(t.measured), time.Nanosecond)
		}
		content.WriteString(chunk.Text)
		if err := onDelta(chunk.Text); err != nil {
			runErr = fmt.Errorf("deliver reply: %w", err)
			break
		}
	}
	if runErr == nil {
		runErr = ctx.Err()
	}
	res.Content = content.String()
	if res.Metadata.Provider == "" {
		res.Metadata.Provider = e.cfg.LLM.Name()
	}
	if usage == nil && res.Content != "" && !res.Metadata.Cached {
		// A reply cut off before its usage arrived was still generated and billed: estimate it.
		usage = &llm.Usage{InputTokens: int64(len(t.req.Message)+3) / 4, OutputTokens: int64(len(res.Content)+3) / 4}
	}
	if usage != nil && !res.Metadata.Cached {
		res.Metadata.Tokens = Tokens{Input: usage.InputTokens, CachedInput: usage.CachedInputTokens, CacheWrite: usage.CacheWriteTokens, Output: usage.OutputTokens}
		res.Metadata.Cost = e.cfg.Prices.LLMCost(res.Metadata.Model, *usage)
	}
	res.Metadata.Cost += t.summaryCost
	t.reservation.Settle(ctx, res.Metadata.Cost)
	res.Metadata.ProcessingMs = e.cfg.Clock.Now().Sub(t.started).Milliseconds()
	if runErr != nil {
		if res.Content == "" {
			return res, t.fail(ctx, runErr)
		}
		res.Metadata.Interrupted = true
	}
	// The reply is stored even when the client has gone: it was generated and paid for.
	persistCtx := context.WithoutCancel(ctx)
	if err := e.cfg.Store.AppendMessage(persistCtx, session.Message{
		ID: res.MessageID, SessionID: t.sess.ID, Role: session.RoleAssistant, Content: res.Content,
		Metadata: map[string]any{
			"agentId": t.req.AgentID, "intent": res.Intent, "sentiment": res.Sentiment.Label, "frustration": res.Sentiment.Frustration,
			"provider": res.Metadata.Provider, "model": res.Metadata.Model, "tokens": res.Metadata.Tokens,
			"cost": res.Metadata.Cost, "cached": res.Metadata.Cached, "processingMs": res.Metadata.ProcessingMs,
			"interrupted": res.Metadata.Interrupted, "route": res.Metadata.Route, "handoff": res.Metadata.Handoff,
		},
	}); err != nil {
		return res, fmt.Errorf("store reply: %w", err)
	}
	if e.cfg.Ledger != nil {
		if err := e.cfg.Ledger.RecordCost(persistCtx, session.Cost{
			ID: res.MessageID, UserID: t.req.UserID, AgentID: t.req.AgentID, SessionID: t.sess.ID, Kind: "llm",
			Provider: res.Metadata.Provider, Model: res.Metadata.Model,
			InputTokens: res.Metadata.Tokens.Input, CachedInputTokens: res.Metadata.Tokens.CachedInput,
			CacheWriteTokens: res.Metadata.Tokens.CacheWrite, OutputTokens: res.Metadata.Tokens.Output,
			USD: res.Metadata.Cost, Cached: res.Metadata.Cached,
		}); err != nil {
			e.cfg.Logger.ErrorContext(ctx, "cost not recorded", "message", res.MessageID, "err", err)
		}
	}
	t.record(persistCtx, session.EventTurnCompleted, map[string]any{
		"intent": res.Intent, "provider": res.Metadata.Provider, "model": res.Metadata.Model, "messageId": res.MessageID,
		"processingMs": res.Metadata.ProcessingMs, "firstTokenMs": t.firstToken.Milliseconds(), "cost": res.Metadata.Cost,
		"cached": res.Metadata.Cached, "interrupted": res.Metadata.Interrupted,
		"inputTokens": res.Metadata.Tokens.Input, "cachedInputTokens": res.Metadata.Tokens.CachedInput, "outputTokens": res.Metadata.Tokens.Output,
	})
	e.report(TurnReport{AgentID: t.req.AgentID, UserID: t.req.UserID, SessionID: t.sess.ID, Intent: res.Intent,
		Provider: res.Metadata.Provider, Model: res.Metadata.Model, FirstToken: t.firstToken,
		Duration: time.Since(t.measured), Tokens: res.Metadata.Tokens, Cost: res.Metadata.Cost, Cached: res.Metadata.Cached})
	return res, runErr
}

// handOff lets the agent a reply hands off to answer the same message, with the same
// history, and moves the session to it, so later turns go to it too. One hop: the new
// agent's own hand-off is ignored. A hand-off that cannot happen (unknown agent, a store that
// cannot move sessions, a failed update) keeps the first agent's reply.
func (t *Turn) handOff(ctx context.Context, in Input, reply Reply) (Reply, *HandoffInfo, error) {
	e := t.engine
	h := *reply.Handoff
	next, ok := e.cfg.Registry.Get(h.AgentID)
	updater, canMove := e.cfg.Store.(SessionAgentUpdater)
	if !ok || !canMove || h.AgentID == t.req.AgentID {
		e.cfg.Logger.WarnContext(ctx, "hand-off not possible; the agent answers itself", "session", t.sess.ID, "from", t.req.AgentID, "to", h.AgentID)
		return reply, nil, nil
	}
	if err := updater.UpdateSessionAgent(ctx, t.sess.UserID, t.sess.ID, h.AgentID); err != nil {
		e.cfg.Logger.ErrorContext(ctx, "hand-off not stored; the agent answers itself", "session", t.sess.ID, "to", h.AgentID, "err", err)
		return reply, nil, nil
	}
	info := &HandoffInfo{From: t.req.AgentID, To: h.AgentID, Reason: h.Reason}
	t.agent, t.req.AgentID, t.sess.AgentID = next, h.AgentID, h.AgentID
	nextReply, err := next.Respond(ctx, in)
	if err != nil {
		return Reply{}, info, err
	}
	nextReply.Handoff = nil
	return nextReply, info, nil
}

func (t *Turn) fail(ctx context.Context, err error) error {
	t.engine.cfg.Logger.WarnContext(ctx, "turn failed", "session", t.sess.ID, "agent", t.req.AgentID, "err", err)
	t.record(context.WithoutCancel(ctx), session.EventTurnFailed, map[string]any{"error": err.Error()})
	e := t.engine
	reported := err
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		reported = fmt.Errorf("%w (%w)", err, ctx.Err()) // observers tell a client that left from a failure
	}
	e.report(TurnReport{AgentID: t.req.AgentID, UserID: t.req.UserID, SessionID: t.sess.ID,
		Duration: time.Since(t.measured), Err: reported})
	return err
}

func (t *Turn) record(ctx context.Context, eventType string, data map[string]any) {
	err := t.engine.cfg.Events.RecordEvent(ctx, session.Event{
		Type: eventType, UserID: t.req.UserID, SessionID: t.sess.ID, AgentID: t.req.AgentID, Data: data,
	})
	if err != nil {
		t.engine.cfg.Logger.WarnContext(ctx, "analytics event lost", "type", eventType, "err", err)
	}
}

// History returns the stored messages of a user's session, oldest first.
func (e *Engine) History(ctx context.Context, userID, sessionID string) ([]session.Message, error) {
	if userID == "" {
		userID = session.AnonymousUserID
	}
	if _, err := e.cfg.Store.GetSession(ctx, userID, sessionID); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, sessionID)
		}
		return nil, err
	}
	return e.cfg.Store.ListMessages(ctx, userID, sessionID, 0)
}

// TruncateReply keeps only what the user heard of a spoken reply they interrupted, so the
// conversation (and the next turn's history) holds what was said rather than what was
// generated; the generated text stays in the message's metadata.
func (e *Engine) TruncateReply(ctx context.Context, userID, sessionID, messageID, played string) error {
	if userID == "" {
		userID = session.AnonymousUserID
	}
	if err := e.cfg.Store.TruncateMessage(ctx, userID, sessionID, messageID, played); err != nil {
		return fmt.Errorf("truncate reply: %w", err)
	}
	return nil
}
