package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Acceptance: with PostgreSQL down, the reads and writes a turn starts with (not only the
// retried writes) fail with ErrUnavailable, the driver's error still in the chain and the
// method still named; once it is back they work again. What the database refuses on its
// merits (a duplicate key, a missing row) and a caller that gave up are not "unavailable".
func TestPostgreSQLOutageMarksEveryMethodUnavailable(t *testing.T) {
	srv := pgtest.Start(t)
	s, err := OpenPostgres(t.Context(), PostgresConfig{URL: srv.NewDatabase(t), Clock: newTestClock(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	sess := mustCreateSession(t, s, "alice")
	appendContents(t, s, sess.ID, "before")

	err = s.CreateSession(t.Context(), sess)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" || errors.Is(err, ErrUnavailable) {
		t.Fatalf("duplicate session: err = %v; want the unique violation, not ErrUnavailable", err)
	}
	if _, err := s.GetSession(t.Context(), "alice", "ses_missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("missing session: err = %v; want ErrNotFound, not ErrUnavailable", err)
	}

	ops := []struct {
		name string // how the method names its errors
		call func(context.Context) error
	}{
		{"ensure user bob", func(ctx context.Context) error { _, err := s.EnsureUser(ctx, "bob", ""); return err }},
		{"get session", func(ctx context.Context) error { _, err := s.GetSession(ctx, "alice", sess.ID); return err }},
		{"create session", func(ctx context.Context) error {
			return s.CreateSession(ctx, Session{ID: NewID("ses"), UserID: "alice", AgentID: "agent-1"})
		}},
		{"list messages", func(ctx context.Context) error { _, err := s.ListMessages(ctx, "alice", sess.ID, 0); return err }},
		{"sql postgres", s.Ping},
	}

	srv.Stop()
	// Twice over: the first calls meet the pool's connections the server cut on its way down
	// (57P01, a closed connection), the later ones a refused dial.
	for round := range 2 {
		for _, op := range ops {
			err := op.call(t.Context())
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("round %d, %s with PostgreSQL down: err = %v; want ErrUnavailable", round, op.name, err)
			}
			if !isConnectionError(err) || !strings.HasPrefix(err.Error(), op.name+": ") {
				t.Fatalf("round %d, %s with PostgreSQL down: err = %q; want the driver's connection error under the method's name", round, op.name, err)
			}
		}
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.EnsureUser(cancelled, "bob", ""); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled call with PostgreSQL down: err = %v; want context.Canceled, not ErrUnavailable", err)
	}

	srv.Restart(t)
	for _, op := range ops {
		if err := op.call(t.Context()); err != nil {
			t.Fatalf("%s once PostgreSQL is back: %v", op.name, err)
		}
	}
	if got := contentsOf(mustListMessages(t, s, "alice", sess.ID, 0)); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("messages after the outage = %v, want [before]", got)
	}
}

// Another process holding SQLite's write lock past the busy timeout makes the store
// unavailable (SQLITE_BUSY, marked); a constraint it enforces does not.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	holder, err := OpenSQLite(t.Context(), SQLiteConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Close() })
	// A second store on the file has a write gate of its own, as another process would: only
	// SQLite's lock keeps it out.
	waiter, err := OpenSQLite(t.Context(), SQLiteConfig{Path: path, BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = waiter.Close() })
	sess := mustCreateSession(t, waiter, "alice")

	tx, err := holder.db.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	_, err = waiter.EnsureUser(t.Context(), "bob", "")
	var liteErr *sqlite.Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &liteErr) || liteErr.Code()&0xff != sqlite3.SQLITE_BUSY {
		t.Fatalf("EnsureUser with the write lock held elsewhere: err = %v; want ErrUnavailable over SQLITE_BUSY", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	if _, err := waiter.EnsureUser(t.Context(), "bob", ""); err != nil {
		t.Fatalf("EnsureUser once the lock is free: %v", err)
	}
	if err := waiter.CreateSession(t.Context(), sess); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("duplicate session: err = %v; want a constraint error, not ErrUnavailable", err)
	}
}

// The mark leaves alone what it must: the sentinels database/sql compares by identity, the
// store's own verdicts, and callers that gave up, even while dialling.
func TestMarkUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		marked bool
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"server shutting down", fmt.Errorf("query: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"bad connection", driver.ErrBadConn, true},
		{"cut mid-reply", io.ErrUnexpectedEOF, true},
		{"duplicate key", &pgconn.PgError{Code: "23505"}, false},
		{"not found", ErrNotFound, false},
		{"skip", driver.ErrSkip, false},
		{"cancelled", context.Canceled, false},
		{"cancelled while dialling", &net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled}, false},
		{"deadline", fmt.Errorf("get session: %w", context.DeadlineExceeded), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := markUnavailable(tt.err)
			if errors.Is(got, ErrUnavailable) != tt.marked {
				t.Fatalf("markUnavailable(%v) marked = %v, want %v", tt.err, !tt.marked, tt.marked)
			}
			if !tt.marked && got != tt.err {
				t.Fatalf("markUnavailable(%v) = %v, want the error itself", tt.err, got)
			}
			if tt.marked && (!errors.Is(got, tt.err) || got.Error() != tt.err.Error()) {
				t.Fatalf("markUnavailable(%v) = %q: want the error in the chain and its text unchanged", tt.err, got)
			}
			if again := markUnavailable(got); again != got {
				t.Fatalf("marking twice wrapped again: %v", again)
			}
		})
	}
}
