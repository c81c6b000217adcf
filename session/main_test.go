package session

import (
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The store tests share one PostgreSQL server, stopped once they have run.
	goleak.VerifyTestMain(pgtest.Tests(m))
}

// testEpoch is a whole number of milliseconds, so times survive the store's millisecond
// precision unchanged.
var testEpoch = time.UnixMilli(1_700_000_000_000)

// testClock is a Clock that only moves when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

var _ Clock = (*testClock)(nil)

func newTestClock() *testClock { return &testClock{now: testEpoch} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
