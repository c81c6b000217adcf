package session_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/redistest"
)

// The same contract holds for the memory KV and the Redis KV.
func TestKVContract(t *testing.T) {
	srv := redistest.Start(t)
	stores := map[string]session.KV{
		"memory": session.NewMemoryKV(nil),
		"redis":  session.NewRedisKV(srv.Client(t), "test:"),
	}
	ctx := context.Background()
	for name, kv := range stores {
		t.Run(name, func(t *testing.T) {
			if _, err := kv.Get(ctx, "missing"); !errors.Is(err, session.ErrKeyNotFound) {
				t.Fatalf("missing key: %v", err)
			}
			if err := kv.Set(ctx, "k", []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if v, err := kv.Get(ctx, "k"); err != nil || string(v) != "v" {
				t.Fatalf("get %q %v", v, err)
			}
			if err := kv.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Get(ctx, "k"); !errors.Is(err, session.ErrKeyNotFound) {
				t.Fatal("deleted key still there")
			}
			if n, err := kv.Incr(ctx, "c", 5, time.Hour); err != nil || n != 5 {
				t.Fatalf("incr %d %v", n, err)
			}
			if n, _ := kv.Incr(ctx, "c", -2, time.Hour); n != 3 {
				t.Fatalf("incr -2 gave %d", n)
			}
			if err := kv.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			// Concurrent increments are exact.
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 25 {
						if _, err := kv.Incr(ctx, "many", 1, time.Hour); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			if raw, _ := kv.Get(ctx, "many"); string(raw) != "500" {
				t.Fatalf("concurrent incr total %s", raw)
			}
		})
	}
}

func TestRedisKVExpiry(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client(t)
	kv := session.NewRedisKV(client, "")
	ctx := context.Background()
	kv.Set(ctx, "ttl", []byte("x"), 10*time.Second)
	if ttl := client.PTTL(ctx, "dartmouth:ttl").Val(); ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("Set ttl %s", ttl)
	}
	kv.Incr(ctx, "ctr", 1, time.Minute)
	first := client.PTTL(ctx, "dartmouth:ctr").Val()
	kv.Incr(ctx, "ctr", 1, time.Hour) // an existing counter keeps its expiry
	if again := client.PTTL(ctx, "dartmouth:ctr").Val(); again > first || first <= 0 || first > time.Minute {
		t.Fatalf("incr ttl %s then %s", first, again)
	}
	kv.Set(ctx, "forever", []byte("x"), 0)
	if ttl := client.PTTL(ctx, "dartmouth:forever").Val(); ttl != -1 {
		t.Fatalf("ttl 0 must not expire, got %s", ttl)
	}
	srv.Stop()
	if err := kv.Ping(ctx); err == nil {
		t.Fatal("ping with redis down must fail")
	}
}
