package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/redistest"
)

// buildBinary builds the real gateway into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dartmouth")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// quietEnv is the environment without settings that would change the answers (a real model
// key, a Redis URL, other limits).
func quietEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "DARTMOUTH_") || strings.HasPrefix(name, "OPENAI_") || strings.HasPrefix(name, "ANTHROPIC_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startReplicas starts n gateways from bin, each with its own data folder.
func startReplicas(t *testing.T, bin string, n int, extra ...string) []*process {
	t.Helper()
	var out []*process
	for i := range n {
		args := append([]string{"--addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", filepath.Join(t.TempDir(), fmt.Sprintf("replica%d", i))}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Env = quietEnv()
		out = append(out, start(t, cmd))
	}
	return out
}

type limitedReply struct {
	status                  int
	limit, remaining, reset int64
	retryAfter              string
	code, requestID         string
}

var rateClient = &http.Client{Timeout: 30 * time.Second}

func limitedChat(t *testing.T, base string) limitedReply {
	t.Helper()
	resp, err := rateClient.Post(base+"/api/v2/chat", "application/json", strings.NewReader(`{"agentId":"fam","message":"what is 2 + 2?"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	num := func(name string) int64 {
		v, err := strconv.ParseInt(resp.Header.Get(name), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q (%d %s)", name, resp.Header.Get(name), resp.StatusCode, raw)
		}
		return v
	}
	r := limitedReply{status: resp.StatusCode, limit: num("X-RateLimit-Limit"), remaining: num("X-RateLimit-Remaining"), reset: num("X-RateLimit-Reset"), retryAfter: resp.Header.Get("Retry-After")}
	if r.status != http.StatusOK {
		var env struct {
			Error struct{ Code, Message, RequestID string } `json:"error"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%d is not the error envelope: %s", r.status, raw)
		}
		r.code, r.requestID = env.Error.Code, env.Error.RequestID
	}
	return r
}

func readiness(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	resp, err := rateClient.Get(base + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]any `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body.Checks
}

// The acceptance test of the limits: three gateway processes share one Redis and one client
// sends to them in turn. Exactly the quota passes in total; the rest get 429 with Retry-After
// and the X-RateLimit-* headers. When Redis dies the replicas fail open to their own memory
// limiters and report the outage on /health/ready.
func TestRateLimitExactAcrossThreeReplicasWithRedis(t *testing.T) {
	rds := redistest.Start(t)
	bin := buildBinary(t)
	replicas := startReplicas(t, bin, 3, "--redis-url", rds.URL(), "--rate-limits", "free=15/h")
	for i, p := range replicas {
		status, checks := readiness(t, p.url)
		if redis, _ := checks["redis"].(map[string]any); status != 200 || redis["ok"] != true {
			t.Fatalf("replica %d not ready with Redis: %d %v", i, status, checks)
		}
	}

	const quota, sent = 15, 45
	perReplica := make([]int, len(replicas))
	allowed, refused := 0, 0
	for i := range sent {
		start := time.Now()
		r := limitedChat(t, replicas[i%len(replicas)].url)
		if r.limit != quota {
			t.Fatalf("request %d: X-RateLimit-Limit %d", i+1, r.limit)
		}
		hourLater := start.Add(time.Hour).Unix() + 1
		switch r.status {
		case http.StatusOK:
			// Shared counts: the remaining quota goes down by one whichever replica answers.
			if r.remaining != int64(quota-1-allowed) || r.retryAfter != "" || r.reset < start.Unix() || r.reset > hourLater {
				t.Fatalf("request %d allowed with %+v after %d allowed", i+1, r, allowed)
			}
			allowed++
			perReplica[i%len(replicas)]++
		case http.StatusTooManyRequests:
			secs, err := strconv.Atoi(r.retryAfter)
			// One request every 4 minutes refills; Retry-After is whole seconds, rounded up.
			if err != nil || secs < 1 || secs > 240 || r.remaining != 0 || r.code != "rate_limited" || r.requestID == "" || r.reset < start.Unix() || r.reset > hourLater {
				t.Fatalf("request %d refused with %+v", i+1, r)
			}
			refused++
		default:
			t.Fatalf("request %d: status %d", i+1, r.status)
		}
	}
	t.Logf("with Redis: %d allowed (per replica %v), %d refused of %d", allowed, perReplica, refused, sent)
	if allowed != quota || refused != sent-quota {
		t.Fatalf("allowed %d, refused %d; want exactly %d and %d", allowed, refused, quota, sent-quota)
	}

	// Redis goes away: requests are served, limited per replica; readiness says why.
	rds.Stop()
	for i, p := range replicas {
		r := limitedChat(t, p.url)
		if r.status != http.StatusOK || r.remaining != quota-1 {
			t.Fatalf("replica %d with Redis down: %+v", i, r)
		}
		status, checks := readiness(t, p.url)
		if redis, _ := checks["redis"].(map[string]any); status != http.StatusServiceUnavailable || redis["ok"] != false {
			t.Fatalf("replica %d readiness with Redis down: %d %v", i, status, checks)
		}
	}
	for i, p := range replicas {
		p.stop(t) // exit 0: the Redis client closes cleanly even with Redis gone
		if !strings.Contains(p.logs.String(), "redis unavailable") {
			t.Errorf("replica %d did not log the outage:\n%s", i, p.logs)
		}
	}
}

// Without Redis each process limits on its own: the quota holds per process.
func TestRateLimitPerProcessWithoutRedis(t *testing.T) {
	bin := buildBinary(t)
	replicas := startReplicas(t, bin, 3, "--rate-limits", "free=4/h")
	if status, checks := readiness(t, replicas[0].url); status != 200 || checks["redis"] != nil {
		t.Fatalf("no redis check without Redis: %d %v", status, checks)
	}
	perReplica := make([]int, len(replicas))
	for i := range 7 * len(replicas) {
		r := limitedChat(t, replicas[i%len(replicas)].url)
		switch r.status {
		case http.StatusOK:
			perReplica[i%len(replicas)]++
		case http.StatusTooManyRequests:
			if r.retryAfter != "900" || r.code != "rate_limited" {
				t.Fatalf("request %d refused with %+v", i+1, r)
			}
		default:
			t.Fatalf("request %d: %+v", i+1, r)
		}
	}
	t.Logf("without Redis: allowed per replica %v", perReplica)
	for i, n := range perReplica {
		if n != 4 {
			t.Fatalf("replica %d let %d through, want its own quota of 4 (%v)", i, n, perReplica)
		}
	}
	// --rate-limit=false turns the limits off.
	off := startReplicas(t, bin, 1, "--rate-limits", "free=1/h", "--rate-limit=false")[0]
	for range 3 {
		resp, err := rateClient.Post(off.url+"/api/v2/chat", "application/json", strings.NewReader(`{"agentId":"fam","message":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("limits off: %d %v", resp.StatusCode, resp.Header)
		}
	}
	for _, p := range append(replicas, off) {
		p.stop(t)
	}
}

func TestRateLimitSettings(t *testing.T) {
	c, err := parseConfig("t", nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "" || !c.RateLimit || c.RateLimits != "free=20/h,paid=1000/h,premium=10000/h" {
		t.Fatalf("defaults: %+v", c)
	}
	env := map[string]string{"DARTMOUTH_REDIS_URL": "redis://127.0.0.1:6379/2", "DARTMOUTH_RATE_LIMITS": "free=5/m", "DARTMOUTH_RATE_LIMIT": "false"}
	c, err = parseConfig("t", nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.RedisURL != "redis://127.0.0.1:6379/2" || c.RateLimit || c.RateLimits != "free=5/m" {
		t.Fatalf("from the environment: %+v %v", c, err)
	}
	c, err = parseConfig("t", []string{"--rate-limits", "paid=10/s", "--rate-limit=true"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || !c.RateLimit || c.RateLimits != "paid=10/s" {
		t.Fatalf("flags over the environment: %+v %v", c, err)
	}
	for name, bad := range map[string]map[string]string{
		"bad quota":  {"DARTMOUTH_RATE_LIMITS": "free=lots/h"},
		"bad period": {"DARTMOUTH_RATE_LIMITS": "free=5/fortnight"},
		"bad url":    {"DARTMOUTH_REDIS_URL": "http://example.com"},
		"bad bool":   {"DARTMOUTH_RATE_LIMIT": "maybe"},
	} {
		if _, err := parseConfig("t", nil, func(k string) string { return bad[k] }, io.Discard); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
