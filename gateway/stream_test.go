package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

func openStream(t *testing.T, ctx context.Context, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp
}

// Each delta must reach the client while the provider is still generating: the provider only
// produces its next piece after the test has read the previous one.
func TestSSEDeltasArriveAsGenerated(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	resp := openStream(t, context.Background(), g.URL+"/api/v2/chat/stream", `{"agentId":"fam","message":"tell me a story"}`)
	defer resp.Body.Close()
	sid := resp.Header.Get("X-Session-Id")
	events := newSSEReader(resp.Body)
	within(t, p.started, "the provider to start")
	pieces := []string{"Once ", "upon ", "a ", "time."}
	for _, piece := range pieces {
		p.steps <- piece
		ev, err := events.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Name != "delta" || ev.Data["text"] != piece {
			t.Fatalf("want delta %q before the provider goes on, got %s %v", piece, ev.Name, ev.Data)
		}
	}
	close(p.steps)
	done, err := events.next()
	if err != nil {
		t.Fatal(err)
	}
	if done.Name != "done" || done.Data["content"] != "Once upon a time." || done.Data["sessionId"] != sid {
		t.Fatalf("done event %v", done)
	}
	meta := done.Data["metadata"].(map[string]any)
	if meta["provider"] != "scripted" || meta["tokens"].(map[string]any)["output"] != 3.0 {
		t.Fatalf("metadata %v", meta)
	}
}

// A client that goes away cancels the provider call, and what was generated is kept.
func TestSSEClientDisconnectCancelsTheProvider(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	resp := openStream(t, ctx, g.URL+"/api/v2/chat/stream", `{"agentId":"fam","message":"long answer please"}`)
	sid := resp.Header.Get("X-Session-Id")
	events := newSSEReader(resp.Body)
	within(t, p.started, "the provider to start")
	p.steps <- "Part one. "
	if ev, err := events.next(); err != nil || ev.Name != "delta" {
		t.Fatalf("first delta: %v %v", ev, err)
	}
	cancel()
	resp.Body.Close()
	within(t, p.cancelled, "the provider to be cancelled")
	g.shutdown(t) // waits for the handler, which stores the partial reply

	msgs, err := g.Store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Content != "long answer please" || msgs[1].Content != "Part one. " || msgs[1].Metadata["interrupted"] != true {
		t.Fatalf("stored %+v", msgs)
	}
}

// A provider failure after the stream began arrives as an error event, never as "done".
func TestSSEProviderFailureIsAnErrorEvent(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p, func(c *gateway.Config) { c.RequestTimeout = 300 * time.Millisecond })
	resp := openStream(t, context.Background(), g.URL+"/api/v2/chat/stream", `{"agentId":"fam","message":"hi"}`)
	defer resp.Body.Close()
	events := newSSEReader(resp.Body)
	within(t, p.started, "the provider to start")
	p.steps <- "Half"
	if ev, _ := events.next(); ev.Name != "delta" {
		t.Fatalf("want a delta, got %v", ev)
	}
	// The provider now stays silent until the 300ms request deadline cuts it off.
	ev, err := events.next()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Name != "error" || ev.Data["code"] != gateway.CodeTimeout || ev.Data["requestId"] == "" {
		t.Fatalf("want a timeout error event, got %v", ev)
	}
	if _, err := events.next(); err == nil {
		t.Fatal("nothing may follow the error event")
	}
}
