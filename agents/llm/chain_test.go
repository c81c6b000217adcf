package llm

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// step is one move of a fakeProvider; it returns false to end the stream.
type step func(ctx context.Context, yield func(Chunk, error) bool) bool

const fakeModel = "fake-1"

func say(text string) step {
	return func(_ context.Context, yield func(Chunk, error) bool) bool {
		return yield(Chunk{Text: text, Model: fakeModel}, nil)
	}
}

func finish(u Usage) step {
	return func(_ context.Context, yield func(Chunk, error) bool) bool {
		yield(Chunk{Usage: &u, Model: fakeModel}, nil)
		return false
	}
}

func fail(err error) step {
	return func(_ context.Context, yield func(Chunk, error) bool) bool {
		yield(Chunk{}, err)
		return false
	}
}

// awaitCancel stays silent until ctx ends, then fails with its error, as a well-behaved
// provider waiting on a hung upstream does.
func awaitCancel() step {
	return func(ctx context.Context, yield func(Chunk, error) bool) bool {
		<-ctx.Done()
		yield(Chunk{}, ctx.Err())
		return false
	}
}

// ignoreCancel waits for ctx to end and goes on anyway: the next chunk was already in flight.
func ignoreCancel() step {
	return func(ctx context.Context, _ func(Chunk, error) bool) bool {
		<-ctx.Done()
		return true
	}
}

// pause waits d unless ctx ends first, which fails the stream.
func pause(d time.Duration) step {
	return func(ctx context.Context, yield func(Chunk, error) bool) bool {
		select {
		case <-ctx.Done():
			yield(Chunk{}, ctx.Err())
			return false
		case <-time.After(d):
			return true
		}
	}
}

func do(f func()) step {
	return func(context.Context, func(Chunk, error) bool) bool { f(); return true }
}

// fakeProvider plays its steps and records how it was used. The chain calls it on the
// caller's goroutine, so the records need no locking.
type fakeProvider struct {
	name    string
	steps   []step
	calls   int
	ctx     context.Context // of the last call
	refused bool            // the consumer asked it to stop
}

func fake(name string, steps ...step) *fakeProvider { return &fakeProvider{name: name, steps: steps} }

func (f *fakeProvider) Name() string { return f.name }

func (f *fakeProvider) Stream(ctx context.Context, _ Request) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		f.calls++
		f.ctx = ctx
		record := func(c Chunk, err error) bool {
			ok := yield(c, err)
			f.refused = f.refused || !ok
			return ok
		}
		for _, s := range f.steps {
			if !s(ctx, record) {
				return
			}
		}
	}
}

var (
	errBoom     = errors.New("boom")
	answer      = []step{say("Hi"), say(" there"), finish(Usage{InputTokens: 3, OutputTokens: 2})}
	answerReply = wantReply{Texts: []string{"Hi", " there"}, Usage: Usage{InputTokens: 3, OutputTokens: 2}, Model: fakeModel}
)

// capturingChain is a chain whose log is returned for inspection.
func capturingChain(timeout time.Duration, providers ...Provider) (*Chain, *bytes.Buffer) {
	var log bytes.Buffer
	// No retries here: these tests are about falling back; chain_retry_test.go covers retries.
	return NewChain(ChainConfig{FirstTokenTimeout: timeout, Retries: -1, Logger: slog.New(slog.NewTextHandler(&log, nil))}, providers...), &log
}

func checkCalls(t *testing.T, want map[*fakeProvider]int) {
	t.Helper()
	for p, n := range want {
		if p.calls != n {
			t.Errorf("%s called %d times, want %d", p.name, p.calls, n)
		}
	}
}

func TestChainWithoutProviders(t *testing.T) {
	chunks, err := collect(t, NewChain(ChainConfig{}).Stream(context.Background(), userTurn))
	if len(chunks) != 0 || !errors.Is(err, ErrNoProviders) {
		t.Fatalf("got %+v, %v; want ErrNoProviders alone", chunks, err)
	}
}

func TestNewChainDefaults(t *testing.T) {
	a, b := fake("a"), fake("b")
	c := NewChain(ChainConfig{}, a, b)
	if c.cfg.FirstTokenTimeout != 15*time.Second || c.cfg.Logger != slog.Default() {
		t.Errorf("defaults %+v, want 15s and slog.Default()", c.cfg)
	}
	got := c.Providers()
	if !slices.Equal(got, []Provider{a, b}) {
		t.Errorf("Providers() = %v", got)
	}
	got[0] = b
	if c.Providers()[0] != a {
		t.Error("Providers() exposes the chain's own slice")
	}
}

func TestChainFirstProviderAnswers(t *testing.T) {
	primary, secondary := fake("primary", answer...), fake("secondary", answer...)
	chain, log := capturingChain(time.Minute, primary, secondary)
	chunks, err := collect(t, chain.Stream(context.Background(), userTurn))
	want := answerReply
	want.Provider = "primary"
	checkReply(t, chunks, err, want)
	checkCalls(t, map[*fakeProvider]int{primary: 1, secondary: 0})
	if log.Len() != 0 {
		t.Errorf("logged without a fallback: %s", log)
	}
}

