package gateway_test

import (
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
)

// BenchmarkVoiceWSSessionsAtTarget is the load of BenchmarkVoiceWSConcurrentSessions at one
// size, DARTMOUTH_BENCH_VOICE_SESSIONS (default 500, issue 9's target), for `make bench`: it
// reports the median and p99 lateness of the reply frames in the steady state, which the
// target wants under 20 ms at p99. The clients share the gateway's cores, so a starved
// client's microphone frames can leave in a burst; the audio rate limit, there for abusive
// clients, is lifted so that burst does not end the measurement.
func BenchmarkVoiceWSSessionsAtTarget(b *testing.B) {
	sessions := 500
	if v := os.Getenv("DARTMOUTH_BENCH_VOICE_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("DARTMOUTH_BENCH_VOICE_SESSIONS=%q: want a positive number of sessions", v)
		}
		sessions = n
	}
	g := instantVoiceGateway(b, 6*time.Second, func(c *gateway.Config) {
		c.VoiceSessions.MaxSessionsPerUser = 10000
		c.WSIdleTimeout = time.Minute
		c.VoiceSessions.AudioRateFactor = 1000
		// The gateway's own errors, so a failed run says why (not only "internal_error").
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	})
	var p99, p50 time.Duration
	for b.Loop() {
		p99, p50 = concurrentVoiceLateness(b, g, sessions, 4*time.Second)
	}
	b.ReportMetric(float64(sessions), "sessions")
	b.ReportMetric(ms(p50), "lateness-median-ms")
	b.ReportMetric(ms(p99), "lateness-p99-ms")
}
