package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// rateLimiting is the wiring of the rate limits: counted in memory by default, in Redis when
// --redis-url is set, off with --rate-limit=false.
type rateLimiting struct {
	limiter gateway.RateLimiter // nil when limits are off
	plans   map[string]gateway.Limit
	checks  []gateway.HealthCheck
	redis   *redis.Client // nil without --redis-url
}

func (c *Config) validateRateLimits() error {
	if _, err := gateway.ParseRateLimits(c.RateLimits); err != nil {
		return fmt.Errorf("rate-limits: %w", err)
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			return fmt.Errorf("redis-url: %w", err)
		}
	}
	return nil
}

// redisReadyTimeout bounds the readiness check's PING.
const redisReadyTimeout = 500 * time.Millisecond

// newRateLimiting builds the limiter. With Redis, the counts are exact across every replica
// sharing it; when Redis does not answer, each replica fails open to its own memory limiter
// (see gateway.RedisRateLimiter) and /health/ready reports the "redis" check as failing.
// Close it after the server has shut down.
func newRateLimiting(ctx context.Context, cfg *Config, logger *slog.Logger) (*rateLimiting, error) {
	plans, err := gateway.ParseRateLimits(cfg.RateLimits)
	if err != nil {
		return nil, err
	}
	rl := &rateLimiting{plans: plans}
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("redis-url: %w", err)
		}
		// Maintenance notifications are a Redis Cloud/Enterprise feature; a self-hosted Redis
		// only answers the handshake with an error.
		opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		// A Redis that refuses connections is down: say so at once (the limiter then uses its
		// fallback, readiness fails) instead of redialling five times per command.
		opt.DialerRetries = 1
		redis.SetLogger(redisLogger{logger})
		rl.redis = redis.NewClient(opt)
		rl.checks = append(rl.checks, gateway.HealthCheck{Name: "redis", Check: func(ctx context.Context) error {
			// A Redis that takes longer than this is as good as down for the limiter (its own
			// timeout is 500ms): say so rather than hold the load balancer's probe.
			ctx, cancel := context.WithTimeout(ctx, redisReadyTimeout)
			defer cancel()
			if err := rl.redis.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis %s: %w", opt.Addr, err)
			}
			return nil
		}})
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = rl.redis.Ping(pingCtx).Err()
		cancel()
		if err != nil {
			logger.Warn("redis does not answer at start; rate limits fall back to this process's memory until it does", "addr", opt.Addr, "err", err)
		}
	}
	if !cfg.RateLimit {
		logger.Warn("rate limits are off (--rate-limit=false)")
		return rl, nil
	}
	memory := gateway.NewMemoryRateLimiter(nil)
	if rl.redis == nil {
		rl.limiter = memory
		logger.Info("rate limits", "store", "memory (per process)", "plans", gateway.FormatRateLimits(plans))
		return rl, nil
	}
	rl.limiter, err = gateway.NewRedisRateLimiter(gateway.RedisRateLimiterConfig{Client: rl.redis, Fallback: memory, Logger: logger})
	if err != nil {
		_ = rl.Close()
		return nil, err
	}
	logger.Info("rate limits", "store", "redis (shared by replicas)", "addr", rl.redis.Options().Addr, "plans", gateway.FormatRateLimits(plans))
	return rl, nil
}

// Close releases the Redis client, if any.
func (rl *rateLimiting) Close() error {
	if rl.redis == nil {
		return nil
	}
	return rl.redis.Close()
}

// redisLogger sends go-redis's own messages (dial failures and the like) to the structured log
// at debug level: the limiter logs the outage and the recovery itself.
type redisLogger struct{ log *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// broker carries user events (reminders) between the replicas through the same Redis; nil
// without one, so events reach this process's sessions only.
func (rl *rateLimiting) broker(logger *slog.Logger) gateway.Broker {
	if rl.redis == nil {
		return nil
	}
	return gateway.NewRedisBroker(rl.redis, "", logger)
}
