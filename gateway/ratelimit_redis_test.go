package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session/redistest"
	"github.com/redis/go-redis/v9"
)

func redisLimiter(t *testing.T, client redis.Scripter, cfg gateway.RedisRateLimiterConfig) *gateway.RedisRateLimiter {
	t.Helper()
	cfg.Client = client
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := gateway.NewRedisRateLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The Redis limiter keeps the same contract as the memory one, on a clock the test moves.
func TestRedisLimiterQuotaRefillRetryAfter(t *testing.T) {
	srv := redistest.Start(t)
	clock := newFakeClock()
	checkQuotaRefillRetryAfter(t, redisLimiter(t, srv.Client(t), gateway.RedisRateLimiterConfig{Clock: clock}), clock)
}

// Same clock, same requests: the Lua script and the Go code decide identically.
func TestRedisLimiterMatchesMemoryLimiter(t *testing.T) {
	srv := redistest.Start(t)
	clock := newFakeClock()
	rl := redisLimiter(t, srv.Client(t), gateway.RedisRateLimiterConfig{Clock: clock})
	ml := gateway.NewMemoryRateLimiter(clock)
	limits := []gateway.Limit{{4, time.Second}, {8, time.Hour}, {20, time.Hour}, {1, time.Minute}} // whole-millisecond intervals: Redis counts in µs
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		if rng.IntN(4) == 0 {
			clock.Advance(time.Duration(rng.IntN(120_000)) * time.Millisecond)
		}
		key := fmt.Sprintf("k%d", rng.IntN(len(limits)))
		limit := limits[key[1]-'0']
		want, got := allow(t, ml, key, limit), allow(t, rl, key, limit)
		if got.Allowed != want.Allowed || got.Remaining != want.Remaining || got.RetryAfter != want.RetryAfter || !got.ResetAt.Equal(want.ResetAt) {
			t.Fatalf("step %d %s %v:\n redis  %+v\n memory %+v", i, key, limit, got, want)
		}
	}
}

// On Redis's own clock: exactly the quota, an honest Retry-After, and a key that expires.
func TestRedisLimiterServerClock(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client(t)
	l := redisLimiter(t, client, gateway.RedisRateLimiterConfig{Prefix: "t:"})
	limit := gateway.Limit{Requests: 10, Per: time.Hour}
	before := time.Now()
	allowed := 0
	for range 25 {
		d := allow(t, l, "carol", limit)
		if d.Allowed {
			allowed++
			continue
		}
		if d.RetryAfter <= 0 || d.RetryAfter > 6*time.Minute || d.Remaining != 0 || d.ResetAt.Before(before.Add(59*time.Minute)) {
			t.Fatalf("refused: %+v", d)
		}
	}
	if allowed != 10 {
		t.Fatalf("%d passed, want 10", allowed)
	}
	ttl, err := client.PTTL(context.Background(), "t:carol").Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("the key must expire when its quota is whole again: %v %v", ttl, err)
	}
}

// Several limiters (as in several replicas), each with its own connections, hammer one key
// concurrently: exactly the quota passes.
func TestRedisLimiterConcurrentExactAcrossClients(t *testing.T) {
	srv := redistest.Start(t)
	limit := gateway.Limit{Requests: 150, Per: time.Hour}
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		l := redisLimiter(t, srv.Client(t), gateway.RedisRateLimiterConfig{})
		for range 20 {
			wg.Go(func() {
				for range 10 {
					d, err := l.Allow(context.Background(), "shared", limit)
					switch {
					case err != nil:
						t.Error(err)
					case d.Allowed:
						allowed.Add(1)
					default:
						refused.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if allowed.Load() != 150 || refused.Load() != 450 {
		t.Fatalf("allowed %d refused %d, want exactly 150 and 450", allowed.Load(), refused.Load())
	}
}

// Redis down: fail open to the fallback (per-replica memory) limiter, logged once; Redis back:
// counted in Redis again.
func TestRedisLimiterFailsOpenToFallback(t *testing.T) {
	srv := redistest.Start(t)
	clock := newFakeClock()
	var logs syncBuffer
	fallback := gateway.NewMemoryRateLimiter(clock)
	l := redisLimiter(t, srv.Client(t), gateway.RedisRateLimiterConfig{
		Clock: clock, Fallback: fallback, Timeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	limit := gateway.Limit{Requests: 3, Per: time.Hour}
	for range 3 {
		allow(t, l, "dave", limit)
	}
	if d := allow(t, l, "dave", limit); d.Allowed {
		t.Fatalf("the Redis quota is spent: %+v", d)
	}

	srv.Stop()
	for i := range 5 {
		d := allow(t, l, "dave", limit) // no error: the fallback decides
		if d.Allowed != (i < 3) {
			t.Fatalf("fallback request %d: %+v", i+1, d)
		}
	}
	if fallback.Len() != 1 {
		t.Fatal("the fallback did not count")
	}
	if n := strings.Count(logs.String(), "redis unavailable"); n != 1 || !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("want one warning for the outage, got:\n%s", logs.String())
	}

	srv.Restart() // empty, as after a crash without persistence
	clock.Advance(time.Second)
	if d := allow(t, l, "erin", limit); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("after recovery: %+v", d)
	}
	if fallback.Len() != 1 {
		t.Fatal("after recovery the fallback must not count")
	}
	if !strings.Contains(logs.String(), "redis answers again") {
		t.Fatalf("the recovery is not logged:\n%s", logs.String())
	}

	// Without a fallback the limiter says so, and the gateway lets requests through.
	srv.Stop()
	bare := redisLimiter(t, srv.Client(t), gateway.RedisRateLimiterConfig{Clock: clock, Timeout: 2 * time.Second})
	if _, err := bare.Allow(context.Background(), "frank", limit); !errors.Is(err, gateway.ErrRateLimiterDown) {
		t.Fatalf("want ErrRateLimiterDown, got %v", err)
	}
}

// The gateway fails open when its limiter cannot decide: the request is served, unlimited.
func TestRateLimitFailsOpenWhenRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	l := redisLimiter(t, srv.Client(t), gateway.RedisRateLimiterConfig{Timeout: 2 * time.Second})
	g := startGateway(t, nil, func(c *gateway.Config) {
		c.RateLimiter = l
		c.RateLimits = map[string]gateway.Limit{"free": {Requests: 1, Per: time.Hour}}
	})
	if resp, _ := post(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`, nil); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("first: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := post(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`, nil); resp.StatusCode != 429 {
		t.Fatalf("second: %d", resp.StatusCode)
	}
	srv.Stop()
	for range 3 {
		if resp, body := post(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`, nil); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("with Redis down: %d %v %s", resp.StatusCode, resp.Header, body)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
