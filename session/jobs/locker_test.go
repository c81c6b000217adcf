package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"github.com/dartmouth-gw/dartmouth/session/redistest"
)

// lockerContract is what every Locker guarantees to two holders sharing it (a and b may be
// the same locker, or two replicas' lockers on the same backend).
func lockerContract(t *testing.T, a, b Locker) {
	ctx := t.Context()
	unlockA, ok, err := a.TryLock(ctx, "archive", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "archive", time.Minute); err != nil || ok {
		t.Fatalf("a second holder got the held lock (%v, %v)", ok, err)
	}
	unlockOther, ok, err := b.TryLock(ctx, "cleanup", time.Minute)
	if err != nil || !ok {
		t.Fatalf("another name is another lock: %v, %v", ok, err)
	}
	unlockOther()
	unlockA()
	unlockA() // idempotent
	unlockB, ok, err := b.TryLock(ctx, "archive", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock = %v, %v", ok, err)
	}
	// A stale unlock of a's (called twice above) must not release b's lock.
	unlockA()
	if _, ok, _ := a.TryLock(ctx, "archive", time.Minute); ok {
		t.Fatal("the lock was released by its previous holder's unlock")
	}
	unlockB()
}

func TestMemoryLocker(t *testing.T) {
	clock := newFakeClock()
	l := NewMemoryLocker(clock)
	lockerContract(t, l, l)
	// A holder that never unlocks loses the lock after ttl; its late unlock is harmless.
	stale, ok, _ := l.TryLock(t.Context(), "x", time.Minute)
	if !ok {
		t.Fatal("TryLock")
	}
	clock.Advance(time.Minute)
	fresh, ok, _ := l.TryLock(t.Context(), "x", time.Minute)
	if !ok {
		t.Fatal("an expired lock was not free")
	}
	stale()
	if _, ok, _ := l.TryLock(t.Context(), "x", time.Minute); ok {
		t.Fatal("the expired holder's unlock released the new holder's lock")
	}
	fresh()
}

func TestRedisLocker(t *testing.T) {
	srv := redistest.Start(t)
	newLocker := func(cfg RedisLockerConfig) *RedisLocker {
		cfg.Client = srv.Client(t)
		l, err := NewRedisLocker(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	t.Run("contract across two replicas", func(t *testing.T) {
		lockerContract(t, newLocker(RedisLockerConfig{}), newLocker(RedisLockerConfig{}))
	})

	t.Run("renewal keeps a long run's lock, with our token only", func(t *testing.T) {
		ticks, renewalsStopped := make(chan time.Time), make(chan struct{})
		l := newLocker(RedisLockerConfig{Prefix: "renew:", Ticker: func(time.Duration) (<-chan time.Time, func()) {
			return ticks, func() { close(renewalsStopped) }
		}})
		rdb := srv.Client(t)
		ctx := t.Context()
		unlock, ok, err := l.TryLock(ctx, "job", 30*time.Second)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		token := rdb.Get(ctx, "renew:job").Val()
		if len(token) != 32 {
			t.Fatalf("the key holds %q, want a random token", token)
		}
		// Shorten the key's life as if time had passed; a renewal sets it back to the ttl.
		rdb.PExpire(ctx, "renew:job", time.Second)
		ticks <- time.Now()
		ticks <- time.Now() // the first renewal has finished once the second tick is taken
		if ttl := rdb.PTTL(ctx, "renew:job").Val(); ttl < 20*time.Second {
			t.Fatalf("after a renewal the lock lives %v more, want about 30s", ttl)
		}
		// Someone else now holds the key (ours expired): no renewal or release may touch it.
		rdb.Set(ctx, "renew:job", "someone-else", time.Minute)
		select {
		case ticks <- time.Now(): // a renewal that finds the other token
		case <-renewalsStopped: // the renewal in flight found it already, and stopped
		}
		unlock()
		if got := rdb.Get(ctx, "renew:job").Val(); got != "someone-else" {
			t.Fatalf("a lost lock's release deleted another holder's key (now %q)", got)
		}
		if ttl := rdb.PTTL(ctx, "renew:job").Val(); ttl > time.Minute || ttl < 50*time.Second {
			t.Fatalf("a lost lock's renewal changed another holder's expiry: %v", ttl)
		}
	})

	t.Run("a crashed holder's lock expires", func(t *testing.T) {
		a := newLocker(RedisLockerConfig{Prefix: "crash:"})
		b := newLocker(RedisLockerConfig{Prefix: "crash:"})
		rdb := srv.Client(t)
		unlock, ok, _ := a.TryLock(t.Context(), "job", time.Minute)
		if !ok {
			t.Fatal("TryLock")
		}
		defer unlock()
		rdb.PExpire(t.Context(), "crash:job", time.Millisecond) // as if a's process died a minute ago
		eventually(t, "the key to expire", func() bool { return rdb.Exists(t.Context(), "crash:job").Val() == 0 })
		unlockB, ok, err := b.TryLock(t.Context(), "job", time.Minute)
		if err != nil || !ok {
			t.Fatalf("the expired lock was not free: %v %v", ok, err)
		}
		unlockB()
	})

	t.Run("redis down is an error, not a grant", func(t *testing.T) {
		down := redistest.Start(t)
		client := down.Client(t)
		l, _ := NewRedisLocker(RedisLockerConfig{Client: client})
		down.Stop()
		if _, ok, err := l.TryLock(t.Context(), "job", time.Minute); err == nil || ok {
			t.Fatalf("TryLock with Redis down = %v, %v; want an error", ok, err)
		}
		down.Restart()
		unlock, ok, err := l.TryLock(t.Context(), "job", time.Minute)
		if err != nil || !ok {
			t.Fatalf("TryLock after Redis came back = %v, %v", ok, err)
		}
		unlock()
	})
}

func TestPostgresLocker(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	replicaA := openPostgres(t, url, nil)
	replicaB := openPostgres(t, url, nil)
	a, err := NewPostgresLocker(replicaA.DB(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewPostgresLocker(replicaB.DB(), nil)
	t.Run("contract across two replicas", func(t *testing.T) { lockerContract(t, a, b) })
	t.Run("contract within one pool", func(t *testing.T) { lockerContract(t, a, a) })

	t.Run("a dead holder's connection takes its lock with it", func(t *testing.T) {
		ctx := t.Context()
		unlock, ok, err := a.TryLock(ctx, "job", time.Minute)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if _, ok, _ := b.TryLock(ctx, "job", time.Minute); ok {
			t.Fatal("b got a's lock")
		}
		// Kill the connection holding the lock, as a crash or a network cut would.
		var killed bool
		err = replicaB.DB().QueryRowContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = ($1::bigint & 4294967295)::oid`, advisoryKey("job")).Scan(&killed)
		if err != nil || !killed {
			t.Fatalf("terminate the holder: %v %v", killed, err)
		}
		var unlockB func()
		eventually(t, "the dead connection's lock to go", func() bool {
			var ok bool
			unlockB, ok, err = b.TryLock(ctx, "job", time.Minute)
			return err == nil && ok
		})
		unlockB()
		unlock() // a's release fails on its dead connection: logged, the connection discarded
		unlockA, ok, err := a.TryLock(context.Background(), "job", time.Minute)
		if err != nil || !ok {
			t.Fatalf("a's pool after its lock's connection died: %v %v", ok, err)
		}
		unlockA()
	})
}
