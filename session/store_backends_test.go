package session

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/session/pgtest"
)

// storeBackend is one SQL engine the store tests run on.
type storeBackend struct {
	name string
	// newLocation returns where a fresh, empty database lives: a SQLite file (in a folder that
	// does not exist yet) or the postgres:// URL of a new database on the test binary's
	// PostgreSQL server.
	newLocation func(t *testing.T) string
}

// storeBackends are the engines of forEachBackend; the first is the default of tests that
// choose none.
var storeBackends = []storeBackend{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "data", "test.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Shared(t).NewDatabase(t) }},
}

// backendOfTest maps the name of each forEachBackend subtest to its engine.
var backendOfTest sync.Map

// forEachBackend runs a store test once per SQL engine, as the subtests "sqlite" and
// "postgres"; within them (and their own subtests) newTestStore and newTestLocation use that
// engine. A store test is wrapped like this:
//
//	func TestThing(t *testing.T) { forEachBackend(t, testThing) }
func forEachBackend(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	for _, b := range storeBackends {
		t.Run(b.name, func(t *testing.T) {
			backendOfTest.Store(t.Name(), b)
			t.Cleanup(func() { backendOfTest.Delete(t.Name()) })
			test(t)
		})
	}
}

// backendOf is the engine chosen by the closest forEachBackend around t, else SQLite.
func backendOf(t *testing.T) storeBackend {
	for name := t.Name(); ; {
		if b, ok := backendOfTest.Load(name); ok {
			return b.(storeBackend)
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return storeBackends[0]
		}
		name = name[:i]
	}
}

// newTestLocation returns where a fresh database of the test's engine lives, for tests that
// open it several times with openStoreAt.
func newTestLocation(t *testing.T) string {
	t.Helper()
	return backendOf(t).newLocation(t)
}

func isPostgresURL(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// openStoreAt opens the store at location (a SQLite path or a postgres:// URL) and closes it
// when the test ends. Close is idempotent, so tests may also close it themselves.
func openStoreAt(t *testing.T, location string, clock Clock) *SQLStore {
	t.Helper()
	var s *SQLStore
	var err error
	if isPostgresURL(location) {
		s, err = OpenPostgres(t.Context(), PostgresConfig{URL: location, Clock: clock})
	} else {
		s, err = OpenSQLite(t.Context(), SQLiteConfig{Path: location, Clock: clock})
	}
	if err != nil {
		t.Fatalf("open %s: %v", location, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newTestStore opens a fresh store of the test's engine (SQLite unless forEachBackend chose
// one), stamped by a test clock, and returns where it lives.
func newTestStore(t *testing.T) (*SQLStore, *testClock, string) {
	t.Helper()
	clock := newTestClock()
	location := newTestLocation(t)
	return openStoreAt(t, location, clock), clock, location
}
