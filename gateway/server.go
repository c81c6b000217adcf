// Package gateway is the HTTP edge: routes, middleware, the error envelope, and the text
// transports (JSON, server-sent events, WebSocket).
package gateway

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// HealthCheck is one dependency /health/ready probes.
type HealthCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config configures the Server.
type Config struct {
	// Engine runs the turns. Required.
	Engine *agents.Engine
	// Logger receives request and error logs. Default slog.Default().
	Logger *slog.Logger
	// Checks are probed by /health/ready and /health. Default none.
	Checks []HealthCheck
	// BodyLimit is the largest request body accepted, in bytes. Default 1 MiB.
	BodyLimit int64
	// RequestTimeout bounds every HTTP request, streams included, and every WebSocket turn.
	// Default 30s.
	RequestTimeout time.Duration
	// AllowedOrigins are the browser origins ("https://app.example.com") allowed by CORS and
	// by the WebSocket origin check. Same-origin requests and clients that send no Origin
	// (mobile apps, servers) are always allowed. Default none.
	AllowedOrigins []string
	// WSMaxFrameBytes is the largest WebSocket message accepted. Default 64 KiB.
	WSMaxFrameBytes int64
	// WSIdleTimeout closes a WebSocket that sends nothing for this long. Default 5m.
	WSIdleTimeout time.Duration
	// WSWriteTimeout drops a WebSocket client that takes longer than this to accept a frame.
	// Default 10s.
	WSWriteTimeout time.Duration
	// Static holds the web pages served at "/" (see static.go: ETags, cache headers, gzip).
	// Default none.
	Static fs.FS
	// LLMHealth reports the LLM providers' circuit breakers for the dashboard; *llm.Chain
	// implements it. Default none: the dashboard shows each provider's replies this month.
	LLMHealth LLMHealthReporter
	// Version is reported by /health. Default "dev".
	Version string
	// Models are listed by GET /v1/models after the agents, such as the primary provider's
	// default model. Requests may name any model: a name that is not an agent goes to the
	// provider chain through the passthrough agent. Default none.
	Models []Model
	// RateLimiter counts requests per caller on the rate-limited routes (POST /api/v2/chat,
	// /api/v2/chat/stream, /v1/chat/completions and each WebSocket text turn; see
	// ratelimit.go). Default nil: no rate limits.
	RateLimiter RateLimiter
	// RateLimits is the quota of each plan; a plan missing from it gets the "free" quota.
	// Default DefaultRateLimits(): free 20/h, paid 1000/h, premium 10000/h.
	RateLimits map[string]Limit
	// Voice routes speech through the tiers; nil turns the voice endpoints off (503).
	Voice *voice.Router
	// AudioBodyLimit is the largest audio body accepted by the transcription endpoints, in
	// bytes. Default 25 MiB (OpenAI's own limit).
	AudioBodyLimit int64
	// Identify names the caller (the rate-limit key) and their plan; real authentication plugs
	// in here. Default IdentifyByIP: the client IP, on the free plan. A body's userId is never
	// trusted for limits.
	Identify func(*http.Request) (key, plan string)
	// Auth chooses open mode (the default: no authentication, loudly logged) or API keys and
	// session tokens, and holds the admin key of the operations endpoints (see auth.go). An
	// authenticated caller's user and plan take precedence over Identify.
	Auth AuthConfig
	// VoiceSessions bounds live voice sessions (duration, per-user count, audio rate) and
	// tunes their turn detection. Defaults in VoiceSessionLimits.
	VoiceSessions VoiceSessionLimits
	// Broker carries events for users (reminders, hand-offs) between replicas; see
	// PublishToUser. Default nil: events reach this replica's sessions only.
	Broker Broker
	// PA keeps the personal assistant's records for /api/v2/pa/{tasks,reminders,notes,
	// calendar,contacts} (see pa.go); session.SQLStore implements it. Default nil: those
	// endpoints answer 503.
	PA PAStore
	// WebRTC configures POST /api/v2/webrtc/offer: STUN/TURN servers, UDP ports, ICE
	// timeouts. Default: host candidates only (loopback included), any UDP port; see
	// WebRTCConfig.
	WebRTC WebRTCConfig
	// ErrorReporter receives the errors that became 5xx envelopes, and panics (sentry.go);
	// cmd passes a SentryReporter when SENTRY_DSN is set. Default nil: they are logged only.
	ErrorReporter ErrorReporter
	// Analytics answers GET /api/v2/analytics (analytics.go); session.SQLStore implements it.
	// Default nil: that endpoint answers 503.
	Analytics UsageReader
	// Tickets serves /api/v2/tickets (support.go), each caller's own support tickets;
	// session.SQLStore implements it. Default nil: those endpoints answer 503.
	Tickets TicketStore
	// KnowledgeBase serves /api/v2/kb/documents (support.go); *rag.Index implements it.
	// Default nil: those endpoints answer 503.
	KnowledgeBase KnowledgeBase
}

