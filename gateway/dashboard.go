package gateway

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/labstack/echo/v4"
	dto "github.com/prometheus/client_model/go"
)

// GET /api/v2/dashboard (admin only) is everything the operations dashboard (/dashboard)
// shows, in one JSON object the page polls: spending against the budgets (the cost ledger,
// shared by the replicas), and this replica's own counters since it started (cache hit rates,
// requests and errors, latency percentiles from the Prometheus histograms, provider circuits,
// live sessions). Percentiles are estimated from histogram buckets the way Prometheus'
// histogram_quantile does, so they agree with a Grafana panel over the same series.

// LLMHealthReporter reports each LLM provider's circuit breaker.
type LLMHealthReporter interface {
	Health() []llm.ProviderHealth
}

var _ LLMHealthReporter = (*llm.Chain)(nil)

// dashboardReport is the body of GET /api/v2/dashboard.
type dashboardReport struct {
	GeneratedAt   time.Time `json:"generatedAt"`
	Version       string    `json:"version"`
	UptimeSeconds int64     `json:"uptimeSeconds"`
	// Costs is nil when this gateway keeps no cost ledger.
	Costs *agents.CostReport `json:"costs"`
	Cache struct {
		LLM hitRate `json:"llm"`
		TTS hitRate `json:"tts"`
	} `json:"cache"`
	Requests dashboardRequests `json:"requests"`
	// Latency has one summary per stage: voiceToVoice (end of the user's speech to the first
	// reply audio), firstToken (a turn's start to its first reply text, every transport),
	// ttsFirstByte (every speech request, cache hits included), transcript (end of speech to
	// the transcript), and chatFirstToken (a streamed text chat's request to its first text).
	Latency   map[string]latencySummary `json:"latency"`
	Providers struct {
		LLM   []llmProviderView      `json:"llm"`
		Voice []voice.ProviderStatus `json:"voice"`
	} `json:"providers"`
	Agents   []agentView `json:"agents"`
	Sessions struct {
		// Connected counts open WebSocket and WebRTC sessions (text and voice).
		Connected int `json:"connected"`
		// Voice counts live voice sessions by transport (websocket, webrtc, realtime).
		Voice      map[string]int `json:"voice"`
		VoiceTotal int            `json:"voiceTotal"`
	} `json:"sessions"`
	// VoiceTurns counts finished voice turns by outcome: done, interrupted, error.
	VoiceTurns map[string]int64 `json:"voiceTurns"`
}

type hitRate struct {
	// Enabled is false when there is no such cache (the rate is then meaningless).
	Enabled bool    `json:"enabled"`
	Hits    int64   `json:"hits"`
	Misses  int64   `json:"misses"`
	HitRate float64 `json:"hitRate"`
}

func newHitRate(hits, misses int64) hitRate {
	h := hitRate{Enabled: true, Hits: hits, Misses: misses}
	if hits+misses > 0 {
		h.HitRate = float64(hits) / float64(hits+misses)
	}
	return h
}

type dashboardRequests struct {
	// Total counts API requests (under /api/ and /v1/, the dashboard's own polls left out);
	// Errors those answered 5xx, Rejected those answered 4xx.
	Total    int64       `json:"total"`
	Errors   int64       `json:"errors"`
	Rejected int64       `json:"rejected"`
	ByRoute  []routeView `json:"byRoute"`
}

type routeView struct {
	Route    string `json:"route"`
	Requests int64  `json:"requests"`
	Errors   int64  `json:"errors"`
	Rejected int64  `json:"rejected"`
}

// latencySummary is in milliseconds; the percentiles are 0 while Count is 0.
type latencySummary struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P95Ms  float64 `json:"p95Ms"`
	P99Ms  float64 `json:"p99Ms"`
}

type llmProviderView struct {
	Provider string `json:"provider"`
	// Circuit is closed, open or half-open; "unknown" without Config.LLMHealth.
	Circuit             string `json:"circuit"`
	ConsecutiveFailures int    `json:"consecutiveFailures"`
	Successes           int64  `json:"successes"`
	Failures            int64  `json:"failures"`
	LastError           string `json:"lastError,omitempty"`
	// RequestsMonth and USDMonth are this month's replies and spending from the ledger.
	RequestsMonth int64   `json:"requestsMonth"`
	USDMonth      float64 `json:"usdMonth"`
}

type agentView struct {
	ID             string  `json:"id"`
	Name           string  `json:"name"`
	RequestsToday  int64   `json:"requestsToday"`
	CachedToday    int64   `json:"cachedToday"`
	USDToday       float64 `json:"usdToday"`
	RequestsMonth  int64   `json:"requestsMonth"`
	USDMonth       float64 `json:"usdMonth"`
	BudgetPercent  float64 `json:"budgetPercent"` // the fullest of the agent's own budgets; 0 without one
	OverBudget     bool    `json:"overBudget"`
	HasOwnBudget   bool    `json:"hasOwnBudget"`
	ShareOfTraffic float64 `json:"shareOfTraffic"` // of all agents' requests this month
	// Health is the agent's recent turns on this replica (success rate, time to first token).
	Health session.CallStats `json:"health"`
}

