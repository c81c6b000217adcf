package session

import (
	"context"
	"errors"
	"time"
)

// ErrKeyNotFound is returned by KV.Get for a missing or expired key.
var ErrKeyNotFound = errors.New("kv: key not found")

// KV is a small key-value store with expiry: caches, counters, short-lived state. The embedded
// default lives in process memory; Redis serves several replicas.
type KV interface {
	// Get returns the value of key, or ErrKeyNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key; ttl <= 0 means it never expires.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds delta to the integer at key (0 if missing) and returns the new value. A ttl > 0
	// is applied when the key is created.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}
