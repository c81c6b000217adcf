package offline

import (
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixedClock is a session.Clock stopped at one instant.
type fixedClock struct{ t time.Time }

var _ session.Clock = fixedClock{}

func (c fixedClock) Now() time.Time { return c.t }

// testNow is Friday 15 March 2024, 14:30 UTC.
var testNow = time.Date(2024, time.March, 15, 14, 30, 0, 0, time.UTC)

// newTestEngine is the engine on the built-in knowledge, with time stopped at testNow and shown
// one hour east of UTC.
func newTestEngine() *Engine {
	return New(Config{Clock: fixedClock{testNow}, Location: time.FixedZone("CET", 3600)})
}