// latencyStages maps the dashboard's names onto dartmouth_voice_turn_latency_seconds' stages.
var latencyStages = map[string]string{
	"voiceToVoice": "first_audio", "firstToken": "first_token", "ttsFirstByte": "first_tts_byte", "transcript": "transcript",
}

// latencyOverall are series that measure a stage on every transport, summed over their
// labels; where one is missing the voice turns' own stage stands in.
var latencyOverall = map[string]string{
	"firstToken": "dartmouth_turn_first_token_seconds", "ttsFirstByte": "dartmouth_tts_first_byte_seconds",
}

func (s *Server) dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	var r dashboardReport
	r.GeneratedAt = time.Now().UTC()
	r.Version = s.cfg.Version
	r.UptimeSeconds = int64(time.Since(s.started).Seconds())

	report, err := s.cfg.Engine.CostReport(ctx)
	switch {
	case err == nil:
		r.Costs = &report
	case !errors.Is(err, agents.ErrNoLedger):
		return err
	}
	if r.Costs != nil && r.Costs.ResponseCache != nil {
		r.Cache.LLM = newHitRate(r.Costs.ResponseCache.Hits, r.Costs.ResponseCache.Misses)
	}

	families, err := s.metrics.registry.Gather()
	if err != nil {
		return err
	}
	byName := make(map[string]*dto.MetricFamily, len(families))
	for _, f := range families {
		byName[f.GetName()] = f
	}
	tts := counterByLabel(byName["dartmouth_tts_sentences_total"], "cache")
	if s.cfg.Voice != nil {
		r.Cache.TTS = newHitRate(int64(tts["hit"]), int64(tts["miss"]))
	}
	r.Requests = requestCounts(byName["dartmouth_http_requests_total"])
	r.Latency = map[string]latencySummary{}
	voiceLatency := histogramsByLabel(byName["dartmouth_voice_turn_latency_seconds"], "stage")
	for name, stage := range latencyStages {
		h := voiceLatency[stage]
		if f := byName[latencyOverall[name]]; f != nil && len(f.GetMetric()) > 0 {
			h = mergeHistograms(f)
		}
		r.Latency[name] = summarize(h)
	}
	if f := byName["dartmouth_chat_first_token_seconds"]; f != nil && len(f.GetMetric()) > 0 {
		r.Latency["chatFirstToken"] = summarize(f.GetMetric()[0].GetHistogram())
	} else {
		r.Latency["chatFirstToken"] = latencySummary{}
	}
	r.VoiceTurns = map[string]int64{"done": 0, "interrupted": 0, "error": 0}
	for outcome, n := range counterByLabel(byName["dartmouth_voice_turns_total"], "outcome") {
		r.VoiceTurns[outcome] = int64(n)
	}
	r.Sessions.Connected = s.users.count()
	r.Sessions.Voice = map[string]int{}
	for transport, n := range gaugeByLabel(byName["dartmouth_voice_sessions_active"], "transport") {
		r.Sessions.Voice[transport] = int(n)
		r.Sessions.VoiceTotal += int(n)
	}

	r.Providers.LLM = s.llmProviders(r.Costs)
	r.Providers.Voice = []voice.ProviderStatus{}
	if s.cfg.Voice != nil {
		r.Providers.Voice = s.cfg.Voice.Providers()
	}
	r.Agents = s.agentViews(r.Costs)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, r)
}

// llmProviders merges the chain's circuits with the month's spending per provider. Providers
// that answered without being in the chain (the agents' own rules, "fam") are listed too.
func (s *Server) llmProviders(costs *agents.CostReport) []llmProviderView {
	out := []llmProviderView{}
	index := map[string]int{}
	if s.cfg.LLMHealth != nil {
		for _, h := range s.cfg.LLMHealth.Health() {
			index[h.Provider] = len(out)
			out = append(out, llmProviderView{Provider: h.Provider, Circuit: h.Circuit, ConsecutiveFailures: h.ConsecutiveFailures,
				Successes: h.Successes, Failures: h.Failures, LastError: h.LastError})
		}
	}
	if costs != nil {
		for _, row := range costs.MonthByProvider {
			i, ok := index[row.Key]
			if !ok {
				i = len(out)
				index[row.Key] = i
				out = append(out, llmProviderView{Provider: row.Key, Circuit: "unknown"})
			}
			out[i].RequestsMonth, out[i].USDMonth = row.Requests, row.USD
		}
	}
	return out
}

