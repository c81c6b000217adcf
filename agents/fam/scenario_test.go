package fam_test

// The scenario suite drives FAM through the real gateway's POST /api/v2/chat, over a real
// SQLite store, with the offline engine (no model) or a fake model provider.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/fam/guard"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// testGateway is a real gateway on a loopback port, serving FAM, like gateway/helpers_test.go
// builds it.
type testGateway struct {
	url   string
	store *session.SQLStore
}

func startGateway(t *testing.T, provider llm.Provider, cfg fam.Config) *testGateway {
	t.Helper()
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/fam.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if provider == nil {
		provider = offline.New(offline.Config{})
	}
	quiet := slog.New(slog.DiscardHandler)
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	reg, err := agents.NewRegistry(fam.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: provider, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &testGateway{url: gatewaytest.Serve(t, engine), store: store}
}

// chatReply is the body of a POST /api/v2/chat answer.
type chatReply struct {
	SessionID string `json:"sessionId"`
	Content   string `json:"content"`
	Intent    string `json:"intent"`
	Sentiment struct {
		Label            string  `json:"label"`
		Score            float64 `json:"score"`
		Frustration      string  `json:"frustration"`
		FrustrationScore int     `json:"frustrationScore"`
	} `json:"sentiment"`
	Metadata struct {
		Provider         string         `json:"provider"`
		Model            string         `json:"model"`
		Tokens           map[string]int `json:"tokens"`
		IntentConfidence float64        `json:"intentConfidence"`
	} `json:"metadata"`
}

func (g *testGateway) chat(t *testing.T, sessionID, message string) chatReply {
	t.Helper()
	var out chatReply
	gatewaytest.Chat(t, g.url, map[string]string{"agentId": fam.ID, "message": message, "sessionId": sessionID}, &out)
	return out
}

// fakeLLM is a model provider whose reply is a function of the request. It records every
// request and streams the reply a word at a time.
type fakeLLM struct {
	answer func(req llm.Request) string
	mu     sync.Mutex
	reqs   []llm.Request
}

func (f *fakeLLM) Name() string { return "fake" }

func (f *fakeLLM) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	return func(yield func(llm.Chunk, error) bool) {
		for _, w := range strings.SplitAfter(f.answer(req), " ") {
			if err := ctx.Err(); err != nil {
				yield(llm.Chunk{}, err)
				return
			}
			if !yield(llm.Chunk{Text: w, Provider: "fake", Model: "fake-1"}, nil) {
				return
			}
		}
		yield(llm.Chunk{Provider: "fake", Model: "fake-1", Usage: &llm.Usage{InputTokens: 100, OutputTokens: 20}}, nil)
	}
}

func (f *fakeLLM) requests() []llm.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]llm.Request(nil), f.reqs...)
}

// always answers every request with text.
func always(text string) func(llm.Request) string { return func(llm.Request) string { return text } }

// step is one user message and what its reply must show.
type step struct {
	say string
	// fresh sends the message in a new session: another conversation.
	fresh       bool
	contains    []string // case-insensitive
	excludes    []string // case-insensitive
	intent      string
	frustration string
	// rules: FAM answered by its own rules, without any model.
	rules bool
	// differsFrom lists earlier steps whose reply this one must not repeat.
	differsFrom []int
}

type scenario struct {
	name  string
	cfg   fam.Config
	model func(llm.Request) string // nil: the offline engine
	// provider, when set, replaces both (a chain, say).
	provider func() llm.Provider
	steps    []step
	// after checks what the model was sent.
	after func(t *testing.T, model *fakeLLM, replies []chatReply)
}