// Server is the gateway.
type Server struct {
	cfg     Config
	echo    *echo.Echo
	log     *slog.Logger
	started time.Time

	// drainCtx ends when shutdown begins (drain is its Done): WebSocket sessions finish their
	// turn and close.
	drainCtx   context.Context
	startDrain context.CancelFunc
	drain      <-chan struct{}
	// socketsMu orders socket registration before the shutdown's Wait.
	socketsMu sync.Mutex
	closing   bool
	// hardStop ends every WebSocket session at once when the shutdown grace runs out.
	hardStop       context.Context
	cancelHardStop context.CancelFunc
	sockets        sync.WaitGroup
	auth           *authState

	metrics     *metrics
	voiceLimits VoiceSessionLimits
	voiceSlots  voiceSlots
	// users holds the open sessions of each user, for events pushed to them (DeliverToUser).
	users userSessions
	// static is the web site of Config.Static; nil without one.
	static *staticSite
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("gateway: an engine is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.WSMaxFrameBytes <= 0 {
		cfg.WSMaxFrameBytes = 64 << 10
	}
	if cfg.WSIdleTimeout <= 0 {
		cfg.WSIdleTimeout = 5 * time.Minute
	}
	if cfg.WSWriteTimeout <= 0 {
		cfg.WSWriteTimeout = 10 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = DefaultRateLimits()
	}
	if cfg.AudioBodyLimit <= 0 {
		cfg.AudioBodyLimit = 25 << 20
	}
	if cfg.Identify == nil {
		cfg.Identify = IdentifyByIP
	}
	s := &Server{cfg: cfg, log: cfg.Logger, started: time.Now(),
		metrics: newMetrics(), voiceLimits: cfg.VoiceSessions.withDefaults()}
	s.drainCtx, s.startDrain = context.WithCancel(context.Background())
	s.drain = s.drainCtx.Done()
	s.hardStop, s.cancelHardStop = context.WithCancel(context.Background())
	if err := s.setupAuth(); err != nil {
		return nil, err
	}
	s.setupOperations()
	if cfg.Static != nil {
		site, err := loadStaticSite(cfg.Static)
		if err != nil {
			return nil, err
		}
		s.static = site
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(s.logRequests)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{LogErrorFunc: s.reportPanic}))
	e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) { return slices.Contains(cfg.AllowedOrigins, origin), nil },
		// No AllowHeaders: the preflight's requested headers are echoed, so SDKs that add their
		// own (the OpenAI SDKs' x-stainless-*) work from allowed origins.
		ExposeHeaders: []string{echo.HeaderXRequestID, "X-Session-Id", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"},
		MaxAge:        600,
	}))
	e.Use(s.limitBody, s.deadline, s.authenticate)
	s.echo = e
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	e := s.echo
	e.GET("/health", s.health)
	e.GET("/health/live", s.live)
	e.GET("/health/ready", s.ready)
	e.GET("/metrics", s.serveMetrics)
	v2 := e.Group("/api/v2")
	v2.GET("/agents", s.listAgents)
	v2.GET("/costs", s.costs, s.requireAdmin)
	v2.GET("/analytics", s.analytics, s.requireAdmin)
	v2.GET("/dashboard", s.dashboard, s.requireAdmin)
	v2.POST("/auth/token", s.issueToken)
	v2.POST("/chat", s.chat, s.rateLimit)
	v2.POST("/chat/stream", s.chatStream, s.rateLimit)
	v2.GET("/sessions/:id/messages", s.sessionMessages)
	v2.GET("/ws", s.websocket)
	v2.POST("/webrtc/offer", s.webrtcOffer)
	v2.POST("/voice/tts", s.voiceTTS, s.rateLimit)
	v2.POST("/voice/stt", s.voiceSTT, s.rateLimit)
	v2.GET("/voice/providers", s.voiceProviders)
	s.paRoutes(v2.Group("/pa"))
	s.supportRoutes(v2)
	v2.POST("/artwork/analyze", s.analyzeArtwork, s.rateLimit)
	v1 := e.Group("/v1")
	v1.POST("/chat/completions", s.chatCompletions, s.rateLimit)
	v1.GET("/models", s.listModels)
	v1.GET("/models/*", s.getModel)
	v1.POST("/audio/speech", s.openAISpeech, s.rateLimit)
	v1.POST("/audio/transcriptions", s.openAITranscriptions, s.rateLimit)
	v1.GET("/realtime", s.realtime)
	if s.static != nil {
		s.staticRoutes(s.static)
	}
}

