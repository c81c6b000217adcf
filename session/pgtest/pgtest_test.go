package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(Tests(m))
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// TestDatabasesAreSeparate: two tests' databases on the shared server do not see each
// other's tables, and the server keeps UTF-8 text intact.
func TestDatabasesAreSeparate(t *testing.T) {
	s := Shared(t)
	if again := Shared(t); again != s {
		t.Fatal("Shared started a second server")
	}
	a, b := connect(t, s.NewDatabase(t)), connect(t, s.NewDatabase(t))
	if _, err := a.Exec(t.Context(), `CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(t.Context(), `INSERT INTO t VALUES ('héllo ✓')`); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := a.QueryRow(t.Context(), `SELECT v FROM t`).Scan(&v); err != nil || v != "héllo ✓" {
		t.Fatalf("read back %q, %v", v, err)
	}
	if _, err := b.Exec(t.Context(), `SELECT * FROM t`); err == nil {
		t.Fatal("the second database sees the first one's table")
	}
}

// TestStopKeepsDataAndRestartServesIt: a fast shutdown refuses connections, and a restart
// on the same port serves what was committed before it.
func TestStopKeepsDataAndRestartServesIt(t *testing.T) {
	s := Start(t)
	url := s.NewDatabase(t)
	conn := connect(t, url)
	if _, err := conn.Exec(t.Context(), `CREATE TABLE kept (n BIGINT); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop() // twice is fine
	if s.Running() {
		t.Fatal("Running after Stop")
	}
	if _, err := pgx.Connect(t.Context(), url); err == nil {
		t.Fatal("connected to a stopped server")
	}
	s.Restart(t)
	var n int64
	if err := connect(t, url).QueryRow(t.Context(), `SELECT n FROM kept`).Scan(&n); err != nil || n != 42 {
		t.Fatalf("after restart: n = %d, %v; want 42", n, err)
	}
}

// TestServerFilesAreRemoved: the folder of a server started for a test is gone once the test
// has ended.
func TestServerFilesAreRemoved(t *testing.T) {
	var dir string
	t.Run("server", func(t *testing.T) {
		s := Start(t)
		dir = s.dir
		if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
			t.Fatalf("no cluster in %s: %v", dir, err)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still exists after the test (%v)", dir, err)
	}
}
