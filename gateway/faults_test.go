package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/llm/llmtest"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/pgtest"
)

// Fault injection at the edge (issue 9): what a client sees, and what is stored, when a
// provider or the client itself misbehaves in the middle of a turn.

// firehose streams the same chunk as fast as it is taken, until told to stop. It counts
// what it produced and closes done when its stream returns.
type firehose struct {
	chunk    string
	produced atomic.Int64
	done     chan struct{}
}

func newFirehose(size int) *firehose {
	return &firehose{chunk: strings.Repeat("word ", size/5), done: make(chan struct{})}
}

func (f *firehose) Name() string { return "firehose" }

func (f *firehose) Stream(ctx context.Context, _ llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		defer close(f.done)
		for ctx.Err() == nil {
			f.produced.Add(1)
			if !yield(llm.Chunk{Text: f.chunk, Model: "firehose-1", Provider: "firehose"}, nil) {
				return
			}
		}
		yield(llm.Chunk{}, ctx.Err())
	}
}

// rawStream sends a streaming POST over a bare TCP connection and reads only the response's status line and headers, so the test decides when (if ever)
// the body is read.
func rawStream(t *testing.T, g *testGateway, path, body string) (*http.Response, net.Conn) {
	t.Helper()
	host := strings.TrimPrefix(g.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, host, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err != nil {
		t.Fatalf("response headers: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Session-Id") == "" {
		t.Fatalf("status %d, session %q", resp.StatusCode, resp.Header.Get("X-Session-Id"))
	}
	return resp, conn
}

// wantStored checks the session holds the user's message and, when reply is not "", the
// assistant's reply, marked interrupted or not.
func wantStored(t *testing.T, g *testGateway, sid, userMsg string, check func(reply session.Message)) {
	t.Helper()
	msgs, err := g.Store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 || msgs[0].Role != session.RoleUser || msgs[0].Content != userMsg {
		t.Fatalf("the user's message was not kept: %d messages", len(msgs))
	}
	if check == nil {
		if len(msgs) != 1 {
			t.Fatalf("%d messages, want the user's alone", len(msgs))
		}
		return
	}
	if len(msgs) != 2 || msgs[1].Role != session.RoleAssistant {
		t.Fatalf("%d messages, want the user's and the reply", len(msgs))
	}
	check(msgs[1])
}

// A client that stops reading an SSE stream holds the turn up only until the write deadline:
// then the provider is stopped, the reply generated so far is stored, marked interrupted,
// and the connection is closed without a completion marker, on both streaming APIs. goleak
// (TestMain) checks nothing is left running.
func TestSSEClientThatStopsReading(t *testing.T) {
	for _, tc := range []struct {
		name, path, body, userMsg string
		doneMarker                string // what would pass the stream off as complete
	}{
		// The passthrough agent, as FAM would cut so long a reply short on its own.
		{"api/v2/chat/stream", "/api/v2/chat/stream", `{"agentId":"passthrough","message":"talk for ever"}`, "talk for ever", "event: done"},
		{"v1/chat/completions", "/v1/chat/completions", `{"model":"upstream-model","stream":true,"messages":[{"role":"user","content":"talk for ever"}]}`, "talk for ever", "[DONE]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits out the 10s write deadline
			p := newFirehose(32 << 10)
			g := startGateway(t, p)
			resp, _ := rawStream(t, g, tc.path, tc.body)
			sid := resp.Header.Get("X-Session-Id")

			// Nothing is read: the writes block, the write deadline fails one, the turn ends.
			// The guard is well past the 10s deadline; a gateway without one would hang here.
			select {
			case <-p.done:
			case <-time.After(45 * time.Second):
				t.Fatalf("the provider still streams to a client that stopped reading (%d chunks)", p.produced.Load())
			}
			produced := p.produced.Load()
			if produced < 2 {
				t.Fatalf("the provider produced %d chunks before the stream stopped; the client never stalled it", produced)
			}
			g.shutdown(t) // waits for the handler, which stores the reply

			wantStored(t, g, sid, tc.userMsg, func(reply session.Message) {
				n := len(reply.Content) / len(p.chunk)
				if reply.Content != strings.Repeat(p.chunk, n) || n == 0 || int64(n) > produced || reply.Metadata["interrupted"] != true {
					t.Fatalf("stored reply: %d bytes (%d chunks of %d produced), interrupted=%v; want the chunks generated, marked interrupted",
						len(reply.Content), n, produced, reply.Metadata["interrupted"])
				}
			})

			// The client, reading at last, gets the backlog and then a stream that ends
			// abruptly, never one that looks complete.
			data, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("reading the rest of the stream: %v after %d bytes, want it cut (io.ErrUnexpectedEOF)", err, len(data))
			}
			if bytes.Contains(data, []byte(tc.doneMarker)) {
				t.Errorf("the cut stream carries %q", tc.doneMarker)
			}
		})
	}
}

