package llm

import (
	"net/http"
	"testing"
)

// Health reports each provider's recent success rate and time to first token from the calls
// the chain made, with no call of its own.
func TestHealthFromRealTraffic(t *testing.T) {
	h := &retryHarness{}
	down := &Error{Provider: "primary", StatusCode: http.StatusServiceUnavailable}
	primary := &flaky{name: "primary", errs: []error{down, nil, nil, down}}
	backup := &flaky{name: "backup"}
	c := NewChain(h.config(ChainConfig{Retries: -1, BreakerThreshold: 5}), primary, backup)
	if st := c.Health()[0].Recent; st.Calls != 0 {
		t.Fatalf("before any traffic: %+v", st)
	}
	for range 5 {
		if _, err := ask(t, c); err != nil {
			t.Fatal(err)
		}
	}
	calls := primary.count() + backup.count()
	st := c.Health()
	if calls != 7 || st[0].Recent.Calls != 5 || st[0].Recent.Failures != 2 || st[0].Recent.SuccessRate != 0.6 || st[0].Recent.P50Ms <= 0 {
		t.Errorf("primary after 5 calls (2 failed): %+v (%d calls made, none for health)", st[0], calls)
	}
	if st[1].Recent.Calls != 2 || st[1].Recent.SuccessRate != 1 || st[1].Recent.P95Ms <= 0 {
		t.Errorf("backup after the 2 fallbacks: %+v", st[1])
	}
}