func TestChainFallsBackBeforeTheFirstToken(t *testing.T) {
	const timeout = 50 * time.Millisecond
	for _, tc := range []struct {
		name    string
		primary []step
		logged  string
	}{
		{"error", []step{fail(errBoom)}, "boom"},
		{"empty reply", nil, "primary: empty reply"},
		{"silent past the first-token timeout", []step{awaitCancel()}, "primary: no first token within 50ms"},
		{"first chunk arrives as the timeout fires", []step{ignoreCancel(), say("late"), finish(Usage{})}, "primary: no first token within 50ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary, secondary := fake("primary", tc.primary...), fake("secondary", answer...)
			chain, log := capturingChain(timeout, primary, secondary)
			chunks, err := collect(t, chain.Stream(context.Background(), userTurn))
			want := answerReply
			want.Provider = "secondary"
			checkReply(t, chunks, err, want)
			checkCalls(t, map[*fakeProvider]int{primary: 1, secondary: 1})
			if primary.ctx.Err() == nil {
				t.Error("the abandoned provider's context is still live")
			}
			if !strings.Contains(log.String(), "provider=primary") || !strings.Contains(log.String(), tc.logged) {
				t.Errorf("log %q does not name primary and %q", log, tc.logged)
			}
		})
	}
}

func TestChainDoesNotFallBackOnceStreaming(t *testing.T) {
	const timeout = 20 * time.Millisecond
	t.Run("provider fails mid-reply", func(t *testing.T) {
		primary, secondary := fake("primary", say("Hel"), fail(errBoom)), fake("secondary", answer...)
		chunks, err := collect(t, quietChain(ChainConfig{FirstTokenTimeout: timeout}, primary, secondary).Stream(context.Background(), userTurn))
		if len(chunks) != 1 || chunks[0].Text != "Hel" || chunks[0].Provider != "primary" {
			t.Errorf("chunks %+v, want primary's Hel", chunks)
		}
		if !errors.Is(err, errBoom) || errors.Is(err, ErrAllProvidersFailed) {
			t.Errorf("error %v, want primary's own", err)
		}
		checkCalls(t, map[*fakeProvider]int{primary: 1, secondary: 0})
	})
	// Only the first token is timed: a provider that has started may then take its time.
	t.Run("provider slow after its first token", func(t *testing.T) {
		primary := fake("primary", say("Hi"), pause(5*timeout), say(" there"), finish(Usage{InputTokens: 3, OutputTokens: 2}))
		secondary := fake("secondary", answer...)
		chunks, err := collect(t, quietChain(ChainConfig{FirstTokenTimeout: timeout}, primary, secondary).Stream(context.Background(), userTurn))
		want := answerReply
		want.Provider = "primary"
		checkReply(t, chunks, err, want)
		checkCalls(t, map[*fakeProvider]int{primary: 1, secondary: 0})
	})
}

func TestChainCallerStopsEarly(t *testing.T) {
	primary, secondary := fake("primary", answer...), fake("secondary", answer...)
	var got []Chunk
	for c, err := range quietChain(ChainConfig{}, primary, secondary).Stream(context.Background(), userTurn) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
		break
	}
	if len(got) != 1 || got[0].Text != "Hi" {
		t.Errorf("got %+v", got)
	}
	if !primary.refused || primary.ctx.Err() == nil {
		t.Errorf("primary not stopped: told to stop %v, context error %v", primary.refused, primary.ctx.Err())
	}
	checkCalls(t, map[*fakeProvider]int{primary: 1, secondary: 0})
}

// When the caller's context ends, the chain reports that and does not try anyone else.
func TestChainParentContextEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func() (context.Context, context.CancelFunc)
		primary func(cancel context.CancelFunc) []step
		wantErr error
	}{
		{
			name:    "cancelled while the provider waits",
			setup:   func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			primary: func(cancel context.CancelFunc) []step { return []step{do(cancel), awaitCancel()} },
			wantErr: context.Canceled,
		},
		{
			name:    "cancelled as the provider fails",
			setup:   func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			primary: func(cancel context.CancelFunc) []step { return []step{do(cancel), fail(errBoom)} },
			wantErr: context.Canceled,
		},
		{
			name: "cancelled before the call",
			setup: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			primary: func(context.CancelFunc) []step { return []step{awaitCancel()} },
			wantErr: context.Canceled,
		},
		{
			name: "deadline passed",
			setup: func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			},
			primary: func(context.CancelFunc) []step { return []step{awaitCancel()} },
			wantErr: context.DeadlineExceeded,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.setup()
			defer cancel()
			primary, secondary := fake("primary", tc.primary(cancel)...), fake("secondary", answer...)
			chunks, err := collect(t, quietChain(ChainConfig{FirstTokenTimeout: time.Minute}, primary, secondary).Stream(ctx, userTurn))
			if len(chunks) != 0 || !errors.Is(err, tc.wantErr) || errors.Is(err, ErrAllProvidersFailed) {
				t.Errorf("got %+v, %v; want %v alone", chunks, err, tc.wantErr)
			}
			checkCalls(t, map[*fakeProvider]int{primary: 1, secondary: 0})
		})
	}
}

