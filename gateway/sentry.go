package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"

	"github.com/getsentry/sentry-go"
	"github.com/labstack/echo/v4"
)

// ErrorReporter receives what went wrong on the server's side: every error that became a 5xx
// envelope, and every panic. SentryReporter implements it. Report must not block the request.
type ErrorReporter interface {
	Report(r ErrorReport)
}

// ErrorReport is one error with what identifies its request. It never holds a request body,
// a header or a credential.
type ErrorReport struct {
	Err error
	// Panic is set when the handler panicked (Err is then the panic value).
	Panic bool
	// Status and Code are the envelope's.
	Status int
	Code   string
	// RequestID, Method and Route (the pattern, not the URL) name the request.
	RequestID, Method, Route string
	// UserID is the authenticated caller's user ("admin" for the admin key); empty in open mode.
	UserID string
}

// reportError hands a 5xx envelope to Config.ErrorReporter. A panic, reported as one by the
// recover middleware, is not reported twice.
func (s *Server) reportError(c echo.Context, err error, apiErr *APIError) {
	var p *panicError
	if s.cfg.ErrorReporter == nil || apiErr.Status < 500 || errors.As(err, &p) {
		return
	}
	s.cfg.ErrorReporter.Report(s.errorReport(c, err, apiErr.Status, apiErr.Code, false))
}

// reportPanic is the recover middleware's LogErrorFunc: it logs the panic, reports it, and
// marks the error so reportError does not report it again.
func (s *Server) reportPanic(c echo.Context, err error, stack []byte) error {
	s.log.Error("panic", "err", err, "requestId", requestID(c), "stack", string(stack))
	if s.cfg.ErrorReporter != nil {
		s.cfg.ErrorReporter.Report(s.errorReport(c, err, http.StatusInternalServerError, CodeInternal, true))
	}
	return &panicError{err: err}
}

// panicError is a recovered panic on its way to the error handler: a 500 internal_error.
type panicError struct{ err error }

func (e *panicError) Error() string { return "panic: " + e.err.Error() }
func (e *panicError) Unwrap() error { return e.err }

func (s *Server) errorReport(c echo.Context, err error, status int, code string, panicked bool) ErrorReport {
	r := ErrorReport{Err: err, Panic: panicked, Status: status, Code: code,
		RequestID: requestID(c), Method: c.Request().Method, Route: c.Path()}
	if caller, ok := CallerFromContext(c.Request().Context()); ok {
		r.UserID = caller.UserID
		if caller.Admin {
			r.UserID = "admin"
		}
	}
	return r
}

// SentryConfig configures NewSentryReporter.
type SentryConfig struct {
	// DSN is the project's Sentry DSN (SENTRY_DSN), https://PUBLIC_KEY@HOST/PROJECT_ID.
	// Required.
	DSN string
	// Environment and Release tag every event (production, the version). Default none.
	Environment, Release string
	// Logger receives the reporter's own trouble. Default slog.Default().
	Logger *slog.Logger
}

// SentryReporter sends ErrorReports to Sentry with sentry-go. Events carry the request id,
// route, method, status, error code and user id as tags, and the error's message with every
// secret-looking token (API keys, bearer tokens, JWTs) redacted; never a body, a header or a
// key. Events are sent in the background; Close flushes them.
type SentryReporter struct {
	client *sentry.Client
	log    *slog.Logger
}

var _ ErrorReporter = (*SentryReporter)(nil)

// NewSentryReporter checks the DSN and starts the client.
func NewSentryReporter(cfg SentryConfig) (*SentryReporter, error) {
	if cfg.DSN == "" {
		return nil, errors.New("sentry: a DSN is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:         cfg.DSN,
		Environment: cfg.Environment,
		Release:     cfg.Release,
		// Nothing about the request is attached by the SDK; the tags say which one it was.
		SendDefaultPII: false,
		BeforeSend:     scrubSentryEvent,
		// The SDK's default integrations read the module list and source lines; the gateway
		// wants none of that in its events.
		Integrations: func([]sentry.Integration) []sentry.Integration { return nil },
	})
	if err != nil {
		return nil, fmt.Errorf("sentry: %w", err) // the DSN is not repeated: it holds the key
	}
	return &SentryReporter{client: client, log: cfg.Logger}, nil
}

// Report queues one event.
func (r *SentryReporter) Report(rep ErrorReport) {
	level := sentry.LevelError
	if rep.Panic {
		level = sentry.LevelFatal
	}
	event := r.client.EventFromException(rep.Err, level)
	if rep.Panic && len(event.Exception) > 0 {
		// Called from the recover middleware, the stack still holds the panicking frames.
		last := &event.Exception[len(event.Exception)-1]
		if last.Stacktrace == nil {
			last.Stacktrace = sentry.NewStacktrace()
		}
		last.Mechanism = &sentry.Mechanism{Type: "panic", Handled: new(bool)}
	}
	scope := sentry.NewScope()
	tags := map[string]string{
		"request_id": rep.RequestID, "route": rep.Route, "method": rep.Method,
		"status": strconv.Itoa(rep.Status), "code": rep.Code, "panic": strconv.FormatBool(rep.Panic),
	}
	if rep.UserID != "" {
		tags["user_id"] = rep.UserID
	}
	scope.SetTags(tags)
	r.client.CaptureEvent(event, &sentry.EventHint{OriginalException: rep.Err}, scope)
}

// Close sends the events still queued, waiting until ctx ends at most, and stops the client.
// It reports whether everything was sent.
func (r *SentryReporter) Close(ctx context.Context) bool {
	flushed := r.client.FlushWithContext(ctx)
	if !flushed {
		r.log.Warn("sentry: some error events were not sent before shutdown")
	}
	r.client.Close()
	return flushed
}

// secretPattern matches what must never leave in an error message: API keys (ours start with
// dm_, OpenAI's with sk-), bearer credentials and JWTs (session tokens).
var secretPattern = regexp.MustCompile(`\b(?:dm|sk|sk-proj|sk-ant)[-_][A-Za-z0-9_-]{6,}|(?i:bearer)\s+[^\s"',;]+|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

func redactSecrets(s string) string { return secretPattern.ReplaceAllString(s, "[redacted]") }

// scrubSentryEvent is the last look at an event before it leaves.
func scrubSentryEvent(e *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	e.Request = nil
	e.Breadcrumbs = nil
	e.Message = redactSecrets(e.Message)
	for i := range e.Exception {
		e.Exception[i].Value = redactSecrets(e.Exception[i].Value)
	}
	return e
}
