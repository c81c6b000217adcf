package agents_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/session"
)

func TestNewEngineNeedsStoreRegistryAndLLM(t *testing.T) {
	h := newHarness(t, echo())
	tests := []struct {
		name  string
		unset func(*agents.EngineConfig)
	}{
		{"store", func(c *agents.EngineConfig) { c.Store = nil }},
		{"registry", func(c *agents.EngineConfig) { c.Registry = nil }},
		{"llm", func(c *agents.EngineConfig) { c.LLM = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := agents.EngineConfig{Store: h.store, Registry: h.engine.Registry(), LLM: echo()}
			tt.unset(&cfg)
			if _, err := agents.NewEngine(cfg); err == nil {
				t.Errorf("NewEngine without a %s succeeded", tt.name)
			}
		})
	}
}

func TestTurnNewSession(t *testing.T) {
	const (
		message = "How do I reset my password?"
		model   = "gpt-4o-mini-2024-07-18"
	)
	usage := llm.Usage{InputTokens: 1000, CachedInputTokens: 2000, OutputTokens: 500}
	// 1000 uncached at $0.15/M + 2000 cached at $0.075/M + 500 out at $0.60/M.
	const wantCost = (1000*0.15 + 2000*0.075 + 500*0.60) / 1e6
	provider := scripted(nil,
		llm.Chunk{Text: "Open", Provider: "upstream", Model: model},
		llm.Chunk{Text: " settings,"},
		llm.Chunk{Text: " then Reset."},
		llm.Chunk{Usage: &usage},
	)
	h := newHarness(t, provider)
	ctx := t.Context()

	turn := h.start(t, agents.Request{AgentID: "fam", Message: message, UserID: "alice", Context: map[string]any{"timezone": "Europe/Paris"}})
	if !turn.NewSession() || !strings.HasPrefix(turn.SessionID(), "ses_") {
		t.Fatalf("turn: new=%v id=%q, want a new ses_ session", turn.NewSession(), turn.SessionID())
	}
	// The user's message is kept before any reply is asked for.
	stored := h.messages(t, "alice", turn.SessionID())
	wantMessages(t, stored, user(message))
	if got := stored[0].Metadata["context"]; !reflect.DeepEqual(got, map[string]any{"timezone": "Europe/Paris"}) {
		t.Errorf("user message context = %v", got)
	}
	if n := len(provider.Calls()); n != 0 {
		t.Errorf("Start called the provider %d times, want 0", n)
	}

	var deltas []string
	res, err := turn.Run(ctx, func(text string) error {
		deltas = append(deltas, text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if want := []string{"Open", " settings,", " then Reset."}; !slices.Equal(deltas, want) {
		t.Errorf("deltas = %q, want %q", deltas, want)
	}
	if res.SessionID != turn.SessionID() || !strings.HasPrefix(res.MessageID, "msg_") {
		t.Errorf("result ids = %q, %q", res.SessionID, res.MessageID)
	}
	if res.Content != "Open settings, then Reset." {
		t.Errorf("content = %q", res.Content)
	}
	wantIntent := nlu.DetectIntent(message)
	if res.Intent != nlu.IntentHowTo || res.Metadata.IntentConfidence != wantIntent.Confidence || res.Sentiment != nlu.AnalyzeSentiment(message) {
		t.Errorf("intent = %q (%v), sentiment %+v", res.Intent, res.Metadata.IntentConfidence, res.Sentiment)
	}
	md := res.Metadata
	if md.Provider != "upstream" || md.Model != model || md.Tokens != (agents.Tokens{Input: 1000, CachedInput: 2000, Output: 500}) {
		t.Errorf("metadata = %+v", md)
	}
	if math.Abs(md.Cost-wantCost) > 1e-15 {
		t.Errorf("cost = %v, want %v", md.Cost, wantCost)
	}
	if md.ProcessingMs != turnDuration.Milliseconds() || md.Interrupted || md.Cached {
		t.Errorf("processingMs/interrupted/cached = %d/%v/%v, want %d/false/false", md.ProcessingMs, md.Interrupted, md.Cached, turnDuration.Milliseconds())
	}

	stored = h.messages(t, "alice", res.SessionID)
	wantMessages(t, stored, user(message), assistant(res.Content))
	reply := stored[1]
	if reply.ID != res.MessageID {
		t.Errorf("stored reply id %q, result says %q", reply.ID, res.MessageID)
	}
	wantMeta := map[string]any{
		"agentId": "fam", "intent": nlu.IntentHowTo, "sentiment": res.Sentiment.Label,
		"provider": "upstream", "model": model,
		"tokens": map[string]any{"input": 1000.0, "cachedInput": 2000.0, "output": 500.0},
		"cost":   md.Cost, "processingMs": float64(md.ProcessingMs), "interrupted": false,
	}
	wantMetadata(t, reply.Metadata, wantMeta)
	h.wantEvents(t, "alice", map[string]int{"turn.completed": 1, "turn.failed": 0})

	// FAM asked the provider with the user's message alone: a new session has no history.
	if got := provider.lastRequest(t).Messages; !reflect.DeepEqual(got, []llm.Message{user(message)}) {
		t.Errorf("provider messages = %+v", got)
	}

	// History reads the same conversation back, to its owner only.
	hist, err := h.engine.History(ctx, "alice", res.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	wantMessages(t, hist, user(message), assistant(res.Content))
	if _, err := h.engine.History(ctx, "bob", res.SessionID); !errors.Is(err, agents.ErrSessionNotFound) {
		t.Errorf("History by another user: %v, want ErrSessionNotFound", err)
	}
}

func TestTurnContinuesSession(t *testing.T) {
	provider := echo()
	h := newHarness(t, provider)
	const first, second = "What are the voice tiers?", "And which one is free?"

	res1, _ := h.turn(t, agents.Request{AgentID: "fam", Message: first, UserID: "alice"})
	turn := h.start(t, agents.Request{AgentID: "fam", Message: second, UserID: "alice", SessionID: res1.SessionID})
	if turn.NewSession() || turn.SessionID() != res1.SessionID {
		t.Fatalf("turn: new=%v id=%q, want session %q continued", turn.NewSession(), turn.SessionID(), res1.SessionID)
	}
	res2, err := turn.Run(t.Context(), func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}

	want := []llm.Message{user(first), assistant(echoReply(first)), user(second)}
	if got := provider.lastRequest(t).Messages; !reflect.DeepEqual(got, want) {
		t.Errorf("provider messages = %+v\nwant %+v", got, want)
	}
	if res2.SessionID != res1.SessionID || res2.Content != echoReply(second) {
		t.Errorf("second result = %+v", res2)
	}
	// No chunk named a provider, so the engine's own provider is reported.
	if res2.Metadata.Provider != provider.Name() {
		t.Errorf("provider = %q, want %q", res2.Metadata.Provider, provider.Name())
	}
	wantMessages(t, h.messages(t, "alice", res1.SessionID), append(want, assistant(echoReply(second)))...)
}

func TestTurnHistoryLimit(t *testing.T) {
	// Three finished turns leave six messages; the fourth turn's provider sees the last
	// HistoryMessages of them, then the new message.
	all := []llm.Message{
		user("one"), assistant(echoReply("one")),
		user("two"), assistant(echoReply("two")),
		user("three"), assistant(echoReply("three")),
	}
	tests := []struct {
		limit int
		want  []llm.Message
	}{
		{1, all[5:]},
		{2, all[4:]},
		{5, all[1:]},
		{0, all}, // the default, 20, keeps everything
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			provider := echo()
			h := newHarness(t, provider, func(c *agents.EngineConfig) { c.HistoryMessages = tt.limit })
			sessionID := ""
			for _, msg := range []string{"one", "two", "three", "four"} {
				res, _ := h.turn(t, agents.Request{AgentID: "fam", Message: msg, SessionID: sessionID})
				sessionID = res.SessionID
			}
			want := append(slices.Clone(tt.want), user("four"))
			if got := provider.lastRequest(t).Messages; !reflect.DeepEqual(got, want) {
				t.Errorf("provider messages = %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestStartValidation(t *testing.T) {
	const limit = 10
	tests := []struct {
		name      string
		req       agents.Request
		wantField string // "" means the request is valid
	}{
		{"empty agent id", agents.Request{AgentID: "  ", Message: "hi"}, "agentId"},
		{"blank message", agents.Request{AgentID: "fam", Message: " \n\t "}, "message"},
		{"message over the limit in runes", agents.Request{AgentID: "fam", Message: strings.Repeat("é", limit+1)}, "message"},
		{"invalid UTF-8", agents.Request{AgentID: "fam", Message: "hi \xff there"}, "message"},
		{"user id with a space", agents.Request{AgentID: "fam", Message: "hi", UserID: "bad user"}, "userId"},
		{"user id too long", agents.Request{AgentID: "fam", Message: "hi", UserID: strings.Repeat("u", 129)}, "userId"},
		{"session id too long", agents.Request{AgentID: "fam", Message: "hi", SessionID: strings.Repeat("s", 129)}, "sessionId"},
		// The limit counts characters, not bytes: this is 20 bytes.
		{"multibyte message at the limit", agents.Request{AgentID: "fam", Message: strings.Repeat("é", limit)}, ""},
		{"user id with punctuation", agents.Request{AgentID: " fam ", Message: "hi", UserID: "a.b_c-d@e:f"}, ""},
	}
	h := newHarness(t, echo(), func(c *agents.EngineConfig) { c.MaxMessageChars = limit })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.engine.Start(t.Context(), tt.req)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				return
			}
			var verr *agents.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Start: %v, want a *ValidationError", err)
			}
			if verr.Field != tt.wantField {
				t.Errorf("field = %q (%v), want %q", verr.Field, verr, tt.wantField)
			}
		})
	}
}

func TestStartSessionErrors(t *testing.T) {
	h := newHarness(t, echo())
	res, _ := h.turn(t, agents.Request{AgentID: "fam", Message: "hello", UserID: "alice"})
	tests := []struct {
		name string
		req  agents.Request
		want error
	}{
		{"unknown agent", agents.Request{AgentID: "nope", Message: "hi"}, agents.ErrAgentNotFound},
		{"unknown session", agents.Request{AgentID: "fam", Message: "hi", UserID: "alice", SessionID: "ses_doesnotexist"}, agents.ErrSessionNotFound},
		{"another user's session", agents.Request{AgentID: "fam", Message: "hi", UserID: "bob", SessionID: res.SessionID}, agents.ErrSessionNotFound},
		{"anonymous caller, named user's session", agents.Request{AgentID: "fam", Message: "hi", SessionID: res.SessionID}, agents.ErrSessionNotFound},
		{"session with another agent", agents.Request{AgentID: "echo", Message: "hi", UserID: "alice", SessionID: res.SessionID}, agents.ErrSessionAgent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.engine.Start(t.Context(), tt.req); !errors.Is(err, tt.want) {
				t.Errorf("Start: %v, want %v", err, tt.want)
			}
		})
	}
	// None of the refused messages reached the session.
	wantMessages(t, h.messages(t, "alice", res.SessionID), user("hello"), assistant(echoReply("hello")))
}

var errClientGone = errors.New("client gone")

// An interrupted reply stops the provider and keeps what was generated, marked interrupted.
func TestRunInterrupted(t *testing.T) {
	tests := []struct {
		name string
		// onDelta gets the n-th delta (from 0) and the function cancelling the run's context.
		onDelta     func(n int, cancel context.CancelFunc) error
		wantErr     error
		wantContent string
	}{
		{
			name: "delivery fails",
			onDelta: func(n int, _ context.CancelFunc) error {
				if n == 1 {
					return errClientGone
				}
				return nil
			},
			wantErr:     errClientGone,
			wantContent: "Hello there",
		},
		{
			name: "context cancelled",
			onDelta: func(_ int, cancel context.CancelFunc) error {
				cancel()
				return nil
			},
			wantErr:     context.Canceled,
			wantContent: "Hello",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			provider := scripted(nil, texts("Hello", " there", " my", " friend.")...)
			h := newHarness(t, provider)
			turn := h.start(t, agents.Request{AgentID: "fam", Message: "Tell me a story", UserID: "alice"})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			n := 0
			res, err := turn.Run(ctx, func(string) error {
				defer func() { n++ }()
				return tt.onDelta(n, cancel)
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run: %v, want %v", err, tt.wantErr)
			}
			if calls := provider.Calls(); len(calls) != 1 || calls[0].ctx.Err() == nil {
				t.Errorf("the provider's context was not cancelled when Run returned")
			}
			if res.Content != tt.wantContent || !res.Metadata.Interrupted {
				t.Errorf("result content %q interrupted=%v, want %q interrupted", res.Content, res.Metadata.Interrupted, tt.wantContent)
			}
			stored := h.messages(t, "alice", turn.SessionID())
			wantMessages(t, stored, user("Tell me a story"), assistant(tt.wantContent))
			if stored[1].Metadata["interrupted"] != true || stored[1].ID != res.MessageID {
				t.Errorf("stored reply %+v, want it marked interrupted", stored[1])
			}
			h.wantEvents(t, "alice", map[string]int{"turn.completed": 1, "turn.failed": 0})
		})
	}
}

// A turn that fails before any text keeps the user's message, stores no reply and records
// the failure.
func TestRunFailsBeforeAnyText(t *testing.T) {
	errUpstream := errors.New("upstream down")
	tests := []struct {
		name     string
		agentID  string
		provider *fakeProvider
		wantErr  error
	}{
		{"provider fails", "fam", scripted(errUpstream), errUpstream},
		{"provider fails after usage only", "fam", scripted(errUpstream, llm.Chunk{Model: "m", Usage: &llm.Usage{InputTokens: 3}}), errUpstream},
		{"agent fails", "broken", echo(), errAgentBroken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.provider)
			turn := h.start(t, agents.Request{AgentID: tt.agentID, Message: "hello?", UserID: "alice"})
			delivered := 0
			_, err := turn.Run(t.Context(), func(string) error { delivered++; return nil })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run: %v, want %v", err, tt.wantErr)
			}
			if delivered != 0 {
				t.Errorf("%d deltas delivered, want none", delivered)
			}
			wantMessages(t, h.messages(t, "alice", turn.SessionID()), user("hello?"))
			h.wantEvents(t, "alice", map[string]int{"turn.failed": 1, "turn.completed": 0})
		})
	}
}

