package gateway

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/prometheus/client_golang/prometheus"
)

// Operations from real traffic: every turn the engine runs (on any transport) feeds the
// agents' health windows and the turn series, the LLM chain's and voice router's breakers
// keep their providers' windows, and the gauges below are read when Prometheus scrapes. No
// synthetic call is ever made to learn a provider's health.

// setupOperations hooks the server to the engine's turns and registers the series that are
// read at scrape time.
func (s *Server) setupOperations() {
	m := s.metrics
	s.cfg.Engine.Observe(m.observeEngineTurn)
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dartmouth_sessions_active", Help: "Open WebSocket and WebRTC sessions on this replica, text and voice (voice alone: dartmouth_voice_sessions_active).",
		}, func() float64 { return float64(s.users.count()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dartmouth_llm_cache_hits_total", Help: "LLM requests answered from the response cache.",
		}, func() float64 { st, _ := s.cfg.Engine.CacheStats(); return float64(st.Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "dartmouth_llm_cache_misses_total", Help: "LLM requests the response cache could not answer (cacheable ones that went to a provider).",
		}, func() float64 { st, _ := s.cfg.Engine.CacheStats(); return float64(st.Misses) }),
		newHealthCollector(s),
	)
}

// trafficHealth is each agent's recent turns.
type trafficHealth struct {
	mu     sync.Mutex
	agents map[string]*session.CallWindow // agent ids come from the registry: bounded
}

func newTrafficHealth() *trafficHealth {
	return &trafficHealth{agents: map[string]*session.CallWindow{}}
}

// observeTurn records a turn: its time to first token when it answered, its duration when it
// failed.
func (h *trafficHealth) observeTurn(r agents.TurnReport) {
	h.mu.Lock()
	w := h.agents[r.AgentID]
	if w == nil {
		w = session.NewCallWindow(0, 0)
		h.agents[r.AgentID] = w
	}
	h.mu.Unlock()
	latency := r.FirstToken
	if r.Err != nil || latency == 0 {
		latency = r.Duration
	}
	w.Record(time.Now(), latency, r.Err == nil)
}

// agentHealth is one agent's recent turns: success rate and time to first token.
type agentHealth struct {
	Agent string `json:"agent"`
	session.CallStats
}

// agentStats lists the registry's agents, and any other that had turns, by id.
func (h *trafficHealth) agentStats(registered []string, now time.Time) []agentHealth {
	h.mu.Lock()
	windows := make(map[string]*session.CallWindow, len(h.agents))
	for id, w := range h.agents {
		windows[id] = w
	}
	h.mu.Unlock()
	ids := slices.Clone(registered)
	for id := range windows {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]agentHealth, 0, len(ids))
	for _, id := range ids {
		a := agentHealth{Agent: id}
		if w := windows[id]; w != nil {
			a.CallStats = w.Stats(now)
		}
		out = append(out, a)
	}
	return out
}

// trafficReport is the "traffic" part of GET /health: the health of each agent and provider
// from the requests that happened (last 200 within 5 minutes), with the providers' breakers.
type trafficReport struct {
	Agents []agentHealth          `json:"agents"`
	LLM    []llm.ProviderHealth   `json:"llm"`
	Voice  []voice.ProviderStatus `json:"voice"`
}

func (s *Server) traffic() trafficReport {
	var ids []string
	for _, a := range s.cfg.Engine.Registry().List() {
		ids = append(ids, a.ID)
	}
	r := trafficReport{Agents: s.metrics.traffic.agentStats(ids, time.Now()), LLM: []llm.ProviderHealth{}, Voice: []voice.ProviderStatus{}}
	if s.cfg.LLMHealth != nil {
		r.LLM = s.cfg.LLMHealth.Health()
	}
	if s.cfg.Voice != nil {
		r.Voice = s.cfg.Voice.Providers()
	}
	return r
}

// healthCollector exports trafficReport to Prometheus when scraped.
type healthCollector struct {
	s                                  *Server
	breaker, providerRate, providerLat *prometheus.Desc
	providerCalls, agentRate, agentLat *prometheus.Desc
	agentCalls                         *prometheus.Desc
}

var _ prometheus.Collector = (*healthCollector)(nil)

