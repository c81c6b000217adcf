package fam_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/fam/guard"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
)

// drain reads a reply's stream whole.
func drain(t *testing.T, reply agents.Reply) (text string, last llm.Chunk) {
	t.Helper()
	var b strings.Builder
	for c, err := range reply.Stream {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		b.WriteString(c.Text)
		last = c
	}
	return b.String(), last
}

// wrapper hides a provider the way the engine's per-turn wrappers do, but says what it wraps.
type wrapper struct{ inner llm.Provider }

func (w wrapper) Name() string { return "wrapper" }
func (w wrapper) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	return w.inner.Stream(ctx, req)
}
func (w wrapper) Unwrap() llm.Provider { return w.inner }

func TestIsOffline(t *testing.T) {
	off := offline.New(offline.Config{})
	model := &recorder{}
	tests := []struct {
		name string
		p    llm.Provider
		want bool
	}{
		{"the offline engine", off, true},
		{"a model", model, false},
		{"nil", nil, false},
		{"wrapped offline engine", wrapper{off}, true},
		{"wrapped model", wrapper{model}, false},
		{"chain of the offline engine", llm.NewChain(llm.ChainConfig{}, off), true},
		{"chain with a model first", llm.NewChain(llm.ChainConfig{}, model, off), false},
		{"empty chain", llm.NewChain(llm.ChainConfig{}), false},
		{"wrapped chain of the offline engine", wrapper{llm.NewChain(llm.ChainConfig{}, off)}, true},
	}
	for _, tt := range tests {
		if got := fam.IsOffline(tt.p); got != tt.want {
			t.Errorf("%s: IsOffline = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (fam.Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if err := (fam.Config{Constraints: guard.Config{Allow: []guard.Kind{"weather"}}}).Validate(); err == nil {
		t.Error("an unknown constraint must be reported")
	}
	if err := (fam.Config{ClassifyBelow: 2}).Validate(); err == nil {
		t.Error("ClassifyBelow over 1 must be reported")
	}
	// New keeps working on a bad config, on the safe side: every constraint on.
	a := fam.New(fam.Config{Constraints: guard.Config{Allow: []guard.Kind{"weather", guard.Prices}}})
	if !slices.Equal(a.Constraints().Active(), guard.Kinds()) {
		t.Errorf("active constraints %v, want all of them", a.Constraints().Active())
	}
	allowed := fam.New(fam.Config{Constraints: guard.Config{Allow: []guard.Kind{guard.Prices}}})
	if slices.Contains(allowed.Constraints().Active(), guard.Prices) {
		t.Error("Allow was ignored")
	}
}

func TestRespondNeedsAProvider(t *testing.T) {
	if _, err := fam.New(fam.Config{}).Respond(t.Context(), agents.Input{Message: "hi"}); err == nil {
		t.Error("Respond without an LLM must fail")
	}
}

// The constraints' rules sit in the cached prefix; app instructions too; nothing of the turn.
func TestSystemPromptLayout(t *testing.T) {
	req, _ := respond(t, fam.Config{}, agents.Input{
		Message: "what's my name?", History: []llm.Message{{Role: "user", Content: "I'm Zed."}, {Role: "assistant", Content: "Hi Zed!"}},
		Options: agents.Options{System: "Answer in French."},
	})
	prefix := req.System[:req.CachePrefix]
	for _, want := range []string{fam.SystemPrompt, "Never quote prices", "legal advice", "## Instructions from the app\nAnswer in French."} {
		if !strings.Contains(prefix, want) {
			t.Errorf("cached prefix lacks %q", want)
		}
	}
	if strings.Contains(prefix, "Zed") || !strings.Contains(req.System[req.CachePrefix:], "Name: Zed") || !strings.HasPrefix(req.System[req.CachePrefix:], "\n\n## Conversation Context\n") {
		t.Errorf("the facts belong after the cached prefix:\n%s", req.System)
	}
	// An agent that may quote prices does not tell the model otherwise.
	req, _ = respond(t, fam.Config{Constraints: guard.Config{Allow: []guard.Kind{guard.Prices}}}, agents.Input{Message: "hello?"})
	if strings.Contains(req.System, "Never quote prices") {
		t.Errorf("an allowed constraint is still in the prompt:\n%s", req.System)
	}
}

func TestSummaryFactsReachThePrompt(t *testing.T) {
	req, _ := respond(t, fam.Config{}, agents.Input{Message: "what's my favourite colour?", Summary: "User: Hi, my name is John.\nUser: My favourite colour is green."})
	for _, want := range []string{"Name: John", "Favourite colour: green", "Earlier in this conversation:\nUser: Hi, my name is John."} {
		if !strings.Contains(req.System, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, req.System)
		}
	}
}

// After "start over", the model sees only what came after it, and the facts before are gone.
func TestRestartTrimsTheConversation(t *testing.T) {
	history := []llm.Message{
		{Role: "user", Content: "my name is John"},
		{Role: "assistant", Content: "Nice to meet you, John!"},
		{Role: "user", Content: "start over"},
		{Role: "assistant", Content: "Okay, let's start fresh."},
		{Role: "user", Content: "I live in Oslo"},
		{Role: "assistant", Content: "Noted."},
	}
	req, _ := respond(t, fam.Config{}, agents.Input{Message: "what do you know about me?", History: history, Summary: "User: my favourite colour is red."})
	if len(req.Messages) != 3 || req.Messages[0].Content != "I live in Oslo" {
		t.Errorf("messages = %+v, want those after the restart", req.Messages)
	}
	if strings.Contains(req.System, "John") || strings.Contains(req.System, "red") || !strings.Contains(req.System, "Lives in: Oslo") {
		t.Errorf("system prompt:\n%s", req.System)
	}
}

func TestHighFrustrationOffersAPersonOrARestart(t *testing.T) {
	rec := &recorder{}
	reply, err := fam.New(fam.Config{}).Respond(t.Context(), agents.Input{Message: "This is broken and useless. How do I fix it?", LLM: rec})
	if err != nil {
		t.Fatal(err)
	}
	text, last := drain(t, reply)
	if reply.Intent.Name != nlu.IntentFrustration || reply.Sentiment.Frustration != nlu.FrustrationHigh {
		t.Errorf("intent %+v sentiment %+v", reply.Intent, reply.Sentiment)
	}
	if !strings.HasPrefix(text, "ok") || !strings.Contains(text, "talk to a person") || !strings.Contains(text, "start over") {
		t.Errorf("reply %q, want the model's text then the offer", text)
	}
	if last.Usage == nil || last.Usage.OutputTokens != 1 {
		t.Errorf("last chunk %+v, want the provider's usage at the end", last)
	}
	if sys := rec.requests[0].System; !strings.Contains(sys, "frustration is high (score 6)") || !strings.Contains(sys, "offer to put them in touch with a person") {
		t.Errorf("system prompt:\n%s", sys)
	}
}

// Config.RulesOnly decides when FAM's rules answer: here a provider FAM would take for a model.
func TestRulesOnlyOverride(t *testing.T) {
	rec := &recorder{}
	a := fam.New(fam.Config{RulesOnly: func(llm.Provider) bool { return true }})
	reply, err := a.Respond(t.Context(), agents.Input{
		Message: "what's my name?", LLM: rec,
		History: []llm.Message{{Role: "user", Content: "call me Ishmael"}, {Role: "assistant", Content: "Hello!"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	text, last := drain(t, reply)
	if text != "Your name is Ishmael." || last.Model != fam.RulesModel || last.Provider != fam.ID || last.Usage == nil || *last.Usage != (llm.Usage{}) {
		t.Errorf("reply %q, last chunk %+v", text, last)
	}
	if len(rec.requests) != 0 {
		t.Errorf("the provider was called %d times", len(rec.requests))
	}
}

// In cost-saving mode a question the user's own words answer costs no model call.
func TestCostSavingAnswersRecallByRules(t *testing.T) {
	history := []llm.Message{{Role: "user", Content: "I live in Oslo"}, {Role: "assistant", Content: "Noted."}}
	for _, saving := range []bool{false, true} {
		rec := &recorder{}
		reply, err := fam.New(fam.Config{}).Respond(t.Context(), agents.Input{Message: "where do I live?", History: history, CostSaving: saving, LLM: rec})
		if err != nil {
			t.Fatal(err)
		}
		text, _ := drain(t, reply)
		if saving && (len(rec.requests) != 0 || text != "You told me you live in Oslo.") {
			t.Errorf("cost-saving: %d calls, reply %q", len(rec.requests), text)
		}
		if !saving && (len(rec.requests) != 1 || text != "ok") {
			t.Errorf("normal: %d calls, reply %q, want the model's answer", len(rec.requests), text)
		}
	}
}

func TestOwnReplyStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	reply, err := fam.New(fam.Config{}).Respond(ctx, agents.Input{Message: "I want a refund", LLM: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range reply.Stream {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("stream error %v, want context.Canceled", err)
		}
		break
	}
}

// classifier is a scripted IntentClassifier.
type classifier struct {
	intent nlu.Intent
	err    error
	calls  int
}

func (c *classifier) ClassifyIntent(context.Context, llm.Provider, string, []llm.Message) (nlu.Intent, llm.Usage, error) {
	c.calls++
	return c.intent, llm.Usage{InputTokens: 7, OutputTokens: 1}, c.err
}

func TestClassifierHook(t *testing.T) {
	tests := []struct {
		name       string
		message    string
		llm        llm.Provider
		cls        *classifier
		wantCalls  int
		wantIntent string
		wantInput  int64
	}{
		{"unsure rules ask the classifier", "the new voices", &recorder{}, &classifier{intent: nlu.Intent{Name: nlu.IntentFeedback, Confidence: 0.8}}, 1, nlu.IntentFeedback, 1 + 7},
		{"sure rules do not", "How do I configure a key?", &recorder{}, &classifier{intent: nlu.Intent{Name: nlu.IntentFeedback}}, 0, nlu.IntentHowTo, 1},
		{"a failure keeps the rules' intent", "the new voices", &recorder{}, &classifier{err: errors.New("down")}, 1, nlu.IntentInformation, 1 + 7},
		{"never offline", "the new voices", offline.New(offline.Config{}), &classifier{intent: nlu.Intent{Name: nlu.IntentFeedback}}, 0, nlu.IntentInformation, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := fam.New(fam.Config{Classifier: tt.cls}).Respond(t.Context(), agents.Input{Message: tt.message, LLM: tt.llm})
			if err != nil {
				t.Fatal(err)
			}
			_, last := drain(t, reply)
			if tt.cls.calls != tt.wantCalls || reply.Intent.Name != tt.wantIntent {
				t.Errorf("calls %d intent %+v, want %d %s", tt.cls.calls, reply.Intent, tt.wantCalls, tt.wantIntent)
			}
			if tt.wantInput >= 0 && (last.Usage == nil || last.Usage.InputTokens != tt.wantInput) {
				t.Errorf("usage %+v, want %d input tokens (the classifier's call billed with the turn)", last.Usage, tt.wantInput)
			}
		})
	}
}

// scriptedModel answers every request with text.
type scriptedModel struct{ text string }

func (s scriptedModel) Name() string { return "scripted" }
func (s scriptedModel) Stream(context.Context, llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		if yield(llm.Chunk{Text: s.text}, nil) {
			yield(llm.Chunk{Usage: &llm.Usage{InputTokens: 3, OutputTokens: 1}}, nil)
		}
	}
}

func TestLLMClassifier(t *testing.T) {
	tests := []struct {
		answer string
		want   string
		err    error
	}{
		{"feedback", nlu.IntentFeedback, nil},
		{"How-to.", nlu.IntentHowTo, nil},
		{"Follow-up", nlu.IntentFollowUp, nil},
		{"  TROUBLESHOOTING\n", nlu.IntentTroubleshooting, nil},
		{"frustration", "", fam.ErrUnclassified}, // not the model's to decide
		{"banana", "", fam.ErrUnclassified},
		{"", "", fam.ErrUnclassified},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			got, usage, err := fam.LLMClassifier{}.ClassifyIntent(t.Context(), scriptedModel{tt.answer}, "the new voices", []llm.Message{{Role: "user", Content: "hi"}})
			if !errors.Is(err, tt.err) || got.Name != tt.want || usage.InputTokens != 3 {
				t.Errorf("ClassifyIntent = %+v %+v %v, want %q %v", got, usage, err, tt.want, tt.err)
			}
			if err == nil && got.Confidence != 0.8 {
				t.Errorf("confidence %v, want the default 0.8", got.Confidence)
			}
		})
	}
	if _, _, err := (fam.LLMClassifier{}).ClassifyIntent(t.Context(), failing{}, "x", nil); err == nil {
		t.Error("a provider failure must be returned")
	}
}

// Memory and repetition are re-read from the history every turn: that must stay cheap. The
// engine's window hands an agent 12 recent messages by default and folds the rest into the
// summary; this reads 50, every one stating facts.
func BenchmarkRespondLongConversation(b *testing.B) {
	var history []llm.Message
	for i := range benchTurns {
		history = append(history,
			llm.Message{Role: "user", Content: fmt.Sprintf("My favourite number is %d and I live in Town %d. What are the voice tiers? I'm allergic to peanuts.", i, i)},
			llm.Message{Role: "assistant", Content: "Dartmouth routes speech through tiers to keep costs down. The native tier is free."})
	}
	a := fam.New(fam.Config{})
	rec := &recorder{}
	in := agents.Input{Message: "what's my favourite number?", History: history, Summary: "User: my name is John.", LLM: rec}
	b.ReportAllocs()
	for b.Loop() {
		reply, err := a.Respond(context.Background(), in)
		if err != nil {
			b.Fatal(err)
		}
		for range reply.Stream {
		}
	}
}

const benchTurns = 25
