// Package gatewaytest runs a real gateway on a loopback port for tests of the packages the
// gateway serves (agents driven through POST /api/v2/chat, scenario suites).
package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/gateway"
)

// Serve starts a gateway over engine and returns its base URL ("http://127.0.0.1:port"). It is
// shut down, and Serve's goroutine waited for, when the test ends. configure may adjust the
// gateway's Config; the logger is silent unless configure sets one.
func Serve(t testing.TB, engine *agents.Engine, configure ...func(*gateway.Config)) string {
	t.Helper()
	cfg := gateway.Config{Engine: engine, Logger: slog.New(slog.DiscardHandler)}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("gateway serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return "http://" + ln.Addr().String()
}

// Chat posts body as JSON to POST /api/v2/chat on baseURL, fails the test unless the gateway
// answers 200, and decodes the answer into out.
func Chat(t testing.TB, baseURL string, body, out any) {
	t.Helper()
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(baseURL+"/api/v2/chat", "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/chat %s: %d %s", payload, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("POST /api/v2/chat answered with something other than JSON: %s", raw)
	}
}