const (
	offerPerson  = "talk to a person"
	offerRestart = "start over"
)

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			var model *fakeLLM
			var provider llm.Provider
			switch {
			case sc.provider != nil:
				provider = sc.provider()
			case sc.model != nil:
				model = &fakeLLM{answer: sc.model}
				provider = model
			}
			g := startGateway(t, provider, sc.cfg)
			var replies []chatReply
			sid := ""
			for i, st := range sc.steps {
				if st.fresh {
					sid = ""
				}
				r := g.chat(t, sid, st.say)
				replies = append(replies, r)
				if sid != "" && r.SessionID != sid {
					t.Fatalf("step %d left session %s for %s", i, sid, r.SessionID)
				}
				sid = r.SessionID
				where := fmt.Sprintf("step %d %q -> %q", i, st.say, r.Content)
				t.Log(where)
				lower := strings.ToLower(r.Content)
				for _, want := range st.contains {
					if !strings.Contains(lower, strings.ToLower(want)) {
						t.Errorf("%s: want it to contain %q", where, want)
					}
				}
				for _, unwanted := range st.excludes {
					if strings.Contains(lower, strings.ToLower(unwanted)) {
						t.Errorf("%s: want it not to contain %q", where, unwanted)
					}
				}
				if st.intent != "" && r.Intent != st.intent {
					t.Errorf("%s: intent %q, want %q", where, r.Intent, st.intent)
				}
				if st.frustration != "" && r.Sentiment.Frustration != st.frustration {
					t.Errorf("%s: frustration %q (score %d), want %q", where, r.Sentiment.Frustration, r.Sentiment.FrustrationScore, st.frustration)
				}
				if r.Sentiment.Frustration == "" || r.Sentiment.Label == "" || r.Intent == "" {
					t.Errorf("%s: intent and sentiment must always be filled: %+v", where, r)
				}
				if st.rules && (r.Metadata.Provider != fam.ID || r.Metadata.Model != fam.RulesModel) {
					t.Errorf("%s: answered by %s/%s, want FAM's rules", where, r.Metadata.Provider, r.Metadata.Model)
				}
				for _, j := range st.differsFrom {
					if strings.TrimSpace(replies[j].Content) == strings.TrimSpace(r.Content) {
						t.Errorf("%s: same reply as step %d", where, j)
					}
				}
			}
			if sc.after != nil {
				sc.after(t, model, replies)
			}
		})
	}
}

