package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
)

func TestHealthEndpoints(t *testing.T) {
	var failing error
	g := startGateway(t, nil, func(c *gateway.Config) {
		c.Checks = append(c.Checks, gateway.HealthCheck{Name: "flaky", Check: func(context.Context) error { return failing }})
	})
	for _, path := range []string{"/health/live", "/health/ready", "/health"} {
		if resp, body := getJSON(t, g.URL+path); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, body)
		}
	}
	failing = context.DeadlineExceeded
	resp, body := getJSON(t, g.URL+"/health/ready")
	checks := body["checks"].(map[string]any)
	if resp.StatusCode != http.StatusServiceUnavailable || checks["flaky"].(map[string]any)["ok"] != false || checks["sql"].(map[string]any)["ok"] != true {
		t.Fatalf("ready with a failing dependency: %d %v", resp.StatusCode, body)
	}
	if resp, _ := getJSON(t, g.URL+"/health/live"); resp.StatusCode != 200 {
		t.Fatal("liveness must not depend on dependencies")
	}
}

func TestCORSAllowList(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) { c.AllowedOrigins = []string{"https://app.example.com"} })
	for origin, allowed := range map[string]bool{"https://app.example.com": true, "https://evil.example.com": false} {
		req, _ := http.NewRequest(http.MethodOptions, g.URL+"/api/v2/chat", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin") == origin; got != allowed {
			t.Fatalf("origin %s: allowed=%v, want %v (%v)", origin, got, allowed, resp.Header)
		}
	}
}

// SIGTERM-style shutdown lets a stream in flight finish, refuses new work, then returns.
func TestShutdownDrainsStreams(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p)
	resp := openStream(t, context.Background(), g.URL+"/api/v2/chat/stream", `{"agentId":"fam","message":"hi"}`)
	defer resp.Body.Close()
	events := newSSEReader(resp.Body)
	within(t, p.started, "the provider to start")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- g.Srv.Shutdown(ctx)
	}()
	// The readiness probe flips as soon as draining starts, or the listener is already closed.
	for {
		resp, err := http.Get(g.URL + "/health/ready")
		if err != nil {
			break
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned (%v) while a stream was in flight", err)
	default:
	}
	p.steps <- "still here"
	close(p.steps)
	for _, want := range []string{"delta", "done"} {
		ev, err := events.next()
		if err != nil || ev.Name != want {
			t.Fatalf("want %s during shutdown, got %v %v", want, ev, err)
		}
	}
	if err := within(t, stopped, "shutdown to finish"); err != nil {
		t.Fatal(err)
	}
}
