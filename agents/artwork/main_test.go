package artwork_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (the gateway scenarios start real
// servers); it covers the package's internal tests too, which share the test binary.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