// A client that disconnects in the middle of an OpenAI-style stream cancels the provider,
// and the reply generated so far is stored, marked interrupted (as for /api/v2/chat/stream,
// see TestSSEClientDisconnectCancelsTheProvider).
func TestOpenAIStreamClientDisconnectsMidTurn(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The stream opens with the first text, so the request waits for it on its own goroutine.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"fam","stream":true,"messages":[{"role":"user","content":"long answer please"}]}`))
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		resp *http.Response
		err  error
	}
	opened := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		opened <- result{resp, err}
	}()
	within(t, p.started, "the provider to start")
	p.steps <- "Part one. "
	r := within(t, opened, "the stream to open")
	if r.err != nil || r.resp.StatusCode != http.StatusOK {
		t.Fatalf("open the stream: %v %v", r.err, r.resp)
	}
	resp := r.resp
	sid := resp.Header.Get("X-Session-Id")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "Part one. ") {
	}
	if sc.Err() != nil {
		t.Fatal(sc.Err())
	}
	cancel()
	resp.Body.Close()
	within(t, p.cancelled, "the provider to be cancelled")
	g.shutdown(t)

	wantStored(t, g, sid, "long answer please", func(reply session.Message) {
		if reply.Content != "Part one. " || reply.Metadata["interrupted"] != true {
			t.Fatalf("stored reply %q interrupted=%v", reply.Content, reply.Metadata["interrupted"])
		}
	})
}

// A WebSocket client that disconnects mid-turn cancels the provider, and the reply so far
// is stored, marked interrupted.
func TestWebSocketClientDisconnectsMidTurn(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	c := dialWS(t, g, nil)
	c.send(map[string]any{"type": "session.start", "agentId": "fam"})
	sid, _ := c.expect("session.started")["sessionId"].(string)
	c.send(map[string]any{"type": "text", "id": "t1", "text": "long answer please"})
	within(t, p.started, "the provider to start")
	p.steps <- "Part one. "
	c.expect("response.delta")
	c.conn.CloseNow()
	within(t, p.cancelled, "the provider to be cancelled")
	g.shutdown(t)

	wantStored(t, g, sid, "long answer please", func(reply session.Message) {
		if reply.Content != "Part one. " || reply.Metadata["interrupted"] != true {
			t.Fatalf("stored reply %q interrupted=%v", reply.Content, reply.Metadata["interrupted"])
		}
	})
}

// Provider faults through the real provider chain and wire formats (llmtest), at the edge:
// 429s, 500s and silence from every provider end the turn with a clear 502 and keep the
// user's message; a provider that drops its stream midway ends the SSE stream with an error
// event (no fallback once text went out) and keeps the partial reply, marked interrupted.
func TestProviderFaultsAtTheEdge(t *testing.T) {
	for _, tc := range []struct {
		name      string
		openai    llmtest.Reply
		anthropic llmtest.Reply
		silent    bool
		stream    bool
		want      string // in the error message
		requests  int    // each provider got
	}{
		{name: "429 everywhere", openai: llmtest.Reply{Status: 429}, anthropic: llmtest.Reply{Status: 429}, want: "429", requests: 2},
		{name: "500 everywhere", openai: llmtest.Reply{Status: 500}, anthropic: llmtest.Reply{Status: 500}, want: "500", requests: 2},
		{name: "silent everywhere", silent: true, want: "no first token", requests: 1},
		{name: "cut mid-stream", openai: llmtest.Reply{Chunks: []string{"Hel", "lo ", "world"}, CutAfter: 2}, stream: true, requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hang := make(chan struct{})
			reply := func(r llmtest.Reply) func(int) llmtest.Reply {
				return func(int) llmtest.Reply {
					if tc.silent {
						<-hang
					}
					return r
				}
			}
			oa, an := llmtest.NewOpenAI(reply(tc.openai)), llmtest.NewAnthropic(reply(tc.anthropic))
			defer oa.Close()
			defer an.Close()
			defer close(hang) // first: the fakes' Close waits for their handlers
			chain := llm.NewChain(llm.ChainConfig{FirstTokenTimeout: 200 * time.Millisecond, BackoffBase: time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
				llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test", BaseURL: oa.URL + "/v1"}),
				llm.NewAnthropic(llm.AnthropicConfig{APIKey: "ak-test", BaseURL: an.URL}))
			g := startGateway(t, chain)

			if !tc.stream {
				resp, out := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"are you there?"}`)
				msg, _ := out["error"].(map[string]any)["message"].(string)
				if resp.StatusCode != http.StatusBadGateway || errCode(out) != gateway.CodeProviderError || !strings.Contains(msg, tc.want) {
					t.Fatalf("got %d %v; want 502 provider_error saying %q", resp.StatusCode, out, tc.want)
				}
				if n, m := len(oa.Requests()), len(an.Requests()); n != tc.requests || m != tc.requests {
					t.Errorf("requests: openai %d, anthropic %d; want %d each", n, m, tc.requests)
				}
				wantStored(t, g, resp.Header.Get("X-Session-Id"), "are you there?", nil)
				return
			}

			resp := openStream(t, context.Background(), g.URL+"/api/v2/chat/stream", `{"agentId":"fam","message":"say hello"}`)
			defer resp.Body.Close()
			sid := resp.Header.Get("X-Session-Id")
			events := newSSEReader(resp.Body)
			var text string
			for {
				ev, err := events.next()
				if err != nil {
					t.Fatalf("stream ended without an error event after %q: %v", text, err)
				}
				if ev.Name == "delta" {
					text += ev.Data["text"].(string)
					continue
				}
				if ev.Name != "error" || ev.Data["code"] != gateway.CodeProviderError {
					t.Fatalf("after %q: event %s %v, want an error event", text, ev.Name, ev.Data)
				}
				break
			}
			if text != "Hello " {
				t.Errorf("deltas before the cut = %q, want %q", text, "Hello ")
			}
			if n := len(an.Requests()); n != 0 {
				t.Errorf("the fallback was asked %d times after text went out", n)
			}
			g.shutdown(t)
			wantStored(t, g, sid, "say hello", func(reply session.Message) {
				if reply.Content != "Hello " || reply.Metadata["interrupted"] != true {
					t.Fatalf("stored reply %q interrupted=%v", reply.Content, reply.Metadata["interrupted"])
				}
			})
		})
	}
}

