package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/redis/go-redis/v9"
)

// RedisRateLimiter counts in Redis, so every replica sharing the Redis sees the same counts:
// one Lua script reads and updates a key's GCRA state atomically, on Redis's own clock
// (TIME), so replicas whose clocks drift still agree.
//
// Fail mode: fail open, bounded. When Redis does not answer (error or Timeout), the request is
// decided by Fallback, a per-replica memory limiter in the binary, so during an outage a caller
// gets at most one quota per replica instead of no limit or no service. The first failure is
// logged as a warning and the recovery as info; while Redis is down it is probed again at most
// once per RetryInterval, other requests go straight to the fallback. /health/ready reports
// the outage through its "redis" check.
type RedisRateLimiter struct {
	client   redis.Scripter
	prefix   string
	clock    session.Clock
	timeout  time.Duration
	retry    time.Duration
	fallback RateLimiter
	log      *slog.Logger

	mu      sync.Mutex
	down    bool
	probeAt time.Time
}

var _ RateLimiter = (*RedisRateLimiter)(nil)

// RedisRateLimiterConfig configures NewRedisRateLimiter.
type RedisRateLimiterConfig struct {
	// Client runs the script: a *redis.Client, *redis.ClusterClient or *redis.Ring. Required;
	// the caller owns it and closes it.
	Client redis.Scripter
	// Prefix starts every key. Default "dartmouth:ratelimit:".
	Prefix string
	// Clock, when set, replaces Redis's TIME as the script's clock. Only for tests: replicas
	// must share one clock, and Redis's is the one they share. Default nil (Redis TIME).
	Clock session.Clock
	// Timeout bounds one call to Redis before it counts as down. Default 500ms.
	Timeout time.Duration
	// RetryInterval is how often Redis is probed again while it is down. Default 1s.
	RetryInterval time.Duration
	// Fallback decides while Redis is down. Default nil: requests are let through
	// unlimited (Allow returns ErrRateLimiterDown and the gateway fails open).
	Fallback RateLimiter
	// Logger receives the outage and recovery. Default slog.Default().
	Logger *slog.Logger
}

// ErrRateLimiterDown is returned while Redis is down and no fallback is configured.
var ErrRateLimiterDown = errors.New("rate limiter: redis is unavailable")

// NewRedisRateLimiter returns a limiter on cfg.Client.
func NewRedisRateLimiter(cfg RedisRateLimiterConfig) (*RedisRateLimiter, error) {
	if cfg.Client == nil {
		return nil, errors.New("gateway: a redis client is required")
	}
	l := &RedisRateLimiter{client: cfg.Client, prefix: cfg.Prefix, clock: cfg.Clock, timeout: cfg.Timeout, retry: cfg.RetryInterval, fallback: cfg.Fallback, log: cfg.Logger}
	if l.prefix == "" {
		l.prefix = "dartmouth:ratelimit:"
	}
	if l.timeout <= 0 {
		l.timeout = 500 * time.Millisecond
	}
	if l.retry <= 0 {
		l.retry = time.Second
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l, nil
}

// gcraScript is gcra() in Lua, in microseconds (exact in a Lua double for dates until 2255).
// KEYS[1] the key; ARGV[1] interval (Per/Requests, µs, >= 1); ARGV[2] Requests; ARGV[3] now in
// µs, or "" for the server's TIME. Returns {allowed, slackµs, retryAfterµs, resetAfterµs}, where
// slack/interval is the number of requests remaining (divided in Go, in integers).
var gcraScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] ~= "" then
  now = tonumber(ARGV[3])
else
  -- Redis before 5 must be told to replicate the writes, not the script, after TIME.
  if redis.replicate_commands then pcall(redis.replicate_commands) end
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local window = interval * burst
local tat = tonumber(redis.call("GET", KEYS[1]) or "0") or 0
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - window
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call("SET", KEYS[1], string.format("%d", next_tat), "PX", math.ceil((next_tat - now) / 1000))
return {1, window - (next_tat - now), 0, next_tat - now}
`)

// Allow counts one request for key in Redis.
func (l *RedisRateLimiter) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	if err := limit.validate(); err != nil {
		return Decision{}, err
	}
	if !l.shouldTry() {
		return l.degraded(ctx, key, limit)
	}
	interval := max(limit.Per.Microseconds()/int64(limit.Requests), 1)
	nowArg := ""
	var now time.Time
	if l.clock != nil {
		now = l.clock.Now()
		nowArg = strconv.FormatInt(now.UnixMicro(), 10)
	}
	callCtx, cancel := context.WithTimeout(ctx, l.timeout)
	res, err := gcraScript.Run(callCtx, l.client, []string{l.prefix + key}, interval, limit.Requests, nowArg).Int64Slice()
	cancel()
	if err == nil && len(res) != 4 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Decision{}, ctx.Err() // the caller left; Redis is not to blame
		}
		l.failed(err)
		return l.degraded(ctx, key, limit)
	}
	l.recovered()
	if l.clock == nil {
		now = time.Now()
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      limit.Requests,
		Remaining:  int(res[1] / interval),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		ResetAt:    now.Add(time.Duration(res[3]) * time.Microsecond),
	}, nil
}

func (l *RedisRateLimiter) now() time.Time {
	if l.clock != nil {
		return l.clock.Now()
	}
	return time.Now()
}

// shouldTry is true while Redis is up, and once per RetryInterval while it is down.
func (l *RedisRateLimiter) shouldTry() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.down {
		return true
	}
	now := l.now()
	if now.Before(l.probeAt) {
		return false
	}
	l.probeAt = now.Add(l.retry)
	return true
}

func (l *RedisRateLimiter) failed(err error) {
	l.mu.Lock()
	wasDown := l.down
	l.down, l.probeAt = true, l.now().Add(l.retry)
	l.mu.Unlock()
	if wasDown {
		l.log.Debug("rate limiter: redis still unavailable", "err", err)
		return
	}
	mode := "failing open to the per-replica memory limiter"
	if l.fallback == nil {
		mode = "failing open: requests are not limited"
	}
	l.log.Warn("rate limiter: redis unavailable, "+mode+" until it answers", "err", err)
}

func (l *RedisRateLimiter) recovered() {
	l.mu.Lock()
	wasDown := l.down
	l.down = false
	l.mu.Unlock()
	if wasDown {
		l.log.Info("rate limiter: redis answers again; limits are shared across replicas again")
	}
}

func (l *RedisRateLimiter) degraded(ctx context.Context, key string, limit Limit) (Decision, error) {
	if l.fallback == nil {
		return Decision{}, ErrRateLimiterDown
	}
	return l.fallback.Allow(ctx, key, limit)
}