func (s *Server) agentViews(costs *agents.CostReport) []agentView {
	out := []agentView{}
	var ids []string
	for _, a := range s.publicAgents() {
		out = append(out, agentView{ID: a.ID, Name: a.Name})
		ids = append(ids, a.ID)
	}
	for _, h := range s.metrics.traffic.agentStats(ids, time.Now()) {
		if i := slices.IndexFunc(out, func(a agentView) bool { return a.ID == h.Agent }); i >= 0 {
			out[i].Health = h.CallStats
		}
	}
	if costs == nil {
		return out
	}
	find := func(rows []session.CostTotal, id string) (session.CostTotal, bool) {
		i := slices.IndexFunc(rows, func(r session.CostTotal) bool { return r.Key == id })
		if i < 0 {
			return session.CostTotal{}, false
		}
		return rows[i], true
	}
	var monthTotal int64
	for _, row := range costs.MonthByAgent {
		monthTotal += row.Requests
	}
	for i := range out {
		a := &out[i]
		if row, ok := find(costs.TodayByAgent, a.ID); ok {
			a.RequestsToday, a.CachedToday, a.USDToday = row.Requests, row.CachedRequests, row.USD
		}
		if row, ok := find(costs.MonthByAgent, a.ID); ok {
			a.RequestsMonth, a.USDMonth = row.Requests, row.USD
			if monthTotal > 0 {
				a.ShareOfTraffic = float64(row.Requests) / float64(monthTotal)
			}
		}
		prefix := "agent " + a.ID + " "
		for _, b := range costs.Budgets {
			if strings.HasPrefix(b.Scope, prefix) {
				a.HasOwnBudget = true
				a.BudgetPercent = max(a.BudgetPercent, b.Percent)
			}
		}
		a.OverBudget = a.BudgetPercent >= 100
	}
	return out
}

// count is how many sessions are open on this replica, all users together.
func (u *userSessions) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, sinks := range u.sinks {
		n += len(sinks)
	}
	return n
}

// requestCounts sums dartmouth_http_requests_total over the API routes.
func requestCounts(f *dto.MetricFamily) dashboardRequests {
	out := dashboardRequests{ByRoute: []routeView{}}
	index := map[string]int{}
	for _, m := range f.GetMetric() {
		route, code := labelValue(m, "route"), labelValue(m, "code")
		if !isAPIRoute(route) || route == "/api/v2/dashboard" {
			continue
		}
		n := int64(m.GetCounter().GetValue())
		status, _ := strconv.Atoi(code)
		i, ok := index[route]
		if !ok {
			i = len(out.ByRoute)
			index[route] = i
			out.ByRoute = append(out.ByRoute, routeView{Route: route})
		}
		rv := &out.ByRoute[i]
		rv.Requests += n
		out.Total += n
		switch {
		case status >= 500:
			rv.Errors += n
			out.Errors += n
		case status >= 400:
			rv.Rejected += n
			out.Rejected += n
		}
	}
	slices.SortFunc(out.ByRoute, func(a, b routeView) int {
		if a.Requests != b.Requests {
			return int(b.Requests - a.Requests)
		}
		return strings.Compare(a.Route, b.Route)
	})
	return out
}

func isAPIRoute(route string) bool {
	return strings.HasPrefix(route, "/api/") || strings.HasPrefix(route, "/v1/")
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func counterByLabel(f *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		out[labelValue(m, label)] += m.GetCounter().GetValue()
	}
	return out
}

func gaugeByLabel(f *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		out[labelValue(m, label)] += m.GetGauge().GetValue()
	}
	return out
}

func histogramsByLabel(f *dto.MetricFamily, label string) map[string]*dto.Histogram {
	out := map[string]*dto.Histogram{}
	for _, m := range f.GetMetric() {
		out[labelValue(m, label)] = m.GetHistogram()
	}
	return out
}

// mergeHistograms sums a family's histograms (the same buckets under different labels).
func mergeHistograms(f *dto.MetricFamily) *dto.Histogram {
	var count uint64
	var sum float64
	var bounds []float64
	var cums []uint64
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		count += h.GetSampleCount()
		sum += h.GetSampleSum()
		for i, b := range h.GetBucket() {
			if i == len(bounds) {
				bounds = append(bounds, b.GetUpperBound())
				cums = append(cums, 0)
			}
			cums[i] += b.GetCumulativeCount()
		}
	}
	out := &dto.Histogram{SampleCount: &count, SampleSum: &sum}
	for i := range bounds {
		out.Bucket = append(out.Bucket, &dto.Bucket{UpperBound: &bounds[i], CumulativeCount: &cums[i]})
	}
	return out
}

// summarize turns a histogram in seconds into a summary in milliseconds.
func summarize(h *dto.Histogram) latencySummary {
	if h.GetSampleCount() == 0 {
		return latencySummary{}
	}
	ms := func(seconds float64) float64 { return math.Round(seconds*1e6) / 1e3 }
	return latencySummary{
		Count:  h.GetSampleCount(),
		MeanMs: ms(h.GetSampleSum() / float64(h.GetSampleCount())),
		P50Ms:  ms(histogramQuantile(0.50, h)),
		P95Ms:  ms(histogramQuantile(0.95, h)),
		P99Ms:  ms(histogramQuantile(0.99, h)),
	}
}

// histogramQuantile estimates the q-quantile from cumulative buckets as Prometheus'
// histogram_quantile does: linear interpolation inside the bucket that holds the rank, from
// 0 for the first bucket; a rank beyond the last finite bucket gives that bucket's bound.
func histogramQuantile(q float64, h *dto.Histogram) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return 0
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, cum := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if math.IsInf(upper, 1) {
			break
		}
		if cum >= rank {
			if cum == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(cum-below)
		}
		lower, below = upper, cum
	}
	return lower
}
