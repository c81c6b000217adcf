package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the gateway's Prometheus series. Each Server has its own registry, so tests
// (and several servers in one process) do not share counters.
type metrics struct {
	registry *prometheus.Registry

	voiceSessions *prometheus.GaugeVec
	voiceLatency  *prometheus.HistogramVec
	voiceTurns    *prometheus.CounterVec
	droppedAudio  prometheus.Counter
	droppedInput  prometheus.Counter
	badAudio      prometheus.Counter

	// For the dashboard (dashboard.go), and anyone scraping /metrics.
	httpRequests   *prometheus.CounterVec
	chatFirstToken prometheus.Histogram
	ttsSentences   *prometheus.CounterVec

	// Operations (see operations.go): latency, errors, turns, costs; the health windows and
	// the gauges read at scrape time are registered by Server.setupOperations.
	httpDuration  *prometheus.HistogramVec
	httpErrors    *prometheus.CounterVec
	turns         *prometheus.CounterVec
	llmFirstToken *prometheus.HistogramVec
	ttsFirstByte  *prometheus.HistogramVec
	costUSD       *prometheus.CounterVec
	traffic       *trafficHealth
}

// latencyBuckets run from 1 ms to 10 s: the gateway's own overhead sits at the bottom, a
// cold local TTS at the top.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		voiceSessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dartmouth_voice_sessions_active", Help: "Live voice sessions, by transport.",
		}, []string{"transport"}),
		voiceLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dartmouth_voice_turn_latency_seconds",
			Help:    "Time from the end of the user's speech to each stage of the reply: transcript, first_token, first_tts_byte, first_audio (voice-to-voice).",
			Buckets: latencyBuckets,
		}, []string{"stage"}),
		voiceTurns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dartmouth_voice_turns_total", Help: "Voice turns by outcome: done, interrupted, error.",
		}, []string{"outcome"}),
		droppedAudio: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dartmouth_voice_audio_frames_dropped_total", Help: "Reply audio frames dropped because the client could not keep up.",
		}),
		droppedInput: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dartmouth_voice_input_frames_dropped_total", Help: "Client audio frames dropped for arriving faster than the allowed rate.",
		}),
		badAudio: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dartmouth_voice_bad_audio_frames_total", Help: "Client audio frames refused as not the declared format.",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dartmouth_http_requests_total", Help: "HTTP requests by route (the pattern, not the URL), method and status code.",
		}, []string{"route", "method", "code"}),
		chatFirstToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dartmouth_chat_first_token_seconds",
			Help:    "Time from a streamed chat request (SSE) to its first reply text.",
			Buckets: latencyBuckets,
		}),
		ttsSentences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dartmouth_tts_sentences_total", Help: "Sentences synthesized, by whether the TTS cache served them (cache=hit) or a provider did (cache=miss).",
		}, []string{"cache"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dartmouth_http_request_duration_seconds", Help: "HTTP request duration by route and method (streams and WebSockets: their whole life).",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		httpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dartmouth_http_errors_total", Help: "Error envelopes sent, by error code and status.",
		}, []string{"code", "status"}),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dartmouth_turns_total", Help: "Agent turns on every transport, by agent and outcome: ok, error, or abandoned (the client left before the reply).",
		}, []string{"agent", "outcome"}),
		llmFirstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dartmouth_turn_first_token_seconds",
			Help:    "Time to first token (TTFT) of agent turns on every transport: from the turn's start to its first reply text, by agent.",
			Buckets: latencyBuckets,
		}, []string{"agent"}),
		ttsFirstByte: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dartmouth_tts_first_byte_seconds",
			Help:    "Time to the first byte of synthesized audio (TTS TTFB) of each speech request, cache hits included, by the tier that answered.",
			Buckets: latencyBuckets,
		}, []string{"tier"}),
		costUSD: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dartmouth_cost_usd_total", Help: "Money spent, in USD, by agent (empty for speech outside a conversation), provider and kind (llm, tts).",
		}, []string{"agent", "provider", "kind"}),
		traffic: newTrafficHealth(),
	}
	m.registry.MustRegister(m.voiceSessions, m.voiceLatency, m.voiceTurns, m.droppedAudio, m.droppedInput, m.badAudio,
		m.httpRequests, m.chatFirstToken, m.ttsSentences,
		m.httpDuration, m.httpErrors, m.turns, m.llmFirstToken, m.ttsFirstByte, m.costUSD,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeTurn records a finished turn's latencies; stages it did not reach are left out.
func (m *metrics) observeTurn(outcome string, l voice.TurnLatency) {
	m.voiceTurns.WithLabelValues(outcome).Inc()
	for stage, d := range map[string]time.Duration{
		"transcript": l.Transcript, "first_token": l.FirstToken, "first_tts_byte": l.FirstTTSByte, "first_audio": l.FirstAudio,
	} {
		if d > 0 {
			m.voiceLatency.WithLabelValues(stage).Observe(d.Seconds())
		}
	}
}

// observeRequest counts a finished request under its route pattern, so the label set stays
// bounded whatever URLs clients make up (unmatched ones share "none", and so do methods
// outside the standard ones).
func (m *metrics) observeRequest(route, method string, status int, took time.Duration) {
	if route == "" {
		route = "none"
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(took.Seconds())
}

// observeError counts an error envelope by its code.
func (m *metrics) observeError(e *APIError) {
	m.httpErrors.WithLabelValues(e.Code, strconv.Itoa(e.Status)).Inc()
}

// observeEngineTurn is the engine's observer (agents.Engine.Observe): every turn on every
// transport, for the turn counters, TTFT, costs and the agents' health windows. A client that
// left is not the agent's failure and is kept out of its health.
func (m *metrics) observeEngineTurn(r agents.TurnReport) {
	switch {
	case r.Err == nil:
		m.turns.WithLabelValues(r.AgentID, "ok").Inc()
	case errors.Is(r.Err, context.Canceled):
		m.turns.WithLabelValues(r.AgentID, "abandoned").Inc()
		return
	default:
		m.turns.WithLabelValues(r.AgentID, "error").Inc()
	}
	if r.FirstToken > 0 {
		m.llmFirstToken.WithLabelValues(r.AgentID).Observe(r.FirstToken.Seconds())
	}
	if r.Cost > 0 {
		m.costUSD.WithLabelValues(r.AgentID, r.Provider, "llm").Add(r.Cost)
	}
	m.traffic.observeTurn(r)
}

// observeSpeech counts each synthesized sentence as a TTS cache hit or miss, and each
// request's time to first byte and cost; the native tier, which synthesizes nothing, is left
// out.
func (m *metrics) observeSpeech(results ...voice.SpeakResult) { m.observeSpeechFor("", results) }

// observeSpeechFor is observeSpeech with the agent whose reply was spoken, for the costs.
func (m *metrics) observeSpeechFor(agentID string, results []voice.SpeakResult) {
	for _, r := range results {
		if r.Tier != voice.TierNative && r.Latency.FirstByte > 0 {
			m.ttsFirstByte.WithLabelValues(string(r.Tier)).Observe(r.Latency.FirstByte.Seconds())
		}
		for _, p := range r.Parts {
			if p.Cost > 0 {
				m.costUSD.WithLabelValues(agentID, p.Provider, "tts").Add(p.Cost)
			}
			if p.Tier == voice.TierNative {
				continue
			}
			cache := "miss"
			if p.Cached {
				cache = "hit"
			}
			m.ttsSentences.WithLabelValues(cache).Inc()
		}
	}
}

// serveMetrics is GET /metrics, for Prometheus. With an admin key configured it takes the
// admin key (Prometheus sends it with authorization.credentials in its scrape config);
// without one it is open, in both modes: the series name routes, agents and providers, never
// users.
func (s *Server) serveMetrics(c echo.Context) error {
	if s.auth.adminSum != nil {
		return s.requireAdmin(s.writeMetrics)(c)
	}
	return s.writeMetrics(c)
}

func (s *Server) writeMetrics(c echo.Context) error {
	promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}
