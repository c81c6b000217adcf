package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, g *testGateway, header http.Header) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.URL, "http")+"/api/v2/ws", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t: t, conn: conn}
}

func (c *wsClient) send(frame any) {
	c.t.Helper()
	b, _ := json.Marshal(frame)
	c.sendRaw(websocket.MessageText, b)
}

func (c *wsClient) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) read() (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var f map[string]any
	return f, json.Unmarshal(b, &f)
}

func (c *wsClient) expect(typ string) map[string]any {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", typ, err)
	}
	if f["type"] != typ {
		c.t.Fatalf("want %s, got %v", typ, f)
	}
	return f
}

func (c *wsClient) expectError(code string) {
	c.t.Helper()
	if f := c.expect("error"); f["code"] != code || f["message"] == "" {
		c.t.Fatalf("want error %s with a message, got %v", code, f)
	}
}

// turn sends a text frame and collects the streamed reply up to response.done.
func (c *wsClient) turn(id, text string) (deltas []string, done map[string]any) {
	c.t.Helper()
	c.send(map[string]any{"type": "text", "id": id, "text": text})
	for {
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("turn %s: %v", id, err)
		}
		switch f["type"] {
		case "response.delta":
			if f["id"] != id {
				c.t.Fatalf("delta for %v during %s", f["id"], id)
			}
			deltas = append(deltas, f["text"].(string))
		case "response.done":
			return deltas, f
		default:
			c.t.Fatalf("unexpected frame during a turn: %v", f)
		}
	}
}

func TestWebSocketTextTurns(t *testing.T) {
	g := startGateway(t, nil)
	c := dialWS(t, g, nil)
	c.send(map[string]any{"type": "session.start", "id": "s1", "agentId": "fam"})
	started := c.expect("session.started")
	sid, _ := started["sessionId"].(string)
	if !strings.HasPrefix(sid, "ses_") || started["resumed"] != false || started["id"] != "s1" {
		t.Fatalf("session.started %v", started)
	}
	deltas, done := c.turn("t1", "Hello!")
	if len(deltas) < 2 || !strings.HasPrefix(strings.Join(deltas, ""), "Hello!") {
		t.Fatalf("want a streamed greeting, got %q", deltas)
	}
	if done["sessionId"] != sid || done["metadata"].(map[string]any)["provider"] != "offline" {
		t.Fatalf("response.done %v", done)
	}
	_, done2 := c.turn("t2", "what is 2 + 2?")
	if !strings.Contains(done2["result"].(map[string]any)["content"].(string), "= 4") {
		t.Fatalf("second turn %v", done2)
	}
	c.send(map[string]any{"type": "ping", "id": "p1"})
	if pong := c.expect("pong"); pong["id"] != "p1" {
		t.Fatalf("pong %v", pong)
	}
	msgs, err := g.Store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0)
	if err != nil || len(msgs) != 4 || msgs[0].Content != "Hello!" || msgs[2].Content != "what is 2 + 2?" || msgs[3].Role != session.RoleAssistant {
		t.Fatalf("stored %+v %v", msgs, err)
	}

	// A second connection resumes the session with its id and sees the history continue.
	c.conn.Close(websocket.StatusNormalClosure, "")
	c2 := dialWS(t, g, nil)
	c2.send(map[string]any{"type": "session.start", "agentId": "fam", "sessionId": sid})
	if f := c2.expect("session.started"); f["sessionId"] != sid || f["resumed"] != true {
		t.Fatalf("resume %v", f)
	}
	c2.turn("t3", "thanks")
	if msgs, _ := g.Store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0); len(msgs) != 6 {
		t.Fatalf("want 6 messages after resuming, got %d", len(msgs))
	}
}

