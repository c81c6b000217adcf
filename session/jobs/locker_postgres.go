package jobs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"
)

// PostgresLocker is the Locker replicas share through PostgreSQL when there is no Redis:
// session-level advisory locks (pg_try_advisory_lock), each held on a connection of its own
// taken from the pool for as long as the lock is held. The ttl is not used: the lock lives as
// long as its connection, so the lock of a crashed replica goes when the server sees its
// connection close.
type PostgresLocker struct {
	db     *sql.DB
	logger *slog.Logger
}

var _ Locker = (*PostgresLocker)(nil)

// NewPostgresLocker uses db, a PostgreSQL pool (session.SQLStore.DB()); logger (nil:
// slog.Default()) reports failed releases.
func NewPostgresLocker(db *sql.DB, logger *slog.Logger) (*PostgresLocker, error) {
	if db == nil {
		return nil, errors.New("postgres locker: a database is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &PostgresLocker{db: db, logger: logger}, nil
}

// advisoryKey maps a lock name to the 64-bit key of an advisory lock. The prefix keeps job
// locks apart from the store's migration lock and other applications' locks.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("dartmouth:job:" + name))
	return int64(h.Sum64())
}

// TryLock implements Locker.
func (p *PostgresLocker) TryLock(ctx context.Context, name string, _ time.Duration) (func(), bool, error) {
	conn, err := p.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("postgres lock %s: %w", name, err)
	}
	key := advisoryKey(name)
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		discard(conn)
		return nil, false, fmt.Errorf("postgres lock %s: %w", name, err)
	}
	if !ok {
		_ = conn.Close()
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var released bool
			if err := conn.QueryRowContext(uctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil || !released {
				// The connection must not go back to the pool still holding the lock: closing
				// it makes the server release every lock it holds.
				p.logger.Warn("postgres lock: release failed; closing its connection", "lock", name, "err", err)
				discard(conn)
				return
			}
			_ = conn.Close()
		})
	}, true, nil
}

// discard closes the connection under conn instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
