package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/session"
	"go.uber.org/goleak"
)

// gatedOpenAI is an OpenAI-compatible provider whose streamed replies stop after their first
// words until the test opens the gate, so every turn is mid-reply when the test chooses.
type gatedOpenAI struct {
	*httptest.Server
	gate    chan struct{}
	release func() // opens the gate; more than once is fine

	mu       sync.Mutex
	messages []string // the last user message of every request, in arrival order
}

func (g *gatedOpenAI) asked(message string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.messages, message)
}

// replyHead and replyTail are the two halves of the reply to message: the head streams at
// once, the tail after the gate opens.
func replyHead(message string) []string { return []string{"Reply to ", message + ": "} }
func replyTail() []string               { return []string{"the rest ", "of the answer."} }
func fullReply(message string) string {
	return strings.Join(append(replyHead(message), replyTail()...), "")
}

func startGatedOpenAI(t *testing.T) *gatedOpenAI {
	t.Helper()
	g := &gatedOpenAI{gate: make(chan struct{})}
	g.release = sync.OnceFunc(func() { close(g.gate) })
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model    string `json:"model"`
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&body) != nil || len(body.Messages) == 0 {
			http.Error(w, `{"error":{"message":"bad request","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		message := body.Messages[len(body.Messages)-1].Content
		g.mu.Lock()
		g.messages = append(g.messages, message)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(delta map[string]any, finish any) {
			b, _ := json.Marshal(map[string]any{"id": "chatcmpl-drain", "object": "chat.completion.chunk", "created": 1, "model": body.Model,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
		send(map[string]any{"role": "assistant", "content": ""}, nil)
		for _, c := range replyHead(message) {
			send(map[string]any{"content": c}, nil)
		}
		select {
		case <-g.gate:
		case <-r.Context().Done():
			return
		}
		for _, c := range replyTail() {
			send(map[string]any{"content": c}, nil)
		}
		send(map[string]any{}, "stop")
		fmt.Fprint(w, "data: [DONE]\n\n")
		w.(http.Flusher).Flush()
	}))
	return g
}

// liveTurn is one session of the drain test, as its client saw it.
type liveTurn struct {
	kind      string // "ws", "sse" or "voice"
	message   string
	sessionID string
	reply     string               // every delta the client received, joined
	done      bool                 // response.done or [DONE] arrived
	closed    websocket.StatusCode // how the WebSocket ended; -1 when not by a close frame
	err       error
}

// runWSTurn opens a WebSocket session, sends message, reports its first delta on first (a
// copy, as lt goes on changing) and then reads the rest of the reply and the close that
// follows it.
func runWSTurn(ctx context.Context, base string, lt *liveTurn, first chan<- liveTurn) {
	fail := func(err error) { lt.err = err; first <- *lt }
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/v2/ws", nil)
	if err != nil {
		fail(err)
		return
	}
	defer conn.CloseNow()
	start := map[string]any{"type": "session.start", "agentId": "passthrough"}
	if lt.kind == "voice" {
		// The native tier: the device speaks the text, so the reply needs no TTS engine.
		start["audio"] = map[string]any{"format": "pcm16", "sampleRate": 16000}
		start["voice"] = map[string]any{"tier": "native"}
	}
	frame, _ := json.Marshal(start)
	if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
		fail(err)
		return
	}
	frame, _ = json.Marshal(map[string]any{"type": "text", "id": "t1", "text": lt.message})
	firstSent := false
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			lt.closed = websocket.CloseStatus(err)
			if lt.closed == -1 {
				lt.err = err
			}
			break
		}
		var f struct {
			Type, SessionID, Text, Code, Message string
		}
		if err := json.Unmarshal(data, &f); err != nil {
			continue // a voice session's binary audio (none on the native tier)
		}
		switch f.Type {
		case "session.started":
			lt.sessionID = f.SessionID
			if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
				fail(err)
				return
			}
		case "response.delta":
			lt.reply += f.Text
			if !firstSent {
				firstSent = true
				first <- *lt
			}
		case "response.done":
			lt.done = true
		case "error", "response.interrupted":
			lt.err = fmt.Errorf("%s %s: %s", f.Type, f.Code, f.Message)
		}
	}
	if !firstSent {
		if lt.err == nil {
			lt.err = fmt.Errorf("the session ended (close %v) before any delta", lt.closed)
		}
		first <- *lt
	}
}

// runSSETurn streams one OpenAI-compatible completion, reports its first delta on first and
// then reads the rest up to [DONE].
func runSSETurn(ctx context.Context, client *http.Client, base string, lt *liveTurn, first chan<- liveTurn) {
	body, _ := json.Marshal(map[string]any{"model": "gpt-drain", "stream": true,
		"messages": []any{map[string]any{"role": "user", "content": lt.message}}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		lt.err = err
		first <- *lt
		return
	}
	defer resp.Body.Close()
	lt.sessionID = resp.Header.Get("X-Session-Id")
	firstSent := false
	defer func() {
		if !firstSent {
			if lt.err == nil {
				lt.err = errors.New("the stream ended before any delta")
			}
			first <- *lt
		}
	}()
	if resp.StatusCode != http.StatusOK {
		lt.err = fmt.Errorf("status %d", resp.StatusCode)
		return
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			lt.done = true
			return
		}
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil || chunk.Error != nil {
			lt.err = fmt.Errorf("frame %s (%v)", data, err)
			return
		}
		for _, c := range chunk.Choices {
			lt.reply += c.Delta.Content
			if c.Delta.Content != "" && !firstSent {
				firstSent = true
				first <- *lt
			}
		}
	}
	lt.err = fmt.Errorf("stream ended without [DONE]: %v", sc.Err())
}

// isRefused reports whether err is how a draining process turns a new connection away
// without serving it: refused (the listener is closed), reset (it was still in the accept
// queue when the listener closed), or closed unanswered (net/http drops a request it reads
// after Shutdown began; clients retry that).
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Issue 9, fault injection: SIGTERM while 100 sessions (WebSocket text turns and OpenAI SSE
// streams, plus two WebSocket voice sessions) are each mid-reply. New work is refused during
// the drain, every reply in flight finishes on its client, the WebSocket clients are then
// closed with 1001, the process exits 0 within the grace, and after a restart on the same data
// every conversation holds both the user's message and the whole reply.
func TestSIGTERMDrainsLiveSessions(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const (
		wsSessions    = 50
		sseSessions   = 50
		voiceSessions = 2
		grace         = 20 * time.Second
	)
	llm := startGatedOpenAI(t)
	defer llm.Close()
	defer llm.release() // Close waits for the replies, should the test stop early
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	args := []string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", dataDir, "--rate-limit=false",
		"--openai-base-url", llm.URL + "/v1", "--shutdown-grace", grace.String(),
		"--analytics-flush", "1h"} // every turn's analytics event is still pending at SIGTERM
	cmd := exec.Command(bin, args...)
	cmd.Env = quietEnv()
	p := start(t, cmd)
	// Should the test stop early, its goroutines end before goleak looks (a no-op once the
	// process has exited).
	defer syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	streams := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: sseSessions}}
	defer streams.CloseIdleConnections()

	var turns []*liveTurn
	for i := range wsSessions {
		turns = append(turns, &liveTurn{kind: "ws", message: fmt.Sprintf("websocket question %d", i)})
	}
	for i := range sseSessions {
		turns = append(turns, &liveTurn{kind: "sse", message: fmt.Sprintf("stream question %d", i)})
	}
	for i := range voiceSessions {
		turns = append(turns, &liveTurn{kind: "voice", message: fmt.Sprintf("voice question %d", i)})
	}
	first := make(chan liveTurn, len(turns)) // a copy as each turn's first delta came
	finished := make(chan *liveTurn, len(turns))
	for _, lt := range turns {
		go func() {
			if lt.kind == "sse" {
				runSSETurn(ctx, streams, p.url, lt, first)
			} else {
				runWSTurn(ctx, p.url, lt, first)
			}
			finished <- lt
		}()
	}
	for range turns {
		if lt := <-first; lt.err != nil {
			t.Fatalf("%s %q failed before its first delta: %v", lt.kind, lt.message, lt.err)
		}
	}

	// A client that opened its connection just before SIGTERM and sends its request only
	// once the drain has begun: it must be turned away, not served.
	late, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	lateBody := `{"agentId":"passthrough","message":"too late"}`
	if _, err := fmt.Fprintf(late, "POST /api/v2/chat HTTP/1.1\r\nHost: dartmouth\r\nContent-Type: application/json\r\n"); err != nil {
		t.Fatal(err)
	}

	// Every session is mid-reply, held at the gate.
	sigterm := time.Now()
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The drain has begun once a new WebSocket is refused (the drain starts before the
	// listener closes). One accepted before it began is closed by it with 1001, having no
	// turn; the next attempt then meets the drain.
	wsURL := "ws" + strings.TrimPrefix(p.url, "http") + "/api/v2/ws"
	for {
		conn, resp, err := websocket.Dial(ctx, wsURL, nil)
		if err == nil {
			_, _, err := conn.Read(ctx)
			conn.CloseNow()
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("a socket opened as SIGTERM came: %v, want close 1001", err)
			}
			continue
		}
		if isRefused(err) {
			break
		}
		if resp == nil {
			t.Fatalf("new WebSocket during the drain: %v, want refused or 503", err)
		}
		if code := envelopeCode(resp); resp.StatusCode != http.StatusServiceUnavailable || code != "shutting_down" {
			t.Fatalf("new WebSocket during the drain: %d %q, want 503 shutting_down", resp.StatusCode, code)
		}
		break
	}
	_, err = fmt.Fprintf(late, "Content-Length: %d\r\n\r\n%s", len(lateBody), lateBody)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(late), nil)
	}
	switch {
	case err == nil:
		if code := envelopeCode(resp); resp.StatusCode != http.StatusServiceUnavailable || code != "shutting_down" {
			t.Fatalf("a request on a connection opened before SIGTERM: %d %q, want it refused", resp.StatusCode, code)
		}
	case !isRefused(err):
		t.Fatalf("a request on a connection opened before SIGTERM: %v, want it refused", err)
	}
	// Requests on new connections are refused: the listener is closed, or the request met
	// the drain just before it closed.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, probe := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"gpt-drain","messages":[{"role":"user","content":"too late"}]}`},
		{"/api/v2/chat", lateBody},
	} {
		resp, err := fresh.Post(p.url+probe.path, "application/json", strings.NewReader(probe.body))
		if isRefused(err) {
			continue
		}
		if err != nil {
			t.Fatalf("POST %s during the drain: %v, want refused or 503", probe.path, err)
		}
		if code := envelopeCode(resp); resp.StatusCode != http.StatusServiceUnavailable || code != "shutting_down" {
			t.Fatalf("POST %s during the drain: %d %q, want refused or 503 shutting_down", probe.path, resp.StatusCode, code)
		}
	}
	select {
	case err := <-p.exit:
		t.Fatalf("the process exited (%v) with every reply still in flight:\n%s", err, p.logs)
	default:
	}
	if llm.asked("too late") {
		t.Fatal("a request refused during the drain still reached the model")
	}

	llm.release()
	for range turns {
		lt := <-finished
		want := fullReply(lt.message)
		switch {
		case lt.err != nil:
			t.Errorf("%s %q: %v (got %q)", lt.kind, lt.message, lt.err, lt.reply)
		case lt.kind != "sse" && lt.closed != websocket.StatusGoingAway:
			t.Errorf("%s %q: closed with %v after the reply, want 1001 going away", lt.kind, lt.message, lt.closed)
		case !lt.done || lt.reply != want:
			t.Errorf("%s %q: done=%v reply %q, want the whole %q", lt.kind, lt.message, lt.done, lt.reply, want)
		}
	}
	select {
	case err := <-p.exit:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
		if took := time.Since(sigterm); took > grace {
			t.Errorf("exited %v after SIGTERM, beyond the %v grace", took, grace)
		}
	case <-time.After(grace + 5*time.Second):
		t.Fatalf("no exit %v after SIGTERM:\n%s", grace+5*time.Second, p.logs)
	}
	streams.CloseIdleConnections()

	// Nothing lost: a new process on the same data has every conversation, whole.
	cmd = exec.Command(bin, args...)
	cmd.Env = quietEnv()
	again := start(t, cmd)
	defer syscall.Kill(-again.cmd.Process.Pid, syscall.SIGKILL)
	for _, lt := range turns {
		var got []string
		interrupted := false
		for _, m := range history(t, again.url, lt.sessionID) {
			m := m.(map[string]any)
			got = append(got, fmt.Sprintf("%s: %s", m["role"], m["content"]))
			if meta, _ := m["metadata"].(map[string]any); meta["interrupted"] == true {
				interrupted = true
			}
		}
		want := []string{"user: " + lt.message, "assistant: " + lt.reply}
		if lt.done != !interrupted || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s session %s after the restart (interrupted %v):\n%s\nwant:\n%s", lt.kind, lt.sessionID, interrupted, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	again.stop(t)
	http.DefaultClient.CloseIdleConnections()

	// The turns' analytics events, all pending in memory at SIGTERM, were written too.
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: filepath.Join(dataDir, "dartmouth.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if n, err := store.CountEvents(context.Background(), session.AnonymousUserID, session.EventTurnCompleted); err != nil || n != len(turns) {
		t.Errorf("%d turn.completed events after the drain, want %d (%v)", n, len(turns), err)
	}
}

// envelopeCode reads resp's body as the error envelope (the gateway's, or OpenAI's shape on
// /v1) and returns its code.
func envelopeCode(resp *http.Response) string {
	defer resp.Body.Close()
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return "unreadable: " + err.Error()
	}
	return env.Error.Code
}
