package voice

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: providers stream audio
// from goroutines that their contexts must stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