func scenarios() []scenario {
	const tiers = "what are the voice tiers?"
	return []scenario{
		// Memory, offline: facts stated in a session are recalled later in it, and only in it.
		{name: "memory/name recalled in the session", steps: []step{
			{say: "Hi, my name is John.", contains: []string{"Nice to meet you, John"}, rules: true},
			{say: tiers, contains: []string{"tiers"}},
			{say: "What's my name?", contains: []string{"John"}, rules: true},
		}},
		{name: "memory/where the user lives", steps: []step{
			{say: "I live in New York", contains: []string{"you live in New York"}},
			{say: "where do I live?", contains: []string{"New York"}, rules: true},
		}},
		{name: "memory/where the user works", steps: []step{
			{say: "I work at Acme", contains: []string{"Acme"}},
			{say: "Where do I work?", contains: []string{"you work at Acme"}},
		}},
		{name: "memory/favourite colour", steps: []step{
			{say: "My favourite colour is blue.", contains: []string{"favourite colour is blue"}},
			{say: "what's my favorite color?", contains: []string{"blue"}},
		}},
		{name: "memory/allergies", steps: []step{
			{say: "I'm allergic to peanuts", contains: []string{"allergic to peanuts"}, excludes: []string{"medical advice"}},
			{say: "what am I allergic to?", contains: []string{"peanuts"}},
			{say: "am I allergic to peanuts?", contains: []string{"yes", "peanuts"}},
		}},
		{name: "memory/later statements correct earlier ones", steps: []step{
			{say: "my name is John"},
			{say: "actually, my name is Jim"},
			{say: "what's my name?", contains: []string{"Jim"}, excludes: []string{"John"}},
		}},
		{name: "memory/everything the user said", steps: []step{
			{say: "Hi, I'm Ana. I live in Lisbon and I work at Acme."},
			{say: "what do you know about me?", contains: []string{"your name is Ana", "you live in Lisbon", "you work at Acme"}},
		}},
		{name: "memory/not across sessions", steps: []step{
			{say: "my name is John and I live in Paris"},
			{say: "what's my name?", contains: []string{"John"}},
			{say: "what's my name?", fresh: true, contains: []string{"haven't told me your name"}, excludes: []string{"John"}},
			{say: "where do I live?", contains: []string{"haven't told me where you live"}, excludes: []string{"Paris"}},
		}},
		{name: "memory/forgotten after starting over", steps: []step{
			{say: "my name is John"},
			{say: "let's start over", contains: []string{"start fresh"}, rules: true},
			{say: "what's my name?", contains: []string{"haven't told me your name"}, excludes: []string{"John"}},
		}},

		// Every intent, through the gateway.
		{name: "intent/greeting", steps: []step{{say: "Hello!", intent: "greeting", contains: []string{"Hello!"}}}},
		{name: "intent/farewell", steps: []step{{say: "bye", intent: "farewell", contains: []string{"Goodbye"}}}},
		{name: "intent/gratitude", steps: []step{{say: "thanks!", intent: "gratitude", contains: []string{"welcome"}}}},
		{name: "intent/complaint", steps: []step{{say: "the package arrived damaged", intent: "complaint", contains: []string{"sorry to hear that"}}}},
		{name: "intent/feedback", steps: []step{{say: "I have a suggestion: you should add a dark mode", intent: "feedback", contains: []string{"Thank you for the feedback"}, rules: true}}},
		{name: "intent/calculation", steps: []step{{say: "what is 6 * 7?", intent: "calculation", contains: []string{"42"}}}},
		{name: "intent/follow-up", steps: []step{
			{say: tiers, intent: "information"},
			{say: "and what about rate limits?", intent: "followup", contains: []string{"per hour"}},
		}},
		{name: "intent/how-to", steps: []step{{say: "How do I configure an OpenAI key?", intent: "howto", contains: []string{"OPENAI_API_KEY"}}}},
		{name: "intent/troubleshooting", steps: []step{{say: "I get an error when I start the gateway", intent: "troubleshooting"}}},
		{name: "intent/frustration", steps: []step{{say: "this is useless, how do I set up voice?", intent: "frustration", frustration: "moderate"}}},
		{name: "intent/information", steps: []step{{say: tiers, intent: "information", contains: []string{"native tier"}}}},
		{name: "intent/unknown", steps: []step{{say: "zxcvbnm", intent: "unknown", contains: []string{"didn't catch that"}}}},
		{name: "intent/time", steps: []step{{say: "what time is it?", intent: "time", contains: []string{"It's"}}}},

		// Repetition: the same question again gets another answer, never the same text.
		{name: "repeat/asked again gets a different answer", steps: []step{
			{say: tiers, contains: []string{"native tier"}},
			{say: "what are the voice tiers again?", intent: "repeat", contains: []string{"another way", "tiers"}, differsFrom: []int{0}, rules: true},
			{say: "What are the voice tiers?", intent: "repeat", contains: []string{"different angle"}, differsFrom: []int{0, 1}, rules: true},
		}},
		{name: "repeat/a calculation asked again", steps: []step{
			{say: "what is 12 * 7?", contains: []string{"84"}},
			{say: "what is 12 * 7?", intent: "repeat", contains: []string{"84"}, differsFrom: []int{0}},
		}},
		{name: "repeat/greetings are not repeats", steps: []step{
			{say: "hello there", intent: "greeting"},
			{say: "hello there", intent: "greeting", contains: []string{"Hello again"}},
		}},

		// Frustration levels, and the offer of a person or a restart from high up.
		{name: "frustration/none", steps: []step{{say: tiers, frustration: "none", excludes: []string{offerPerson, "sorry"}}}},
		{name: "frustration/mild", steps: []step{{say: "ugh, what are the voice tiers?", frustration: "mild", contains: []string{"native tier"}, excludes: []string{offerPerson}}}},
		{name: "frustration/moderate gets empathy, no offer", steps: []step{
			{say: "this is useless, how do I set up voice?", frustration: "moderate", contains: []string{"sorry this has been frustrating"}, excludes: []string{offerPerson}},
		}},
		{name: "frustration/high offers a person or a restart", steps: []step{
			{say: "I'm so frustrated, nothing works", frustration: "high", intent: "frustration", contains: []string{offerPerson, offerRestart}, rules: true},
		}},
		{name: "frustration/critical with profanity", steps: []step{
			{say: "this fucking thing is useless", frustration: "critical", contains: []string{"really sorry", offerPerson, offerRestart}, rules: true},
			{say: "f*cking hell", fresh: true, frustration: "critical", contains: []string{offerPerson}},
			{say: "what the fuck is this", fresh: true, frustration: "critical", contains: []string{offerPerson}},
			{say: "the app is fucked", fresh: true, frustration: "critical", contains: []string{offerPerson}},
			{say: "fucks sake", fresh: true, frustration: "critical", contains: []string{offerPerson}},
		}},
		{name: "frustration/the person offer accepted", steps: []step{
			{say: "ugh, I give up", frustration: "high", contains: []string{offerPerson}},
			{say: "yes please", contains: []string{"can't transfer this chat", "help or contact options"}, rules: true},
		}},
		{name: "frustration/asking for a human directly", steps: []step{
			{say: "I want to talk to a human", contains: []string{"can't transfer this chat"}, rules: true},
		}},
		{name: "frustration/the restart offer accepted", steps: []step{
			{say: "my name is Sam"},
			{say: "I'm so frustrated, this is not working", contains: []string{offerRestart}},
			{say: "start over", contains: []string{"start fresh"}, rules: true},
			{say: "what's my name?", contains: []string{"haven't told me your name"}, excludes: []string{"Sam"}},
		}},

		// Constraints: the request gets the redirect, from rules, with or without a model.
		{name: "constraint/refund", steps: []step{{say: "I want a refund", contains: []string{"can't arrange or promise refunds"}, rules: true}}},
		{name: "constraint/refund asked again is reworded", steps: []step{
			{say: "I want a refund", contains: []string{"refunds"}},
			{say: "I want a refund", contains: []string{"refunds"}, differsFrom: []int{0}},
		}},
		{name: "constraint/price", steps: []step{{say: "how much does the premium plan cost?", contains: []string{"can't quote prices"}, rules: true}}},
		{name: "constraint/discount", steps: []step{{say: "do you have any discount codes?", contains: []string{"discounts"}, rules: true}}},
		{name: "constraint/delivery", steps: []step{{say: "when will my order arrive?", contains: []string{"can't promise delivery dates"}, rules: true}}},
		{name: "constraint/legal", steps: []step{{say: "can I sue my landlord?", contains: []string{"can't give legal advice", "lawyer"}, rules: true}}},
		{name: "constraint/medical", steps: []step{{say: "what medication should I take for a headache?", contains: []string{"can't give medical advice", "doctor"}, rules: true}}},
		{name: "constraint/frustrated and asking for a refund", steps: []step{
			{say: "ugh, I give up, just give me a refund", contains: []string{"refunds", offerPerson}},
		}},
		{name: "constraint/allowed by the agent's config", cfg: fam.Config{Constraints: guard.Config{Allow: []guard.Kind{guard.Prices}}}, steps: []step{
			{say: "how much does the premium plan cost?", excludes: []string{"can't quote prices"}},
			{say: "I want a refund", contains: []string{"refunds"}},
		}},
		{name: "constraint/with a model, the model is not asked", model: always("Of course, here is your refund."), steps: []step{
			{say: "I want my money back", contains: []string{"refunds"}, excludes: []string{"here is your refund"}, rules: true},
		}, after: func(t *testing.T, model *fakeLLM, _ []chatReply) {
			if n := len(model.requests()); n != 0 {
				t.Errorf("the model was asked %d times, want 0", n)
			}
		}},

		// With a model: the enriched prompt, and the validator on what comes back.
		{name: "model/the prompt carries the user's facts", model: always("Nice to meet you."), steps: []step{
			{say: "Hi, my name is John and I live in Paris."},
			{say: "What's my name?"},
			{say: "What's my name?", fresh: true},
		}, after: func(t *testing.T, model *fakeLLM, _ []chatReply) {
			reqs := model.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			recall := reqs[1]
			for _, want := range []string{"Name: John", "Lives in: Paris"} {
				if !strings.Contains(recall.System, want) {
					t.Errorf("system prompt lacks %q:\n%s", want, recall.System)
				}
			}
			ctxAt := strings.Index(recall.System, "\n\n## Conversation Context")
			if !strings.HasPrefix(recall.System, fam.SystemPrompt) || recall.CachePrefix != ctxAt || strings.Contains(recall.System[:recall.CachePrefix], "John") {
				t.Errorf("the cached prefix (%d bytes, context at %d) must be the stable rules only", recall.CachePrefix, ctxAt)
			}
			if reqs[0].System[:reqs[0].CachePrefix] != recall.System[:recall.CachePrefix] {
				t.Error("the cached prefix changed between turns")
			}
			if strings.Contains(reqs[2].System, "John") || strings.Contains(reqs[2].System, "Paris") {
				t.Errorf("another session's prompt carries John's facts:\n%s", reqs[2].System)
			}
		}},
		{name: "model/a quoted price is redirected", model: always("Sure! The premium plan costs $49 a month, and it includes every voice."), steps: []step{
			{say: "tell me about the premium plan", contains: []string{"can't quote prices"}, excludes: []string{"$49", "every voice"}},
		}},
		{name: "model/a delivery promise is redirected", model: always("Good news. Your order will arrive by Friday. Anything else?"), steps: []step{
			{say: "any news on my stuff?", contains: []string{"Good news.", "can't promise delivery dates"}, excludes: []string{"Friday"}},
		}},
		{name: "model/legal advice is redirected", model: always("You should sue them for the damage."), steps: []step{
			{say: "my neighbour's tree fell on my car, what now?", contains: []string{"can't give legal advice"}, excludes: []string{"sue them"}},
		}},
		{name: "model/a dose is redirected", model: always("Try ibuprofen. Take 400 mg every six hours."), steps: []step{
			{say: "I have a headache, any tips?", contains: []string{"can't give medical advice"}, excludes: []string{"400"}},
		}},
		{name: "model/a promise on the company's behalf is redirected", model: always("I guarantee it will work perfectly on your site."), steps: []step{
			{say: "will the widget work on my site?", contains: []string{"can't make promises"}, excludes: []string{"guarantee it"}},
		}},
		{name: "model/an invented figure gets a caveat", model: always("Dartmouth supports 42 languages."), steps: []step{
			{say: "how many languages does Dartmouth support?", contains: []string{"42 languages", "double-check the figure 42"}},
		}},
		{name: "model/a figure from the conversation is fine", model: always("With 42 users the free plan works well."), steps: []step{
			{say: "I have 42 users, is the free plan enough?", contains: []string{"42 users"}, excludes: []string{"double-check"}},
		}},
		{name: "model/a long reply is cut at a sentence", cfg: fam.Config{Validation: guard.ValidatorConfig{MaxChars: 100}},
			model: always(strings.Repeat("This sentence keeps the reply going for a while. ", 10)), steps: []step{
				{say: "tell me a story"},
			}, after: func(t *testing.T, _ *fakeLLM, replies []chatReply) {
				if got := replies[0].Content; len(got) > 160 || !strings.HasSuffix(got, ". ") {
					t.Errorf("reply of %d characters, want it cut after the sentence that passes 100: %q", len(got), got)
				}
			}},
		{name: "model/a repeat is flagged to the model", model: func(req llm.Request) string {
			return fmt.Sprintf("Answer number %d.", len(req.Messages)/2+1)
		}, steps: []step{
			{say: tiers},
			{say: "what are the voice tiers again?", intent: "repeat"},
		}, after: func(t *testing.T, model *fakeLLM, _ []chatReply) {
			sys := model.requests()[1].System
			for _, want := range []string{"asking again", `"Answer number 1."`, "Do not repeat your earlier answer"} {
				if !strings.Contains(sys, want) {
					t.Errorf("system prompt lacks %q:\n%s", want, sys)
				}
			}
		}},
		{name: "model/high frustration always gets the offer", model: always("Let me look into that for you."), steps: []step{
			{say: "I'm so frustrated, nothing works", frustration: "high", contains: []string{"look into that", offerPerson, offerRestart}},
		}, after: func(t *testing.T, model *fakeLLM, _ []chatReply) {
			if sys := model.requests()[0].System; !strings.Contains(sys, "frustration is high") {
				t.Errorf("system prompt lacks the frustration level:\n%s", sys)
			}
		}},
		{name: "model/plain answers pass through", model: always("The native tier is free."), steps: []step{
			{say: tiers, contains: []string{"The native tier is free."}, excludes: []string{"double-check"}},
		}},
		{name: "model/classifier settles an unsure intent", cfg: fam.Config{Classifier: fam.LLMClassifier{}}, model: func(req llm.Request) string {
			if strings.HasPrefix(req.System, "Classify") {
				return "feedback"
			}
			return "Thanks for telling me."
		}, steps: []step{
			{say: "the new voices sound great", intent: "feedback"},
			{say: "How do I configure an OpenAI key?", intent: "howto"},
		}, after: func(t *testing.T, model *fakeLLM, replies []chatReply) {
			if n := len(model.requests()); n != 3 {
				t.Errorf("%d requests, want 3: one classification (for the unsure turn only) and two replies", n)
			}
			if got := replies[0].Metadata.Tokens["input"]; got != 200 {
				t.Errorf("input tokens %d, want 200: the classification is billed with its turn", got)
			}
		}},
		{name: "model/offline fallback in a chain still remembers", provider: func() llm.Provider {
			down := &failing{}
			return llm.NewChain(llm.ChainConfig{Logger: slog.New(slog.DiscardHandler)}, down, offline.New(offline.Config{}))
		}, steps: []step{
			{say: "my name is John"},
			{say: "what's my name?", contains: []string{"John"}, rules: true},
			{say: "what is 6 * 7?", contains: []string{"42"}},
		}},
	}
}