func TestChainAllProvidersFail(t *testing.T) {
	first, second, third := fake("first", fail(errBoom)), fake("second"), fake("third", awaitCancel())
	chain := quietChain(ChainConfig{FirstTokenTimeout: 50 * time.Millisecond}, first, second, third)
	chunks, err := collect(t, chain.Stream(context.Background(), userTurn))
	if len(chunks) != 0 || !errors.Is(err, ErrAllProvidersFailed) {
		t.Fatalf("got %+v, %v; want ErrAllProvidersFailed alone", chunks, err)
	}
	if !errors.Is(err, errBoom) || !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap every provider's failure", err)
	}
	msg := err.Error()
	if i, j, k := strings.Index(msg, "boom"), strings.Index(msg, "second: empty reply"), strings.Index(msg, "third: no first token"); i < 0 || j < i || k < j {
		t.Errorf("%q does not list the failures in order", msg)
	}
	checkCalls(t, map[*fakeProvider]int{first: 1, second: 1, third: 1})
}

// providerErrors lists the *Error values in err's tree, depth first.
func providerErrors(err error) []*Error {
	if pe, ok := err.(*Error); ok {
		return []*Error{pe}
	}
	var out []*Error
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, providerErrors(e)...)
		}
	case interface{ Unwrap() error }:
		out = providerErrors(u.Unwrap())
	}
	return out
}

// The chain over real providers and local APIs: a failed or silent OpenAI falls back to Anthropic.
func TestChainFallsBackAcrossProviders(t *testing.T) {
	oaServerError := `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`
	for _, tc := range []struct {
		name    string
		primary func() (http.HandlerFunc, <-chan struct{})
	}{
		{"primary answers 500", func() (http.HandlerFunc, <-chan struct{}) { return replyJSON(500, oaServerError), nil }},
		{"primary silent before its headers", func() (http.HandlerFunc, <-chan struct{}) { return holdOpen() }},
		{"primary silent after opening its stream", func() (http.HandlerFunc, <-chan struct{}) { return holdOpen(oaRole) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handler, gone := tc.primary()
			primaryAPI := startAPI(t, handler)
			secondaryAPI := startAPI(t, streamSSE(anStart(12, 0, 0), anBlockStart, anPing,
				anText("Hi "), anText("from "), anText("Claude."), anBlockStop, anMessageDelta(4), anStop))
			oaCfg, anCfg := openAIFor(primaryAPI), anthropicFor(secondaryAPI)
			oaCfg.Name, anCfg.Name = "primary", "secondary"
			chain, log := capturingChain(200*time.Millisecond, NewOpenAI(oaCfg), NewAnthropic(anCfg))

			chunks, err := collect(t, chain.Stream(context.Background(), userTurn))

			checkReply(t, chunks, err, wantReply{
				Texts:    []string{"Hi ", "from ", "Claude."},
				Usage:    Usage{InputTokens: 12, OutputTokens: 4},
				Model:    anModel,
				Provider: "secondary",
			})
			checkOpenAIRequest(t, primaryAPI.onlyRequest(t))
			checkAnthropicRequest(t, secondaryAPI.onlyRequest(t))
			if gone != nil {
				waitFor(t, gone, "the silent primary's request to be cancelled")
			}
			if !strings.Contains(log.String(), "provider=primary") {
				t.Errorf("fallback not logged: %s", log)
			}
		})
	}
}

func TestChainAllProvidersFailAcrossProviders(t *testing.T) {
	oaAPI := startAPI(t, replyJSON(503, `{"error":{"message":"Service unavailable","type":"server_error","param":null,"code":null}}`))
	anAPI := startAPI(t, replyJSON(401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`))
	chain := quietChain(ChainConfig{}, NewOpenAI(openAIFor(oaAPI)), NewAnthropic(anthropicFor(anAPI)))

	chunks, err := collect(t, chain.Stream(context.Background(), userTurn))

	if len(chunks) != 0 || !errors.Is(err, ErrAllProvidersFailed) {
		t.Fatalf("got %+v, %v; want ErrAllProvidersFailed alone", chunks, err)
	}
	var got []string
	for _, pe := range providerErrors(err) {
		got = append(got, pe.Error())
	}
	want := []string{"openai: HTTP 503: Service unavailable", "anthropic: HTTP 401: authentication_error: invalid x-api-key"}
	if !slices.Equal(got, want) {
		t.Errorf("provider errors %q, want %q", got, want)
	}
}
