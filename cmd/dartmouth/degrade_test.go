package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/redistest"
)

// chatAs sends one chat to base as the client at ip: the replicas sit behind a trusted
// (loopback) proxy, so X-Forwarded-For names the caller and so the rate-limit key.
func chatAs(t *testing.T, base, ip string) (status, remaining int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v2/chat", strings.NewReader(`{"agentId":"fam","message":"what is 2 + 2?"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := rateClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	remaining, err = strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
	if err != nil {
		t.Fatalf("%d without X-RateLimit-Remaining", resp.StatusCode)
	}
	return resp.StatusCode, remaining
}

type readyBody struct {
	Status  string                    `json:"status"`
	Failing []string                  `json:"failing"`
	Checks  map[string]map[string]any `json:"checks"`
}

func ready(t *testing.T, base string) (int, readyBody) {
	t.Helper()
	resp, err := rateClient.Get(base + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body readyBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// Acceptance 2 of the scale-out issue: two gateway processes share a real redis-server. When
// Redis is killed the requests keep succeeding (each replica falls back to its own limits and
// logs it loudly, once), /health/ready reports the outage naming redis, and once Redis is back
// the limits are shared again: the two replicas together let exactly one quota through.
func TestRedisOutageKeepsServingAndRecovers(t *testing.T) {
	rds := redistest.Start(t)
	bin := buildBinary(t)
	const quota = 6
	replicas := startReplicas(t, bin, 2, "--redis-url", rds.URL(), "--rate-limits", fmt.Sprintf("free=%d/h", quota))
	for i, p := range replicas {
		if status, body := ready(t, p.url); status != http.StatusOK || len(body.Failing) != 0 {
			t.Fatalf("replica %d not ready with Redis up: %d %+v", i, status, body)
		}
	}

	rds.Stop()
	for i, p := range replicas {
		for n := range 3 {
			status, remaining := chatAs(t, p.url, "198.51.100.1")
			// Each replica counts on its own now: 3 each, never refused.
			if status != http.StatusOK || remaining != quota-1-n {
				t.Fatalf("replica %d request %d with Redis down: %d, remaining %d", i, n+1, status, remaining)
			}
		}
		status, body := ready(t, p.url)
		if status != http.StatusServiceUnavailable || body.Status != "not_ready" || !slices.Contains(body.Failing, "redis") || body.Checks["redis"]["ok"] != false {
			t.Fatalf("replica %d readiness with Redis down: %d %+v", i, status, body)
		}
		if msg, _ := body.Checks["redis"]["error"].(string); !strings.Contains(msg, rds.Addr) {
			t.Errorf("replica %d: the redis check should say which Redis: %q", i, msg)
		}
	}

	rds.Restart()
	for i, p := range replicas {
		waitUntil(t, fmt.Sprintf("replica %d ready again", i), func() bool { status, _ := ready(t, p.url); return status == http.StatusOK })
	}
	// Each limiter probes Redis again at most once a second while it thinks it down. Wait until
	// both count in Redis: a fresh caller's second request, on the other replica, then sees
	// the first one.
	probe := 0
	waitUntil(t, "both replicas counting in Redis again", func() bool {
		probe++
		ip := fmt.Sprintf("203.0.113.%d", probe)
		_, first := chatAs(t, replicas[0].url, ip)
		_, second := chatAs(t, replicas[1].url, ip)
		return first == quota-1 && second == quota-2
	})

	// Shared again: one quota for the two replicas together.
	allowed := 0
	for i := range 2 * quota {
		status, remaining := chatAs(t, replicas[i%2].url, "192.0.2.77")
		switch status {
		case http.StatusOK:
			if remaining != quota-1-allowed {
				t.Fatalf("request %d allowed with %d remaining after %d allowed: not shared", i+1, remaining, allowed)
			}
			allowed++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("request %d: %d", i+1, status)
		}
	}
	if allowed != quota {
		t.Fatalf("the two replicas let %d through after Redis came back, want exactly the shared quota of %d", allowed, quota)
	}

	for i, p := range replicas {
		p.stop(t)
		logs := p.logs.String()
		if n := strings.Count(logs, "rate limiter: redis unavailable"); n != 1 {
			t.Errorf("replica %d logged the outage %d times, want once (loudly, not per request):\n%s", i, n, logs)
		}
		if !strings.Contains(logs, "redis answers again") {
			t.Errorf("replica %d did not log the recovery:\n%s", i, logs)
		}
	}
}

// waitUntil polls cond until it holds, failing after 20 s: for a recovery that no event
// announces (a reconnect, a limiter's next probe).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20 s", what)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
}
