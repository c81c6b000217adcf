package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

// operations is the wiring of what the gateway reports about itself: analytics events written
// in batches, and errors sent to Sentry when SENTRY_DSN is set. serve starts it with the
// other background work and closes it after the server has shut down, so the last turns'
// events and the last errors are written before the store closes.
type operations struct {
	// events batches the engine's and the gateway's analytics events into the store.
	events *session.AnalyticsBuffer
	// reporter is nil without SENTRY_DSN (an interface holding a nil pointer would not be).
	reporter gateway.ErrorReporter
	sentry   *gateway.SentryReporter
	done     chan struct{}
}

// operationsFlushTimeout bounds the final writes at shutdown, on top of the shutdown grace
// (which the in-flight requests may have used up).
const operationsFlushTimeout = 10 * time.Second

func newOperations(cfg *Config, store *session.SQLStore, logger *slog.Logger) (*operations, error) {
	events, err := session.NewAnalyticsBuffer(session.AnalyticsBufferConfig{Writer: store, FlushInterval: cfg.AnalyticsFlush, Logger: logger})
	if err != nil {
		return nil, err
	}
	o := &operations{events: events, done: make(chan struct{})}
	if cfg.SentryDSN != "" {
		o.sentry, err = gateway.NewSentryReporter(gateway.SentryConfig{DSN: cfg.SentryDSN, Release: "dartmouth@" + version, Logger: logger})
		if err != nil {
			return nil, err
		}
		o.reporter = o.sentry
		logger.Info("errors are reported to Sentry", "environment", "SENTRY_ENVIRONMENT")
	}
	return o, nil
}

// start runs the analytics writer until close.
func (o *operations) start(ctx context.Context) {
	go func() {
		defer close(o.done)
		_ = o.events.Run(ctx)
	}()
}

// close writes the pending analytics events and sends the pending error reports, waiting for
// both (at most operationsFlushTimeout); losses are logged by each.
func (o *operations) close() {
	ctx, cancel := context.WithTimeout(context.Background(), operationsFlushTimeout)
	defer cancel()
	_ = o.events.Close(ctx)
	<-o.done
	if o.sentry != nil {
		o.sentry.Close(ctx)
	}
}