// failing is a provider that is always down, with an error not worth retrying.
type failing struct{}

func (failing) Name() string { return "down" }

func (failing) Stream(context.Context, llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		yield(llm.Chunk{}, &llm.Error{Provider: "down", StatusCode: http.StatusBadRequest, Message: "no"})
	}
}

// Over SSE, a quoted price never reaches the client, not even in part, while clean text still
// streams a piece at a time.
func TestScenarioStreamNeverShowsABreach(t *testing.T) {
	model := &fakeLLM{answer: func(req llm.Request) string {
		return "Happy to help with that. The premium plan costs $49 a month. It also has every voice."
	}}
	g := startGateway(t, model, fam.Config{})
	resp, err := http.Post(g.url+"/api/v2/chat/stream", "application/json", strings.NewReader(`{"agentId":"fam","message":"tell me about the premium plan"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var deltas []string
	done := ""
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var data map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &data); err != nil {
				t.Fatal(err)
			}
			switch event {
			case "delta":
				deltas = append(deltas, data["text"].(string))
			case "done":
				done = data["content"].(string)
			case "error":
				t.Fatalf("error event %v", data)
			}
		}
	}
	if len(deltas) < 4 {
		t.Errorf("deltas %q: clean text should stream a word at a time", deltas)
	}
	for _, d := range deltas {
		if strings.Contains(d, "$") || strings.Contains(d, "49") || strings.Contains(d, "every voice") {
			t.Errorf("delta %q leaks the quoted price", d)
		}
	}
	if !strings.HasPrefix(done, "Happy to help with that. The premium plan — actually, I can't quote prices") || strings.Join(deltas, "") != done {
		t.Errorf("done content %q, deltas %q", done, deltas)
	}
}
