package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// migrationLockKey names the PostgreSQL advisory lock the migrations run under: the bytes of
// "Dartmout", so it is unlikely to collide with another application's lock in a shared
// database.
const migrationLockKey int64 = 0x44617274_6d6f7574

var postgresDialect = dialect{
	name:                 "postgres",
	numberedPlaceholders: true,
	lockMigrations:       fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, migrationLockKey),
}

// ErrUnavailable marks a write that could not reach the database for as long as it was
// allowed to retry (its context, or PostgresConfig.WriteRetry): nothing was stored, and the
// caller should report the store as down (HTTP 503) rather than the request as bad.
var ErrUnavailable = errors.New("database unavailable")

// PostgresConfig configures OpenPostgres.
type PostgresConfig struct {
	// URL is the connection string, postgres://user:password@host:5432/dbname?sslmode=disable,
	// or any other form pgx accepts (key=value, PG* environment variables for what it leaves
	// out). Required.
	URL string
	// MaxConns bounds this process's open connections. Default 10.
	MaxConns int
	// MaxIdleTime closes connections unused for this long. Default 5m.
	MaxIdleTime time.Duration
	// WriteRetry is how long a write that must not be lost (a message, a cost) keeps retrying
	// through a lost connection or a restarting server, unless its context ends first.
	// Default 30s; negative tries once.
	WriteRetry time.Duration
	// Clock stamps records. Default SystemClock.
	Clock Clock
	// Logger reports writes retrying through an outage. Default slog.Default().
	Logger *slog.Logger
}

// OpenPostgres connects to PostgreSQL and applies the migrations (the same files as SQLite).
// Replicas starting together are safe: the migrations run under an advisory lock.
func OpenPostgres(ctx context.Context, cfg PostgresConfig) (*SQLStore, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres: empty URL")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10
	}
	if cfg.MaxIdleTime <= 0 {
		cfg.MaxIdleTime = 5 * time.Minute
	}
	switch {
	case cfg.WriteRetry == 0:
		cfg.WriteRetry = 30 * time.Second
	case cfg.WriteRetry < 0:
		cfg.WriteRetry = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	conn, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx masks the password
	}
	// Nothing is prepared: one round trip per statement, no statement cache to go stale
	// after a migration, and the store works behind a transaction-pooling PgBouncer.
	conn.DefaultQueryExecMode = pgx.QueryExecModeExec
	db := stdlib.OpenDB(*conn)
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxIdleTime(cfg.MaxIdleTime)
	s := &SQLStore{db: db, dialect: postgresDialect, clock: cfg.Clock, writeRetry: cfg.WriteRetry, logger: cfg.Logger}
	where := fmt.Sprintf("%s:%d/%s", conn.Host, conn.Port, conn.Database)
	if err := s.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres %s: %w", where, err)
	}
	if err := s.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres %s: %w", where, err)
	}
	return s, nil
}

// Dialect names the SQL engine under the store: "sqlite" or "postgres".
func (s *SQLStore) Dialect() string { return s.dialect.name }

// Backoff between attempts of a retried write: doubling from the first, capped at the last.
const (
	retryBackoffFirst = 50 * time.Millisecond
	retryBackoffMax   = 2 * time.Second
)

// retryWrite runs write until it succeeds, fails for another reason than a lost connection,
// or ctx or the store's write-retry budget ends. retry tells write it follows an attempt whose
// outcome is unknown (its connection died, perhaps after the commit), so a duplicate key of
// its own insert means it already landed. what names the write in logs.
func (s *SQLStore) retryWrite(ctx context.Context, what string, write func(retry bool) error) error {
	if s.writeRetry <= 0 {
		return write(false)
	}
	start := time.Now()
	backoff := retryBackoffFirst
	var lost error // the last connection error
	giveUp := func(attempt int, err error) error {
		took := time.Since(start).Round(time.Millisecond)
		if ctx.Err() != nil {
			return fmt.Errorf("%w: gave up after %d attempts in %v: %w: %w", ErrUnavailable, attempt, took, ctx.Err(), err)
		}
		return fmt.Errorf("%w: gave up after %d attempts in %v: %w", ErrUnavailable, attempt, took, err)
	}
	for attempt := 1; ; attempt++ {
		err := write(attempt > 1)
		switch {
		case err == nil:
			if lost != nil {
				s.logger.Info("database write went through after retrying", "write", what, "attempts", attempt, "took", time.Since(start).Round(time.Millisecond))
			}
			return nil
		case isConnectionError(err):
			lost = err
		case lost != nil && ctx.Err() != nil:
			// The context ended during a retry: the cause is still the lost connection.
			return giveUp(attempt, lost)
		default:
			return err
		}
		if ctx.Err() != nil {
			return giveUp(attempt, err)
		}
		// Full jitter: replicas that lost the database together do not retry in step.
		wait := retryBackoffFirst/2 + rand.N(backoff)
		if left := s.writeRetry - time.Since(start); wait > left {
			if left <= 0 {
				return giveUp(attempt, err)
			}
			wait = left
		}
		s.logger.Warn("database unreachable: retrying write", "write", what, "attempt", attempt, "wait", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return giveUp(attempt, err)
		case <-timer.C:
		}
		backoff = min(2*backoff, retryBackoffMax)
	}
}

// isConnectionError reports whether err means the database could not be reached or the
// connection was lost, rather than that it refused the statement: such a write may succeed
// when tried again. A context that ended is not one (the caller stopped waiting).
func isConnectionError(err error) bool {
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true // even when the context ended it: the server was not reached
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception. 57P01 admin_shutdown, 57P02 crash_shutdown,
		// 57P03 cannot_connect_now (starting up or shutting down).
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	// pgx reports a use of a connection it has already seen die as "conn closed".
	return strings.Contains(err.Error(), "conn closed")
}

// isUniqueViolation reports whether err is PostgreSQL refusing a duplicate key of the named
// unique constraint or index.
func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}