func TestConcurrentNewSessionsAreSeparate(t *testing.T) {
	const n = 8
	h := newHarness(t, echo())
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			turn, err := h.engine.Start(t.Context(), agents.Request{AgentID: "fam", Message: fmt.Sprintf("message %d", i), UserID: "alice"})
			if err != nil {
				t.Errorf("Start %d: %v", i, err)
				return
			}
			res, err := turn.Run(t.Context(), func(string) error { return nil })
			if err != nil {
				t.Errorf("Run %d: %v", i, err)
				return
			}
			ids[i] = res.SessionID
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Errorf("session id %q handed out twice", id)
		}
		seen[id] = true
		msg := fmt.Sprintf("message %d", i)
		wantMessages(t, h.messages(t, "alice", id), user(msg), assistant(echoReply(msg)))
	}
	h.wantEvents(t, "alice", map[string]int{"turn.completed": n})
}

func TestOpenSession(t *testing.T) {
	h := newHarness(t, echo())
	ctx := t.Context()
	sess, created, err := h.engine.OpenSession(ctx, agents.Conversation{AgentID: "fam"})
	if err != nil || !created || sess.UserID != session.AnonymousUserID || sess.AgentID != "fam" {
		t.Fatalf("OpenSession = %+v, %v, %v; want a new anonymous fam session", sess, created, err)
	}
	again, created, err := h.engine.OpenSession(ctx, agents.Conversation{AgentID: "fam", SessionID: sess.ID})
	if err != nil || created || again.ID != sess.ID {
		t.Errorf("reopen = %+v, %v, %v; want the same session", again, created, err)
	}
}