// PostgreSQL down and back, at the edge: while it is down a chat fails at once with the error
// envelope (no hang, no half-stored turn) and /health/ready names the database; once it is
// back the same session goes on and the conversation from before the outage is whole. The
// answer during the outage is the documented 503 with Retry-After: the store is down, the
// request is not at fault.
func TestPostgreSQLOutageAtTheEdge(t *testing.T) {
	srv := pgtest.Start(t)
	quiet := slog.New(slog.DiscardHandler)
	// A short write budget, so a turn started during the outage gives up within the test.
	store, err := session.OpenPostgres(context.Background(), session.PostgresConfig{URL: srv.NewDatabase(t), WriteRetry: 300 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	reg, err := agents.NewRegistry(fam.New(fam.Config{}), agents.Passthrough{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: offline.New(offline.Config{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, nil, func(c *gateway.Config) {
		c.Engine = engine
		c.Checks = []gateway.HealthCheck{{Name: "sql", Check: store.Ping}}
	})
	chat := func(body string) (*http.Response, map[string]any) {
		t.Helper()
		return postJSON(t, g.URL+"/api/v2/chat", body)
	}

	resp, out := chat(`{"agentId":"fam","message":"hello before"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat with PostgreSQL up: %d %v", resp.StatusCode, out)
	}
	sid := out["sessionId"].(string)

	srv.Stop()
	for _, body := range []string{`{"agentId":"fam","message":"hello during"}`, `{"agentId":"fam","message":"hello during","sessionId":"` + sid + `"}`} {
		resp, out := chat(body)
		envelope, _ := out["error"].(map[string]any)
		code, _ := envelope["code"].(string)
		requestID, _ := envelope["requestId"].(string)
		if resp.StatusCode != http.StatusServiceUnavailable || code != gateway.CodeUnavailable || requestID == "" {
			t.Fatalf("chat with PostgreSQL down: %d %v; want 503 %s in the envelope", resp.StatusCode, out, gateway.CodeUnavailable)
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 {
			t.Fatalf("chat with PostgreSQL down: Retry-After %q; want whole seconds", resp.Header.Get("Retry-After"))
		}
	}
	ready, err := http.Get(g.URL + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	readyBody, _ := io.ReadAll(ready.Body)
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(readyBody, []byte(`"sql"`)) {
		t.Fatalf("/health/ready with PostgreSQL down: %d %s", ready.StatusCode, readyBody)
	}

	srv.Restart(t)
	resp, out = chat(`{"agentId":"fam","message":"hello after","sessionId":"` + sid + `"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat once PostgreSQL is back: %d %v", resp.StatusCode, out)
	}
	msgs, err := store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, m := range msgs {
		if m.Role == session.RoleUser {
			users = append(users, m.Content)
		}
	}
	if len(msgs) != 4 || strings.Join(users, "|") != "hello before|hello after" {
		t.Fatalf("after the outage the session holds %d messages, users said %q; want before and after, each answered", len(msgs), users)
	}
}
