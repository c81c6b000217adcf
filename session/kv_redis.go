package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisKV is the KV on Redis, shared by every replica: caches, budget counters and summaries
// stay exact across processes.
type RedisKV struct {
	client redis.UniversalClient
	prefix string
}

var _ KV = (*RedisKV)(nil)

// NewRedisKV uses client; prefix (default "dartmouth:") keeps our keys apart from others'.
func NewRedisKV(client redis.UniversalClient, prefix string) *RedisKV {
	if prefix == "" {
		prefix = "dartmouth:"
	}
	return &RedisKV{client: client, prefix: prefix}
}

// Get implements KV.
func (r *RedisKV) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redis kv get: %w", err)
	}
	return b, nil
}

// Set implements KV.
func (r *RedisKV) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		ttl = 0
	}
	if err := r.client.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("redis kv set: %w", err)
	}
	return nil
}

// Delete implements KV.
func (r *RedisKV) Delete(ctx context.Context, key string) error {
	if err := r.client.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("redis kv delete: %w", err)
	}
	return nil
}

// incrScript adds to a counter and sets its expiry only when it creates it, in one step.
var incrScript = redis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v`)

// Incr implements KV.
func (r *RedisKV) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	n, err := incrScript.Run(ctx, r.client, []string{r.prefix + key}, delta, ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis kv incr %s: %w", key, err)
	}
	return n, nil
}

// Ping implements KV.
func (r *RedisKV) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
