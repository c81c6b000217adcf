package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
)

// fakeClock is a session.Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func allow(t *testing.T, l gateway.RateLimiter, key string, limit gateway.Limit) gateway.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key, limit)
	if err != nil {
		t.Fatalf("allow %s: %v", key, err)
	}
	return d
}

// checkQuotaRefillRetryAfter is the contract every limiter keeps, on a clock the test moves.
func checkQuotaRefillRetryAfter(t *testing.T, l gateway.RateLimiter, clock *fakeClock) {
	limit := gateway.Limit{Requests: 5, Per: time.Hour} // one request every 12 minutes
	start := clock.Now()
	for i := range 5 {
		d := allow(t, l, "alice", limit)
		if !d.Allowed || d.Limit != 5 || d.Remaining != 4-i || d.RetryAfter != 0 {
			t.Fatalf("request %d: %+v", i+1, d)
		}
		if want := start.Add(time.Duration(i+1) * 12 * time.Minute); !d.ResetAt.Equal(want) {
			t.Fatalf("request %d: reset at %v, want %v", i+1, d.ResetAt, want)
		}
	}
	// The quota is spent: refused, told to wait exactly one interval, and refusals are free.
	for range 3 {
		d := allow(t, l, "alice", limit)
		if d.Allowed || d.Remaining != 0 || d.RetryAfter != 12*time.Minute || !d.ResetAt.Equal(start.Add(time.Hour)) {
			t.Fatalf("over the quota: %+v", d)
		}
	}
	// One interval minus a millisecond is not enough; Retry-After counts down exactly.
	clock.Advance(12*time.Minute - time.Millisecond)
	if d := allow(t, l, "alice", limit); d.Allowed || d.RetryAfter != time.Millisecond {
		t.Fatalf("a millisecond early: %+v", d)
	}
	clock.Advance(time.Millisecond)
	if d := allow(t, l, "alice", limit); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after Retry-After: %+v", d)
	}
	if d := allow(t, l, "alice", limit); d.Allowed || d.RetryAfter != 12*time.Minute {
		t.Fatalf("one refilled request only: %+v", d)
	}
	// A whole period later the whole quota is back, not more.
	clock.Advance(2 * time.Hour)
	n := 0
	for range 8 {
		if allow(t, l, "alice", limit).Allowed {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("after a long pause %d requests passed, want the quota of 5", n)
	}
	// Keys are independent: bob has his whole quota; alice is still out.
	for i := range 5 {
		if d := allow(t, l, "bob", limit); !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("bob %d: %+v", i+1, d)
		}
	}
	if allow(t, l, "alice", limit).Allowed || allow(t, l, "bob", limit).Allowed {
		t.Fatal("both are out of quota")
	}
}

func TestMemoryLimiterQuotaRefillRetryAfter(t *testing.T) {
	clock := newFakeClock()
	checkQuotaRefillRetryAfter(t, gateway.NewMemoryRateLimiter(clock), clock)
}

// Exactly the quota fits in a burst even when the period does not divide by it.
func TestMemoryLimiterUnevenQuota(t *testing.T) {
	clock := newFakeClock()
	l := gateway.NewMemoryRateLimiter(clock)
	for _, limit := range []gateway.Limit{{7, time.Hour}, {3, time.Second}, {1, time.Minute}, {10000, time.Hour}, {1000, time.Nanosecond * 10}} {
		n := 0
		key := limit.String()
		for range limit.Requests + 5 {
			if allow(t, l, key, limit).Allowed {
				n++
			}
		}
		if n != limit.Requests {
			t.Errorf("%v: %d passed", limit, n)
		}
	}
	if _, err := l.Allow(context.Background(), "k", gateway.Limit{Requests: 0, Per: time.Hour}); err == nil {
		t.Error("a zero quota must be refused as a configuration error")
	}
}

// Keys whose quota is whole again are dropped, so memory follows the active callers.
func TestMemoryLimiterDropsExpiredKeys(t *testing.T) {
	clock := newFakeClock()
	l := gateway.NewMemoryRateLimiter(clock)
	limit := gateway.Limit{Requests: 20, Per: time.Hour}
	for i := range 5000 {
		allow(t, l, fmt.Sprintf("ip:10.0.%d.%d", i/256, i%256), limit)
	}
	if n := l.Len(); n < 2048 {
		t.Fatalf("keys within their period must stay: %d", n)
	}
	// One request fills the bucket for one interval (3 minutes); after that the key is gone.
	clock.Advance(3*time.Minute + time.Second)
	allow(t, l, "ip:192.0.2.1", limit)
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys left after every quota refilled, want 1", n)
	}
	// A key still inside its period is kept, with its count.
	for range 20 {
		allow(t, l, "busy", limit)
	}
	clock.Advance(2 * time.Minute)
	allow(t, l, "other", limit)
	if d := allow(t, l, "busy", limit); d.Allowed {
		t.Fatalf("the sweep dropped a key still limited: %+v", d)
	}
}