func newHealthCollector(s *Server) *healthCollector {
	provider := []string{"kind", "provider"}
	return &healthCollector{s: s,
		breaker: prometheus.NewDesc("dartmouth_provider_breaker_state",
			"Circuit breaker of each provider (kind llm, tts or stt): 0 closed, 1 half-open, 2 open.", provider, nil),
		providerRate: prometheus.NewDesc("dartmouth_provider_success_ratio",
			"Share of a provider's recent calls that succeeded (last 200 within 5 minutes); absent without calls.", provider, nil),
		providerLat: prometheus.NewDesc("dartmouth_provider_latency_seconds",
			"Latency of a provider's recent successful calls (LLM: time to first token; TTS, STT: the request), by quantile.", append(provider, "quantile"), nil),
		providerCalls: prometheus.NewDesc("dartmouth_provider_recent_calls",
			"Calls to a provider within its health window.", provider, nil),
		agentRate: prometheus.NewDesc("dartmouth_agent_success_ratio",
			"Share of an agent's recent turns that produced a reply (last 200 within 5 minutes; clients that left are not counted); absent without turns.", []string{"agent"}, nil),
		agentLat: prometheus.NewDesc("dartmouth_agent_first_token_seconds",
			"Time to first token of an agent's recent successful turns, by quantile.", []string{"agent", "quantile"}, nil),
		agentCalls: prometheus.NewDesc("dartmouth_agent_recent_turns",
			"Turns of an agent within its health window.", []string{"agent"}, nil),
	}
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.breaker, c.providerRate, c.providerLat, c.providerCalls, c.agentRate, c.agentLat, c.agentCalls} {
		ch <- d
	}
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.s.traffic()
	window := func(rate, lat, calls *prometheus.Desc, st session.CallStats, labels ...string) {
		ch <- prometheus.MustNewConstMetric(calls, prometheus.GaugeValue, float64(st.Calls), labels...)
		if st.Calls == 0 {
			return
		}
		ch <- prometheus.MustNewConstMetric(rate, prometheus.GaugeValue, st.SuccessRate, labels...)
		if st.Calls > st.Failures {
			ch <- prometheus.MustNewConstMetric(lat, prometheus.GaugeValue, st.P50Ms/1000, append(labels, "0.5")...)
			ch <- prometheus.MustNewConstMetric(lat, prometheus.GaugeValue, st.P95Ms/1000, append(labels, "0.95")...)
		}
	}
	for _, a := range r.Agents {
		window(c.agentRate, c.agentLat, c.agentCalls, a.CallStats, a.Agent)
	}
	for _, p := range r.LLM {
		ch <- prometheus.MustNewConstMetric(c.breaker, prometheus.GaugeValue, circuitValue(p.Circuit), "llm", p.Provider)
		window(c.providerRate, c.providerLat, c.providerCalls, p.Recent, "llm", p.Provider)
	}
	for _, p := range r.Voice {
		ch <- prometheus.MustNewConstMetric(c.breaker, prometheus.GaugeValue, circuitValue(p.Circuit), p.Kind, p.Name)
		window(c.providerRate, c.providerLat, c.providerCalls, p.Recent, p.Kind, p.Name)
	}
}

// circuitValue is a breaker state as a number, so alerts can say "> 0".
func circuitValue(state string) float64 {
	switch state {
	case llm.CircuitOpen:
		return 2
	case llm.CircuitHalfOpen:
		return 1
	}
	return 0
}

// observeVoiceReply measures a voice turn's speech and records its voice.turn analytics event
// (the engine recorded the turn itself): the tier its first sentence was spoken in, so usage
// can be counted per tier. wishTier is the session's tier, used when nothing was synthesized
// (the device speaks on the native tier). info is the responder's reply (agents.Result) when
// known.
func (s *Server) observeVoiceReply(conv agents.Conversation, wishTier, outcome string, info any, speech []voice.SpeakResult) {
	s.metrics.observeSpeechFor(conv.AgentID, speech)
	data := map[string]any{"outcome": outcome}
	sessionID := conv.SessionID
	if res, ok := info.(agents.Result); ok {
		data["messageId"] = res.MessageID
		data["intent"] = res.Intent
		if res.SessionID != "" {
			sessionID = res.SessionID
		}
	}
	switch {
	case len(speech) > 0:
		data["tier"] = string(speech[0].Tier)
		data["ttsProvider"] = speech[0].Provider
	case strings.EqualFold(wishTier, string(voice.TierNative)):
		data["tier"] = string(voice.TierNative)
	default:
		return // nothing was spoken: a text-only turn, counted as text
	}
	var cost float64
	chars, cached := 0, true
	for _, r := range speech {
		cost += r.Cost
		cached = cached && r.Cached
		for _, p := range r.Parts {
			chars += utf8.RuneCountInString(p.Text)
		}
	}
	data["ttsCost"], data["chars"], data["cached"] = cost, chars, cached && len(speech) > 0
	user := conv.UserID
	if user == "" {
		user = session.AnonymousUserID
	}
	// Written on the session's event loop: with the analytics buffer this only queues.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Engine.RecordEvent(ctx, session.Event{Type: session.EventVoiceTurn, UserID: user, SessionID: sessionID,
		AgentID: conv.AgentID, Data: data}); err != nil {
		s.log.Warn("analytics event lost", "type", session.EventVoiceTurn, "err", err)
	}
}
