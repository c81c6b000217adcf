package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testGateway is a real gateway on a loopback port over a real SQLite file.
type testGateway struct {
	URL   string
	Store *session.SQLStore
	Srv   *gateway.Server
	done  chan error
}

type option func(*gateway.Config)

func startGateway(t testing.TB, provider llm.Provider, opts ...option) *testGateway {
	t.Helper()
	ctx := context.Background()
	store, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: t.TempDir() + "/test.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if provider == nil {
		provider = offline.New(offline.Config{})
	}
	reg, err := agents.NewRegistry(fam.New(fam.Config{}), agents.Passthrough{}) // as cmd wires it
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: provider, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{Engine: engine, Logger: quiet, Checks: []gateway.HealthCheck{{Name: "sql", Check: store.Ping}}}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{URL: "http://" + ln.Addr().String(), Store: store, Srv: srv, done: make(chan error, 1)}
	go func() { g.done <- srv.Serve(ln) }()
	t.Cleanup(func() { g.shutdown(t) })
	return g
}

// shutdown stops the server and waits for Serve to return; safe to call twice.
func (g *testGateway) shutdown(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if g.done != nil {
		if err := <-g.done; err != nil {
			t.Errorf("serve: %v", err)
		}
		g.done = nil
	}
	http.DefaultClient.CloseIdleConnections()
}

func postJSON(t *testing.T, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response is not JSON (%d): %s", resp.StatusCode, raw)
	}
	return resp, out
}

// scripted is a provider the test drives chunk by chunk: each value sent on steps is streamed;
// closing steps ends the reply with usage. Started is signalled when a stream begins, and
// Cancelled is closed if the stream's context ends first.
type scripted struct {
	steps     chan string
	started   chan struct{}
	cancelled chan struct{}
}

func newScripted() *scripted {
	return &scripted{steps: make(chan string), started: make(chan struct{}, 16), cancelled: make(chan struct{})}
}

func (s *scripted) Name() string { return "scripted" }

func (s *scripted) Stream(ctx context.Context, _ llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		s.started <- struct{}{}
		for {
			select {
			case <-ctx.Done():
				close(s.cancelled)
				yield(llm.Chunk{}, ctx.Err())
				return
			case text, ok := <-s.steps:
				if !ok {
					yield(llm.Chunk{Model: "scripted-1", Provider: "scripted", Usage: &llm.Usage{InputTokens: 10, OutputTokens: 3}}, nil)
					return
				}
				if !yield(llm.Chunk{Text: text, Model: "scripted-1", Provider: "scripted"}, nil) {
					return
				}
			}
		}
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	Name string
	Data map[string]any
}

// sseReader reads events one at a time from a live response.
type sseReader struct {
	sc *bufio.Scanner
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{sc: bufio.NewScanner(r)} }

func (r *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if ev.Name != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data); err != nil {
				return ev, err
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return ev, err
	}
	return ev, errors.New("stream ended")
}

// within fails the test if ch does not yield in time; a guard against hangs, not a sleep.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
