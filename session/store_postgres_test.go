package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestOpenPostgresRefusesBadConfig(t *testing.T) {
	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	tests := []struct {
		name, url, want string
	}{
		{"empty", "", "empty URL"},
		{"malformed", "postgres://user:secret@[::1", "postgres:"},
		{"nobody listening", "postgres://user:secret@" + closedPort + "/db?sslmode=disable&connect_timeout=5", "postgres 127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenPostgres(t.Context(), PostgresConfig{URL: tt.url})
			if err == nil {
				s.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q: want it to contain %q and never the password", err, tt.want)
			}
		})
	}
}

// Several replicas starting together on an empty database: the advisory lock lets one of
// them apply each migration and the others find it applied.
func TestConcurrentOpenPostgresAppliesMigrationsOnce(t *testing.T) {
	want := migrationVersions(t)
	srv := pgtest.Shared(t)
	for round := range 5 {
		url := srv.NewDatabase(t)
		const openers = 4
		stores := make([]*SQLStore, openers)
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Go(func() {
				stores[i], errs[i] = OpenPostgres(t.Context(), PostgresConfig{URL: url, MaxConns: 2})
			})
		}
		wg.Wait()
		for i, s := range stores {
			if s != nil {
				t.Cleanup(func() { _ = s.Close() })
			}
			if errs[i] != nil {
				t.Fatalf("round %d: opener %d: %v", round, i, errs[i])
			}
		}
		assertAppliedMigrations(t, stores[0], want)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		dialect string
		want    []string // file of each migration, by version
		wantErr string
	}{
		{
			name:    "portable files in version order",
			files:   fstest.MapFS{"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A"), "migrations/README": file("x")},
			dialect: "postgres",
			want:    []string{"0001_a.sql", "0002_b.sql"},
		},
		{
			name:    "an override replaces the portable file for its dialect",
			files:   fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0002_b.sql": file("B"), "migrations/0002_b.postgres.sql": file("PG")},
			dialect: "postgres",
			want:    []string{"0001_a.sql", "0002_b.postgres.sql"},
		},
		{
			name:    "and only for its dialect",
			files:   fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0001_a.postgres.sql": file("PG")},
			dialect: "sqlite",
			want:    []string{"0001_a.sql"},
		},
		{
			name:    "an override without a portable file",
			files:   fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0002_b.postgres.sql": file("PG")},
			dialect: "postgres",
			wantErr: "overrides no portable migration",
		},
		{
			name:    "an unknown dialect",
			files:   fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0001_a.mysql.sql": file("M")},
			dialect: "sqlite",
			wantErr: "names no dialect",
		},
		{
			name:    "two files of one version",
			files:   fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0001_b.sql": file("B")},
			dialect: "sqlite",
			wantErr: "share version 1",
		},
		{
			name:    "no version",
			files:   fstest.MapFS{"migrations/init.sql": file("A")},
			dialect: "sqlite",
			wantErr: "bad file name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadMigrations(tt.files, tt.dialect)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, m := range got {
				files = append(files, m.file)
			}
			if !slices.Equal(files, tt.want) {
				t.Fatalf("migrations %v, want %v", files, tt.want)
			}
		})
	}
}

func TestIsConnectionError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"server shutting down", fmt.Errorf("append: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"server starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"bad connection", fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"cut mid-reply", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"could not connect", &pgconn.ConnectError{}, true},
		{"duplicate key", &pgconn.PgError{Code: "23505"}, false},
		{"undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"caller gave up", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, false},
		{"anything else", errors.New("UNIQUE constraint failed: messages.id"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isConnectionError(tt.err); got != tt.want {
				t.Errorf("isConnectionError(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// logRecorder is a slog.Handler passing each record's message and "write" attribute on.
type logRecorder struct{ records chan [2]string }

func (h logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h logRecorder) WithGroup(string) slog.Handler            { return h }
func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	var write string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "write" {
			write = a.Value.String()
		}
		return true
	})
	select {
	case h.records <- [2]string{r.Message, write}:
	default: // nobody is waiting for more
	}
	return nil
}

// awaitRetries returns once each named write has logged a retry: it has failed against the
// stopped server and is waiting to try again.
func awaitRetries(t *testing.T, logs logRecorder, writes ...string) {
	t.Helper()
	waiting := map[string]bool{}
	for _, w := range writes {
		waiting[w] = true
	}
	deadline := time.After(time.Minute)
	for len(waiting) > 0 {
		select {
		case r := <-logs.records:
			if strings.Contains(r[0], "retrying") {
				delete(waiting, r[1])
			}
		case <-deadline:
			t.Fatalf("no retry logged by %v within a minute", waiting)
		}
	}
}

// Acceptance (degradation): while PostgreSQL is down Ping says so, and a message and a cost
// written during the outage are retried and land, once each, when it is back; a write whose
// context (or retry budget) ends before the server returns fails with ErrUnavailable and
// stores nothing.
func TestWritesSurviveAPostgreSQLOutage(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	logs := logRecorder{records: make(chan [2]string, 64)}
	s, err := OpenPostgres(t.Context(), PostgresConfig{URL: url, Clock: newTestClock(), Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	shortBudget, err := OpenPostgres(t.Context(), PostgresConfig{URL: url, WriteRetry: 300 * time.Millisecond, Logger: slog.New(logRecorder{records: make(chan [2]string)})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shortBudget.Close() })
	sess := mustCreateSession(t, s, "alice")
	appendContents(t, s, sess.ID, "before")
	cost := Cost{ID: "req_1", UserID: "alice", AgentID: "fam", Kind: "llm", Provider: "openai", USD: 0.25}

	srv.Stop() // pg_ctl stop -m fast
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping succeeded while PostgreSQL was down")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 2)
	go func() {
		done <- s.AppendMessage(ctx, Message{ID: NewID("msg"), SessionID: sess.ID, Role: RoleUser, Content: "during"})
	}()
	go func() { done <- s.RecordCost(ctx, cost) }()
	awaitRetries(t, logs, "append message", "record cost")
	srv.Restart(t)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatalf("a write issued during the outage failed once the server was back: %v", err)
		}
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after the restart: %v", err)
	}
	if got := contentsOf(mustListMessages(t, s, "alice", sess.ID, 0)); !slices.Equal(got, []string{"before", "during"}) {
		t.Fatalf("messages = %v, want before and during, once each", got)
	}
	if err := s.RecordCost(t.Context(), cost); err != nil { // the ledger still counts it once
		t.Fatal(err)
	}
	totals, err := s.CostTotals(t.Context(), "2000-01-01", "2999-12-31", ByNothing, "alice")
	if err != nil || len(totals) != 1 || totals[0].Requests != 1 || totals[0].USD != 0.25 {
		t.Fatalf("cost totals = %+v, %v; want the one cost", totals, err)
	}

	// An outage longer than the caller waits.
	srv.Stop()
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancelShort()
	err = s.AppendMessage(short, Message{ID: NewID("msg"), SessionID: sess.ID, Role: RoleUser, Content: "too late"})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "append message: database unavailable: gave up after") {
		t.Fatalf("err = %v, want ErrUnavailable and the deadline, named", err)
	}
	// Longer than the store's retry budget, with a caller that would wait for ever.
	err = shortBudget.RecordCost(context.Background(), Cost{ID: "req_2", UserID: "alice", Kind: "llm"})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable after the retry budget", err)
	}
	srv.Restart(t)
	if got := contentsOf(mustListMessages(t, s, "alice", sess.ID, 0)); !slices.Equal(got, []string{"before", "during"}) {
		t.Fatalf("messages = %v: a write reported as failed was stored", got)
	}
}
