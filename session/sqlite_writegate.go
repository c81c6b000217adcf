package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"

	"modernc.org/sqlite"
)

// SQLite lets one writer in at a time. When several of a process's connections want to write
// at once, the losers get SQLITE_BUSY and SQLite's busy handler sleeps them for 1, 2, 5, 10,
// ... 100 ms before trying again: under a few concurrent requests a write that takes 50 µs
// waits milliseconds, and a burst of hundreds runs out the busy timeout and fails. The write
// gate queues the process's writers in Go instead, where the next one starts the moment the
// last one ends, and a caller's context bounds the wait. Reads (WAL) never wait for it. The
// busy timeout still covers other processes on the same file (the CLI, a second gateway).
//
// A writer is a transaction (all begin IMMEDIATE, see OpenSQLite) or an Exec outside one;
// the store runs no writing Query.

// writeGateConnector opens sqlite connections that share one write gate.
type writeGateConnector struct {
	dsn  string
	gate chan struct{} // holds a token while a connection writes
}

var _ driver.Connector = (*writeGateConnector)(nil)

func newWriteGateConnector(dsn string) *writeGateConnector {
	return &writeGateConnector{dsn: dsn, gate: make(chan struct{}, 1)}
}

func (c *writeGateConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := (&sqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("sqlite: the driver's connection lacks the context methods")
	}
	return &gatedConn{sqliteConn: inner, gate: c.gate}, nil
}

func (c *writeGateConnector) Driver() driver.Driver { return &sqlite.Driver{} }

// sqliteConn is what database/sql uses of a modernc sqlite connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.SessionResetter
	driver.Validator
	driver.Pinger
}

// gatedConn is a connection that takes the write gate for its transactions and its Execs.
// database/sql never uses a connection from two goroutines at once, so inTx needs no lock.
type gatedConn struct {
	sqliteConn
	gate chan struct{}
	inTx bool
}

var _ sqliteConn = (*gatedConn)(nil)

func (c *gatedConn) acquire(ctx context.Context) error {
	select {
	case c.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *gatedConn) release() { <-c.gate }

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx takes the gate for a writing transaction. A read-only one (a snapshot: deferred on
// SQLite, see SQLStore.readTx) takes no lock, so it must not hold writers back either: a
// backup reads its snapshot while the gateway goes on writing.
func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if !opts.ReadOnly {
		if err := c.acquire(ctx); err != nil {
			return nil, err
		}
	}
	tx, err := c.sqliteConn.BeginTx(ctx, opts)
	if err != nil {
		if !opts.ReadOnly {
			c.release()
		}
		return nil, err
	}
	c.inTx = true
	return &gatedTx{Tx: tx, conn: c, holdsGate: !opts.ReadOnly}, nil
}

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.inTx {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	return c.sqliteConn.ExecContext(ctx, query, args)
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	stmt, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &gatedStmt{Stmt: stmt, conn: c}, nil
}

// gatedTx gives the gate back when the transaction ends, once, however it ends.
type gatedTx struct {
	driver.Tx
	conn      *gatedConn
	holdsGate bool
	once      sync.Once
}

func (t *gatedTx) end(err error) error {
	t.once.Do(func() {
		t.conn.inTx = false
		if t.holdsGate {
			t.conn.release()
		}
	})
	return err
}

func (t *gatedTx) Commit() error   { return t.end(t.Tx.Commit()) }
func (t *gatedTx) Rollback() error { return t.end(t.Tx.Rollback()) }

// gatedStmt takes the gate for a prepared statement's Exec outside a transaction.
type gatedStmt struct {
	driver.Stmt
	conn *gatedConn
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if !s.conn.inTx {
		if err := s.conn.acquire(ctx); err != nil {
			return nil, err
		}
		defer s.conn.release()
	}
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}