func TestWebSocketBadFramesKeepTheConnection(t *testing.T) {
	g := startGateway(t, nil)
	c := dialWS(t, g, nil)
	c.send(map[string]any{"type": "text", "text": "too early"})
	c.expectError(gateway.CodeNotStarted)
	c.sendRaw(websocket.MessageText, []byte(`{"type": "session.start", `))
	c.expectError(gateway.CodeInvalidJSON)
	c.send(map[string]any{"type": "dance"})
	c.expectError(gateway.CodeUnknownType)
	c.send(map[string]any{"id": "x"})
	c.expectError(gateway.CodeValidation)
	c.sendRaw(websocket.MessageBinary, []byte{0, 1, 2, 3})
	c.expectError(gateway.CodeUnsupportedFrame)
	c.send(map[string]any{"type": "session.start", "agentId": "nobody"})
	c.expectError(gateway.CodeAgentNotFound)
	c.send(map[string]any{"type": "session.start", "agentId": "fam", "sessionId": "ses_unknown"})
	c.expectError(gateway.CodeSessionNotFound)
	// After every mistake the connection still works.
	c.send(map[string]any{"type": "session.start", "agentId": "fam"})
	c.expect("session.started")
	c.send(map[string]any{"type": "session.start", "agentId": "fam"})
	c.expectError(gateway.CodeAlreadyStarted)
	c.send(map[string]any{"type": "text", "id": "e", "text": ""})
	c.expectError(gateway.CodeValidation)
	if _, done := c.turn("ok", "Hello!"); done == nil {
		t.Fatal("no reply after bad frames")
	}
}

func TestWebSocketOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) { c.WSMaxFrameBytes = 1024 })
	c := dialWS(t, g, nil)
	c.send(map[string]any{"type": "text", "text": strings.Repeat("x", 5000)})
	c.expectError(gateway.CodeFrameTooLarge)
	_, err := c.read()
	if status := websocket.CloseStatus(err); status != websocket.StatusMessageTooBig {
		t.Fatalf("want close 1009, got %v", err)
	}
	// The server survives: a new connection works.
	c2 := dialWS(t, g, nil)
	c2.send(map[string]any{"type": "ping"})
	c2.expect("pong")
}

func TestWebSocketInterruptAndBusy(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	c := dialWS(t, g, nil)
	c.send(map[string]any{"type": "session.start", "agentId": "fam"})
	sid := c.expect("session.started")["sessionId"].(string)
	c.send(map[string]any{"type": "text", "id": "t1", "text": "talk for a while"})
	within(t, p.started, "the provider to start")
	p.steps <- "I was saying"
	c.expect("response.delta")
	c.send(map[string]any{"type": "text", "id": "t2", "text": "me too"})
	c.expectError(gateway.CodeTurnInProgress)
	c.send(map[string]any{"type": "interrupt"})
	within(t, p.cancelled, "the provider to be cancelled")
	if f := c.expect("response.interrupted"); f["id"] != "t1" || f["metadata"].(map[string]any)["interrupted"] != true {
		t.Fatalf("interrupted %v", f)
	}
	msgs, _ := g.Store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0)
	if len(msgs) != 2 || msgs[1].Content != "I was saying" {
		t.Fatalf("the interrupted reply should be stored as far as it went: %+v", msgs)
	}
}

func TestWebSocketOriginCheck(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	dialWS(t, g, http.Header{"Origin": {"https://app.example.com"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.URL, "http")+"/api/v2/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example.com"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a foreign origin must be refused with 403, got %v %v", resp, err)
	}
}

// Shutdown lets a WebSocket turn in flight finish, then closes the socket with "going away".
func TestWebSocketShutdownFinishesTheTurn(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	c := dialWS(t, g, nil)
	c.send(map[string]any{"type": "session.start", "agentId": "fam"})
	c.expect("session.started")
	c.send(map[string]any{"type": "text", "id": "t1", "text": "hi"})
	within(t, p.started, "the provider to start")
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- g.Srv.Shutdown(ctx)
	}()
	p.steps <- "finishing"
	close(p.steps)
	c.expect("response.delta")
	c.expect("response.done")
	_, err := c.read()
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("want close 1001 after the turn, got %v", err)
	}
	if err := within(t, stopped, "shutdown"); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
