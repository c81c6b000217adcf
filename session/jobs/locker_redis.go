package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisLockerConfig configures a RedisLocker.
type RedisLockerConfig struct {
	// Client reaches the Redis the replicas share. Required.
	Client redis.UniversalClient
	// Prefix starts every lock's key. Default "dartmouth:lock:".
	Prefix string
	// Ticker paces the renewals of a held lock (every third of its ttl); stop releases it.
	// Default a time.Ticker. Tests drive renewals with their own channel.
	Ticker func(d time.Duration) (ticks <-chan time.Time, stop func())
	// Logger reports a lock lost while held. Default slog.Default().
	Logger *slog.Logger
}

// RedisLocker is the Locker replicas share through Redis: SET NX PX with a random token. A
// held lock is renewed every third of its ttl until unlocked, so a long run keeps it while a
// crashed holder's lock expires within ttl. Renewal and release act only while the key still
// holds the holder's token (a Lua script checks and acts in one step), so a holder whose
// lock expired can never release or extend the lock someone else took since.
type RedisLocker struct {
	cfg RedisLockerConfig
}

var _ Locker = (*RedisLocker)(nil)

// NewRedisLocker checks the config and fills defaults.
func NewRedisLocker(cfg RedisLockerConfig) (*RedisLocker, error) {
	if cfg.Client == nil {
		return nil, errors.New("redis locker: a client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "dartmouth:lock:"
	}
	if cfg.Ticker == nil {
		cfg.Ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &RedisLocker{cfg: cfg}, nil
}

var (
	// releaseScript deletes the lock if it still holds our token.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
	// extendScript resets the lock's expiry if it still holds our token.
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
)

// TryLock implements Locker.
func (r *RedisLocker) TryLock(ctx context.Context, name string, ttl time.Duration) (func(), bool, error) {
	if ttl < 3*time.Millisecond {
		return nil, false, fmt.Errorf("redis lock %s: ttl %v is too short", name, ttl)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	token := hex.EncodeToString(raw[:])
	key := r.cfg.Prefix + name
	ok, err := r.cfg.Client.SetArgs(ctx, key, token, redis.SetArgs{Mode: "NX", TTL: ttl}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil // NX refused: someone holds it
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis lock %s: %w", name, err)
	}
	if ok != "OK" {
		return nil, false, nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go r.renew(key, token, ttl, stop, done)
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			close(stop)
			<-done
			// Released even when the caller's context has ended: otherwise the lock would
			// block the other replicas until it expires.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := releaseScript.Run(rctx, r.cfg.Client, []string{key}, token).Err(); err != nil {
				r.cfg.Logger.Warn("redis lock: release failed; it expires by itself", "lock", name, "ttl", ttl, "err", err)
			}
		})
	}
	return unlock, true, nil
}

// renew extends the lock every third of its ttl until stop closes. A renewal that finds
// another token means the lock was lost (Redis lost the key, or this process stalled past
// ttl): it is logged, and renewals stop.
func (r *RedisLocker) renew(key, token string, ttl time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ticks, stopTicker := r.cfg.Ticker(ttl / 3)
	defer stopTicker()
	for {
		select {
		case <-stop:
			return
		case <-ticks:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		n, err := extendScript.Run(ctx, r.cfg.Client, []string{key}, token, ttl.Milliseconds()).Int64()
		cancel()
		switch {
		case err != nil:
			// Redis unreachable: try again at the next tick, while the key may still live.
			r.cfg.Logger.Warn("redis lock: renewal failed", "lock", key, "err", err)
		case n == 0:
			r.cfg.Logger.Error("redis lock: lost while held (it expired or was taken); the job may now run twice", "lock", key)
			return
		}
	}
}
