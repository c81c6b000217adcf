package notify_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixedNow is the clock of every test that reads one.
var fixedNow = time.Date(2025, time.March, 4, 15, 4, 5, 0, time.UTC)

func now() time.Time { return fixedNow }
