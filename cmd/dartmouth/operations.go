package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
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
	// debug serves pprof when DebugAddr is set; nil otherwise.
	debug     *http.Server
	debugDone chan struct{} // closed when the profile server has stopped
	done      chan struct{}
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
	if cfg.DebugAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		o.debug = &http.Server{Addr: cfg.DebugAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		logger.Warn("Go profiles are served without authentication", "addr", cfg.DebugAddr, "path", "/debug/pprof/")
	}
	return o, nil
}

// start runs the analytics writer until close, and the profile server until ctx ends.
func (o *operations) start(ctx context.Context, logger *slog.Logger) {
	go func() {
		defer close(o.done)
		_ = o.events.Run(ctx)
	}()
	if o.debug != nil {
		ln, err := net.Listen("tcp", o.debug.Addr)
		if err != nil {
			logger.Error("the profile server cannot listen; profiles are off", "addr", o.debug.Addr, "err", err)
			o.debug = nil
			return
		}
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = o.debug.Serve(ln)
		}()
		context.AfterFunc(ctx, func() { _ = o.debug.Close() })
		o.debugDone = served
	}
}

// close writes the pending analytics events and sends the pending error reports, waiting for
// both (at most operationsFlushTimeout); losses are logged by each.
func (o *operations) close() {
	ctx, cancel := context.WithTimeout(context.Background(), operationsFlushTimeout)
	defer cancel()
	_ = o.events.Close(ctx)
	<-o.done
	if o.debugDone != nil {
		_ = o.debug.Close()
		<-o.debugDone
	}
	if o.sentry != nil {
		o.sentry.Close(ctx)
	}
}
