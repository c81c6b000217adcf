package agents_test

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProvider is an llm.Provider with a scripted reply. It records every call, with the
// context it was given.
type fakeProvider struct {
	// reply says what a request streams: the chunks, then err if it is not nil.
	reply func(req llm.Request) (chunks []llm.Chunk, err error)

	mu    sync.Mutex
	calls []providerCall
}

type providerCall struct {
	ctx context.Context
	req llm.Request
}

var _ llm.Provider = (*fakeProvider)(nil)

func (p *fakeProvider) Name() string { return "fake" }

func (p *fakeProvider) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	p.mu.Lock()
	p.calls = append(p.calls, providerCall{ctx: ctx, req: req})
	p.mu.Unlock()
	return func(yield func(llm.Chunk, error) bool) {
		chunks, err := p.reply(req)
		for _, c := range chunks {
			if ctxErr := ctx.Err(); ctxErr != nil {
				yield(llm.Chunk{}, ctxErr)
				return
			}
			if !yield(c, nil) {
				return
			}
		}
		if err != nil {
			yield(llm.Chunk{}, err)
		}
	}
}

// Calls returns the calls so far.
func (p *fakeProvider) Calls() []providerCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]providerCall(nil), p.calls...)
}

// lastRequest is the request of the latest call.
func (p *fakeProvider) lastRequest(t *testing.T) llm.Request {
	t.Helper()
	calls := p.Calls()
	if len(calls) == 0 {
		t.Fatal("the provider was never called")
	}
	return calls[len(calls)-1].req
}

// scripted always streams chunks, then err if it is not nil.
func scripted(err error, chunks ...llm.Chunk) *fakeProvider {
	return &fakeProvider{reply: func(llm.Request) ([]llm.Chunk, error) { return chunks, err }}
}

// texts is one text chunk per part.
func texts(parts ...string) []llm.Chunk {
	out := make([]llm.Chunk, len(parts))
	for i, p := range parts {
		out[i] = llm.Chunk{Text: p}
	}
	return out
}

// echoReply is what the echo provider answers to a message.
func echoReply(msg string) string { return "re: " + msg }

// echo answers every request with echoReply of its last message, in two chunks, then usage.
func echo() *fakeProvider {
	return &fakeProvider{reply: func(req llm.Request) ([]llm.Chunk, error) {
		last := req.Messages[len(req.Messages)-1].Content
		return append(texts("re: ", last), llm.Chunk{Usage: &llm.Usage{InputTokens: 10, OutputTokens: 5}}), nil
	}}
}

// stubAgent is a minimal agent: it sends the message and history to the LLM as they are, or
// fails with err.
type stubAgent struct {
	id  string
	err error
}

func (a *stubAgent) Info() agents.Info { return agents.Info{ID: a.id, Name: a.id} }

func (a *stubAgent) Respond(ctx context.Context, in agents.Input) (agents.Reply, error) {
	if a.err != nil {
		return agents.Reply{}, a.err
	}
	msgs := append(append([]llm.Message(nil), in.History...), llm.Message{Role: "user", Content: in.Message})
	return agents.Reply{Intent: nlu.Intent{Name: nlu.IntentUnknown}, Stream: in.LLM.Stream(ctx, llm.Request{Messages: msgs})}, nil
}

// stepClock moves forward by step each time it is read.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// turnDuration is how long every turn takes by the harness's clock: the engine reads it once
// when a turn starts and once when its reply is done.
const turnDuration = 250 * time.Millisecond

var errAgentBroken = errors.New("agent broken")

// harness is an Engine over a real SQLite store, serving FAM, the "echo" stub and the
// "broken" stub (whose Respond fails with errAgentBroken).
type harness struct {
	store  *session.SQLStore
	engine *agents.Engine
}

func newHarness(t *testing.T, provider llm.Provider, configure ...func(*agents.EngineConfig)) *harness {
	t.Helper()
	store, err := session.OpenSQLite(t.Context(), session.SQLiteConfig{Path: t.TempDir() + "/x.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg, err := agents.NewRegistry(fam.New(fam.Config{}), &stubAgent{id: "echo"}, &stubAgent{id: "broken", err: errAgentBroken})
	if err != nil {
		t.Fatal(err)
	}
	cfg := agents.EngineConfig{
		Store: store, Registry: reg, LLM: provider,
		Clock:  &stepClock{now: time.Unix(1_700_000_000, 0), step: turnDuration},
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, c := range configure {
		c(&cfg)
	}
	engine, err := agents.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{store: store, engine: engine}
}

// start starts a turn, failing the test if it cannot.
func (h *harness) start(t *testing.T, req agents.Request) *agents.Turn {
	t.Helper()
	turn, err := h.engine.Start(t.Context(), req)
	if err != nil {
		t.Fatalf("Start(%+v): %v", req, err)
	}
	return turn
}

// turn runs a whole turn, failing the test if it does not succeed, and returns the result
// with the deltas it streamed.
func (h *harness) turn(t *testing.T, req agents.Request) (agents.Result, []string) {
	t.Helper()
	var deltas []string
	res, err := h.start(t, req).Run(t.Context(), func(text string) error {
		deltas = append(deltas, text)
		return nil
	})
	if err != nil {
		t.Fatalf("Run(%+v): %v", req, err)
	}
	return res, deltas
}

// messages is everything stored in a user's session.
func (h *harness) messages(t *testing.T, userID, sessionID string) []session.Message {
	t.Helper()
	msgs, err := h.store.ListMessages(t.Context(), userID, sessionID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// wantEvents checks how many events of each type a user has.
func (h *harness) wantEvents(t *testing.T, userID string, want map[string]int) {
	t.Helper()
	for typ, n := range want {
		got, err := h.store.CountEvents(t.Context(), userID, typ)
		if err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Errorf("%s has %d %q events, want %d", userID, got, typ, n)
		}
	}
}

// wantMessages checks the roles and contents of stored messages.
func wantMessages(t *testing.T, got []session.Message, want ...llm.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Role != want[i].Role || got[i].Content != want[i].Content {
			t.Errorf("message %d = %s %q, want %s %q", i, got[i].Role, got[i].Content, want[i].Role, want[i].Content)
		}
	}
}

// wantMetadata checks that stored metadata holds every key of want with its value; nested
// maps are compared key by key the same way, and keys want does not name are ignored.
func wantMetadata(t *testing.T, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if wm, nested := w.(map[string]any); nested {
			if gm, isMap := g.(map[string]any); isMap {
				wantMetadata(t, gm, wm)
				continue
			}
		}
		if !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("metadata[%q] = %#v, want %#v (in %v)", k, g, w, got)
		}
	}
}

// user and assistant build conversation messages.
func user(content string) llm.Message { return llm.Message{Role: session.RoleUser, Content: content} }

func assistant(content string) llm.Message {
	return llm.Message{Role: session.RoleAssistant, Content: content}
}