// ServeHTTP lets the server be mounted or tested as an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.echo.Listener = ln
	srv := s.echo.Server
	srv.Handler = s.echo
	srv.ReadHeaderTimeout = 10 * time.Second
	srv.IdleTimeout = 2 * time.Minute
	srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	if s.cfg.Broker != nil {
		brokerDone := make(chan struct{})
		go func() {
			defer close(brokerDone)
			s.runBroker(s.hardStop)
		}()
		defer func() { <-brokerDone }() // Shutdown ends hardStop
	}
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and lets in-flight requests, streams and WebSocket
// turns finish; when ctx ends first, whatever is left is cut off.
func (s *Server) Shutdown(ctx context.Context) error {
	s.socketsMu.Lock()
	if !s.closing {
		s.closing = true
		s.startDrain()
	}
	s.socketsMu.Unlock()
	sockets := make(chan struct{})
	go func() {
		s.sockets.Wait()
		close(sockets)
	}()
	httpErr := s.echo.Server.Shutdown(ctx)
	select {
	case <-sockets:
	case <-ctx.Done():
		s.cancelHardStop()
		<-sockets
	}
	s.cancelHardStop()
	if httpErr != nil {
		_ = s.echo.Server.Close()
	}
	return httpErr
}

// trackSocket registers a WebSocket for shutdown to wait on; false once shutdown has begun.
func (s *Server) trackSocket() bool {
	s.socketsMu.Lock()
	defer s.socketsMu.Unlock()
	if s.closing {
		return false
	}
	s.sockets.Add(1)
	return true
}

func (s *Server) draining() bool {
	select {
	case <-s.drain:
		return true
	default:
		return false
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// handleError writes every error as the envelope.
func (s *Server) handleError(err error, c echo.Context) {
	apiErr := toAPIError(err)
	apiErr.RequestID = requestID(c)
	if apiErr.Status >= 500 {
		s.log.Error("request failed", "requestId", apiErr.RequestID, "path", c.Path(), "err", err)
	}
	s.metrics.observeError(apiErr)
	s.reportError(c, err, apiErr)
	if c.Response().Committed {
		return
	}
	if apiErr.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(apiErr.RetryAfter.Seconds())), 10))
	}
	if apiErr.Status == http.StatusServiceUnavailable || apiErr.Status == http.StatusTooManyRequests {
		if c.Response().Header().Get("Retry-After") == "" {
			c.Response().Header().Set("Retry-After", "1")
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(apiErr.Status)
		return
	}
	if isOpenAIRoute(c) {
		_ = c.JSON(apiErr.Status, openAIErrorBody(apiErr))
		return
	}
	_ = c.JSON(apiErr.Status, errorEnvelope{Error: apiErr})
}

// logRequests writes one structured line per request.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		s.metrics.observeRequest(c.Path(), c.Request().Method, status, time.Since(start))
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		} else if status >= 400 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(c.Request().Context(), level, "request",
			slog.String("requestId", requestID(c)),
			slog.String("method", c.Request().Method),
			slog.String("path", c.Request().URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", c.Response().Size),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.RealIP()),
		)
		return nil
	}
}

// limitBody refuses bodies over the limit: at once when Content-Length says so, or when reading
// passes it.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		limit := s.cfg.BodyLimit
		if audioUploadPaths[req.URL.Path] {
			limit = s.cfg.AudioBodyLimit
		}
		if req.ContentLength > limit {
			return newAPIError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "request body is over the limit of %d bytes", limit)
		}
		if req.Body != nil {
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
		}
		return next(c)
	}
}

// audioUploadPaths take audio (and image) uploads, bounded by AudioBodyLimit instead of
// BodyLimit.
var audioUploadPaths = map[string]bool{"/api/v2/voice/stt": true, "/v1/audio/transcriptions": true, "/api/v2/artwork/analyze": true}

// deadline bounds every request so nothing runs away. WebSocket connections live longer and
// bound each turn instead.
func (s *Server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isWebSocketUpgrade(c.Request()) {
			return next(c)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}