// Many goroutines on one key: exactly the quota passes.
func TestMemoryLimiterConcurrentExact(t *testing.T) {
	l := gateway.NewMemoryRateLimiter(newFakeClock())
	limit := gateway.Limit{Requests: 1000, Per: time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 50 {
				if d, err := l.Allow(context.Background(), "shared", limit); err == nil && d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 1000 {
		t.Fatalf("%d of 3200 passed, want exactly 1000", n)
	}
}

func TestParseRateLimits(t *testing.T) {
	got, err := gateway.ParseRateLimits("free=15/h, paid = 100/m,team=5/90s,daily=100/d")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]gateway.Limit{
		"free": {15, time.Hour}, "paid": {100, time.Minute}, "premium": {10000, time.Hour},
		"team": {5, 90 * time.Second}, "daily": {100, 24 * time.Hour},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for plan, l := range want {
		if got[plan] != l {
			t.Errorf("%s: %v, want %v", plan, got[plan], l)
		}
	}
	defaults, err := gateway.ParseRateLimits("")
	if err != nil || gateway.FormatRateLimits(defaults) != "free=20/h,paid=1000/h,premium=10000/h" {
		t.Fatalf("defaults: %v %v", gateway.FormatRateLimits(defaults), err)
	}
	round, err := gateway.ParseRateLimits(gateway.FormatRateLimits(got))
	if err != nil || gateway.FormatRateLimits(round) != gateway.FormatRateLimits(got) {
		t.Fatalf("round trip: %v %v", round, err)
	}
	for _, bad := range []string{"free", "free=20", "free=0/h", "free=-1/h", "free=x/h", "=5/h", "free=5/fortnight", "free=5/-1s"} {
		if _, err := gateway.ParseRateLimits(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// limitedGateway is a gateway whose memory limiter runs on a clock the test moves.
func limitedGateway(t *testing.T, limits string, opts ...option) (*testGateway, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	plans, err := gateway.ParseRateLimits(limits)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]option{func(c *gateway.Config) {
		c.RateLimiter = gateway.NewMemoryRateLimiter(clock)
		c.RateLimits = plans
	}}, opts...)
	return startGateway(t, nil, all...), clock
}

func post(t *testing.T, url, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

func headerInt(t *testing.T, resp *http.Response, name string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(resp.Header.Get(name), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q is not an integer (%v)", name, resp.Header.Get(name), resp.Header)
	}
	return v
}

// The chat routes answer with X-RateLimit-* headers; over the quota they answer 429 with
// Retry-After and the error envelope, for the JSON and the SSE route alike.
func TestChatRateLimitedWithHeadersAndEnvelope(t *testing.T) {
	g, clock := limitedGateway(t, "free=3/h")
	chat := `{"agentId":"fam","message":"Hello!"}`
	for i := range 3 {
		// A different userId each time: the body is not trusted for limits.
		resp, body := post(t, g.URL+"/api/v2/chat", fmt.Sprintf(`{"agentId":"fam","message":"Hello!","userId":"u%d"}`, i), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, body)
		}
		if headerInt(t, resp, "X-RateLimit-Limit") != 3 || headerInt(t, resp, "X-RateLimit-Remaining") != int64(2-i) {
			t.Fatalf("request %d headers: %v", i+1, resp.Header)
		}
		if reset := headerInt(t, resp, "X-RateLimit-Reset"); reset != clock.Now().Add(time.Duration(i+1)*20*time.Minute).Unix() {
			t.Fatalf("request %d reset %d", i+1, reset)
		}
	}
	resp, env := postJSON(t, g.URL+"/api/v2/chat", chat)
	e, _ := env["error"].(map[string]any)
	if resp.StatusCode != http.StatusTooManyRequests || e["code"] != gateway.CodeRateLimited || e["message"] == "" || e["requestId"] == "" || e["requestId"] != resp.Header.Get("X-Request-Id") {
		t.Fatalf("over the quota: %d %v", resp.StatusCode, env)
	}
	if resp.Header.Get("Retry-After") != "1200" || headerInt(t, resp, "X-RateLimit-Remaining") != 0 || headerInt(t, resp, "X-RateLimit-Limit") != 3 ||
		headerInt(t, resp, "X-RateLimit-Reset") != clock.Now().Add(time.Hour).Unix() {
		t.Fatalf("429 headers: %v", resp.Header)
	}
	// The stream route shares the caller's quota and refuses before the stream opens.
	resp, body := post(t, g.URL+"/api/v2/chat/stream", chat, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1200" || !strings.Contains(body, `"code":"rate_limited"`) {
		t.Fatalf("stream over the quota: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// Other routes are not limited and carry no headers.
	if resp, _ := getJSON(t, g.URL+"/api/v2/agents"); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "" {
		t.Fatalf("agents: %d %v", resp.StatusCode, resp.Header)
	}
	// Retry-After is honest: one interval later the stream opens, with the headers.
	clock.Advance(20*time.Minute - time.Second)
	if resp, _ := post(t, g.URL+"/api/v2/chat/stream", chat, nil); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a second early: %d %v", resp.StatusCode, resp.Header)
	}
	clock.Advance(time.Second)
	stream := openStream(t, context.Background(), g.URL+"/api/v2/chat/stream", chat)
	defer stream.Body.Close()
	if stream.Header.Get("X-RateLimit-Remaining") != "0" || stream.Header.Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("stream headers: %v", stream.Header)
	}
	events := newSSEReader(stream.Body)
	for {
		ev, err := events.next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Name == "done" {
			break
		}
	}
}

// The OpenAI-compatible completions route goes through the same limit.
func TestChatCompletionsRateLimited(t *testing.T) {
	g, _ := limitedGateway(t, "free=1/h")
	body := `{"model":"fam","messages":[{"role":"user","content":"Hello!"}]}`
	resp, out := post(t, g.URL+"/v1/chat/completions", body, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "1" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("first: %d %v %s", resp.StatusCode, resp.Header, out)
	}
	resp, out = post(t, g.URL+"/v1/chat/completions", body, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3600" || !strings.Contains(out, "rate_limited") {
		t.Fatalf("second: %d %v %s", resp.StatusCode, resp.Header, out)
	}
}

// Config.Identify is where real authentication plugs in: its key and plan pick the quota.
func TestRateLimitIdentifyHookAndPlans(t *testing.T) {
	g, _ := limitedGateway(t, "free=1/h,paid=3/h", func(c *gateway.Config) {
		c.Identify = func(r *http.Request) (string, string) {
			return "user:" + r.Header.Get("X-Test-User"), r.Header.Get("X-Test-Plan")
		}
	})
	passed := func(user, plan string) int {
		n := 0
		for range 6 {
			resp, _ := post(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`, http.Header{"X-Test-User": {user}, "X-Test-Plan": {plan}})
			if resp.StatusCode == 200 {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		user, plan string
		want       int
	}{{"ann", "free", 1}, {"bea", "paid", 3}, {"cid", "gold", 1}, {"dan", "premium", 6}} {
		if got := passed(tc.user, tc.plan); got != tc.want {
			t.Errorf("%s on %s: %d passed, want %d", tc.user, tc.plan, got, tc.want)
		}
	}
}

// By default the key is the client IP. X-Forwarded-For counts only from a trusted proxy
// (loopback or a private network, as here), so a client on the internet cannot spoof it.
func TestRateLimitDefaultIdentityIsTheClientIP(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = "203.0.113.9:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if key, plan := gateway.IdentifyByIP(r); key != "ip:203.0.113.9" || plan != gateway.PlanFree {
		t.Fatalf("spoofed header from the internet: %s %s", key, plan)
	}
	r.RemoteAddr = "10.0.0.2:5555" // a load balancer
	if key, _ := gateway.IdentifyByIP(r); key != "ip:198.51.100.1" {
		t.Fatalf("behind a proxy: %s", key)
	}

	g, _ := limitedGateway(t, "free=1/h")
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		xff := http.Header{"X-Forwarded-For": {ip}}
		if resp, _ := post(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`, xff); resp.StatusCode != 200 {
			t.Fatalf("%s first: %d", ip, resp.StatusCode)
		}
		if resp, _ := post(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`, xff); resp.StatusCode != 429 {
			t.Fatalf("%s second: %d", ip, resp.StatusCode)
		}
	}
}

// Without a limiter nothing is limited and no header is sent.
func TestNoRateLimiterMeansNoLimits(t *testing.T) {
	g := startGateway(t, nil)
	for range 25 {
		resp, body := post(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`, nil)
		if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
	}
}

// Each WebSocket text turn counts; a refused turn gets a rate_limited error frame with a
// retryAfter hint and the connection stays usable.
func TestWebSocketTurnsRateLimited(t *testing.T) {
	g, clock := limitedGateway(t, "free=2/h")
	c := dialWS(t, g, nil)
	// Frames refused for another reason do not use the quota.
	c.send(map[string]any{"type": "text", "id": "early", "text": "hi"})
	c.expectError(gateway.CodeNotStarted)
	c.send(map[string]any{"type": "session.start", "id": "s", "agentId": "fam"})
	c.expect("session.started")
	for _, id := range []string{"t1", "t2"} {
		if _, done := c.turn(id, "Hello!"); done["id"] != id {
			t.Fatalf("turn %s: %v", id, done)
		}
	}
	c.send(map[string]any{"type": "text", "id": "t3", "text": "Hello!"})
	f := c.expect("error")
	if f["code"] != gateway.CodeRateLimited || f["id"] != "t3" || f["retryAfter"] != float64(1800) || f["message"] == "" {
		t.Fatalf("over the quota: %v", f)
	}
	c.send(map[string]any{"type": "ping", "id": "p"})
	if f := c.expect("pong"); f["id"] != "p" {
		t.Fatalf("pong: %v", f)
	}
	clock.Advance(30 * time.Minute)
	if _, done := c.turn("t4", "what is 2 + 2?"); done["id"] != "t4" {
		t.Fatalf("after retryAfter: %v", done)
	}
	c.send(map[string]any{"type": "text", "id": "t5", "text": "again"})
	c.expectError(gateway.CodeRateLimited)
}
