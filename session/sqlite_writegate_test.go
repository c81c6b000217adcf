package session

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openGateTestStore(t *testing.T, busy time.Duration) *SQLStore {
	t.Helper()
	s, err := OpenSQLite(t.Context(), SQLiteConfig{Path: filepath.Join(t.TempDir(), "gate.db"), BusyTimeout: busy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A burst of session starts, each a few writes, far more than SQLite's busy handler can space
// out within its timeout: queued at the gate, every one succeeds.
func TestSQLiteBurstOfWritersOutlastsTheBusyTimeout(t *testing.T) {
	s := openGateTestStore(t, time.Millisecond)
	const starts = 300
	var wg sync.WaitGroup
	errs := make(chan error, starts)
	release := make(chan struct{})
	for i := range starts {
		wg.Go(func() {
			<-release
			user := fmt.Sprintf("user%03d", i)
			if _, err := s.EnsureUser(t.Context(), user, "free"); err != nil {
				errs <- fmt.Errorf("user %s: %w", user, err)
				return
			}
			sess := Session{ID: NewID("ses"), UserID: user, AgentID: "fam"}
			if err := s.CreateSession(t.Context(), sess); err != nil {
				errs <- fmt.Errorf("session of %s: %w", user, err)
				return
			}
			if err := s.AppendMessage(t.Context(), Message{ID: NewID("msg"), SessionID: sess.ID, Role: RoleUser, Content: "hello"}); err != nil {
				errs <- fmt.Errorf("message of %s: %w", user, err)
			}
		})
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int
	if err := s.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != starts {
		t.Fatalf("%d messages stored, want %d", n, starts)
	}
}

// A writer waiting at the gate gives up with its context; the gate is free again once the
// transaction holding it ends, by commit or by rollback.
func TestSQLiteWriteGateHonoursContextAndFreesOnRollback(t *testing.T) {
	s := openGateTestStore(t, 5*time.Second)
	ctx := t.Context()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, plan, created_at) VALUES ('held', 'free', 0)`); err != nil {
		t.Fatal(err)
	}

	waiting, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.EnsureUser(waiting, "bob", "free"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a writer whose deadline passes while the gate is held: err = %v, want context.DeadlineExceeded", err)
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureUser(ctx, "bob", "free"); err != nil {
		t.Fatalf("write after the rollback: %v", err)
	}
	var held int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE id = 'held'`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Fatal("the rolled back insert is stored")
	}
}
