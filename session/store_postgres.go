package session

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
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

// ErrUnavailable marks an error of the store that says the database cannot be reached: a
// connection refused or lost, a server shutting down or starting, SQLite's write lock held by
// another process beyond the busy timeout (see isUnavailable), or a write that kept retrying
// through such errors for as long as it was allowed (its context, or
// PostgresConfig.WriteRetry; such a write stored nothing). The caller should report the
// store as down (HTTP 503) rather than the request as bad. Every SQLStore method marks its
// errors so: the connections themselves do (markingConnector), so no query has to.
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
	db := sql.OpenDB(markingConnector{stdlib.GetConnector(*conn)})
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

// isUnavailable reports whether err means the database cannot serve anyone right now, rather
// than that it refused this statement: a connection error (isConnectionError), or SQLite
// still finding the database locked by another process when its busy timeout ran out. A
// caller that cancelled or ran out of time is not told the database is down, even while
// dialling: its own deadline is the better answer.
func isUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		// Extended codes (SQLITE_BUSY_SNAPSHOT ...) keep the primary code in the low byte.
		return liteErr.Code()&0xff == sqlite3.SQLITE_BUSY
	}
	return isConnectionError(err)
}

// markUnavailable returns err marked as ErrUnavailable when isUnavailable says so, else err
// itself, so sentinels database/sql compares by identity (driver.ErrSkip, io.EOF) pass
// through untouched.
func markUnavailable(err error) error {
	if !isUnavailable(err) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return unavailableError{err}
}

// unavailableError is an error marked ErrUnavailable. Its text is the error's own: the store
// method wrapping it names what failed, and a retried write that gives up says "database
// unavailable" once, not twice. The driver's error stays in the chain for errors.As and
// errors.Is (driver.ErrBadConn, which database/sql retries on another connection).
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// markingConnector hands database/sql connections whose errors are marked (markUnavailable),
// for either engine: every method of the store, in whichever file, then reports an outage as
// ErrUnavailable without each query checking for one. Prepared statements are not wrapped:
// the store never prepares (both drivers run queries on the connection), and a wrapper would
// hide the statement's optional interfaces from database/sql.
type markingConnector struct{ driver.Connector }

// markedConn is what database/sql uses of a connection under markingConnector; the pgx and
// SQLite (write gate) connections both provide it.
type markedConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
}

var (
	_ driver.Connector = markingConnector{}
	_ io.Closer        = markingConnector{}
	_ markedConn       = (*markingConn)(nil)
)

func (c markingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, markUnavailable(err)
	}
	inner, ok := conn.(markedConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("sql: the %T connection lacks the context methods", conn)
	}
	return &markingConn{markedConn: inner}, nil
}

// Close closes the driver's connector when it holds something: database/sql calls it on
// DB.Close.
func (c markingConnector) Close() error {
	if closer, ok := c.Connector.(io.Closer); ok {
		return closer.Close()
	}
	return nil
}

// markingConn marks the errors of a connection and of its transactions and rows. The optional
// interfaces it forwards answer as database/sql does when the driver lacks them.
type markingConn struct{ markedConn }

func (c *markingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *markingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	stmt, err := c.markedConn.PrepareContext(ctx, query)
	return stmt, markUnavailable(err)
}

func (c *markingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *markingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.markedConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, markUnavailable(err)
	}
	return markingTx{tx}, nil
}

func (c *markingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.markedConn.ExecContext(ctx, query, args)
	return res, markUnavailable(err)
}

func (c *markingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.markedConn.QueryContext(ctx, query, args)
	if err != nil {
		return nil, markUnavailable(err)
	}
	return &markingRows{rows}, nil
}

func (c *markingConn) Ping(ctx context.Context) error {
	return markUnavailable(c.markedConn.Ping(ctx))
}

// CheckNamedValue lets pgx take the arguments it encodes itself; without a checker,
// database/sql's default conversion applies.
func (c *markingConn) CheckNamedValue(v *driver.NamedValue) error {
	if checker, ok := c.markedConn.(driver.NamedValueChecker); ok {
		return checker.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

// ResetSession and IsValid stay unmarked: database/sql alone sees them, and acts on
// driver.ErrBadConn.
func (c *markingConn) ResetSession(ctx context.Context) error {
	if resetter, ok := c.markedConn.(driver.SessionResetter); ok {
		return resetter.ResetSession(ctx)
	}
	return nil
}

func (c *markingConn) IsValid() bool {
	if validator, ok := c.markedConn.(driver.Validator); ok {
		return validator.IsValid()
	}
	return true
}

// markingTx marks the errors of a commit or a rollback (SQLite may find the database busy
// at commit; PostgreSQL may lose the connection there).
type markingTx struct{ tx driver.Tx }

func (t markingTx) Commit() error   { return markUnavailable(t.tx.Commit()) }
func (t markingTx) Rollback() error { return markUnavailable(t.tx.Rollback()) }

// markingRows marks the errors of reading rows: a connection lost mid-result. io.EOF, the
// end of the rows, goes back as is (database/sql compares it by identity).
type markingRows struct{ driver.Rows }

func (r *markingRows) Next(dest []driver.Value) error {
	err := r.Rows.Next(dest)
	if err == io.EOF {
		return err
	}
	return markUnavailable(err)
}

func (r *markingRows) Close() error { return markUnavailable(r.Rows.Close()) }

func (r *markingRows) HasNextResultSet() bool {
	if next, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return next.HasNextResultSet()
	}
	return false
}

func (r *markingRows) NextResultSet() error {
	if next, ok := r.Rows.(driver.RowsNextResultSet); ok {
		err := next.NextResultSet()
		if err == io.EOF {
			return err
		}
		return markUnavailable(err)
	}
	return io.EOF
}

// The column types are the driver's, for Rows.ColumnTypes (the backup reads them).

func (r *markingRows) ColumnTypeScanType(index int) reflect.Type {
	if prop, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return prop.ColumnTypeScanType(index)
	}
	return reflect.TypeFor[any]()
}

func (r *markingRows) ColumnTypeDatabaseTypeName(index int) string {
	if prop, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return prop.ColumnTypeDatabaseTypeName(index)
	}
	return ""
}

func (r *markingRows) ColumnTypeLength(index int) (int64, bool) {
	if prop, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return prop.ColumnTypeLength(index)
	}
	return 0, false
}

func (r *markingRows) ColumnTypeNullable(index int) (nullable, ok bool) {
	if prop, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return prop.ColumnTypeNullable(index)
	}
	return false, false
}

func (r *markingRows) ColumnTypePrecisionScale(index int) (precision, scale int64, ok bool) {
	if prop, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return prop.ColumnTypePrecisionScale(index)
	}
	return 0, 0, false
}
