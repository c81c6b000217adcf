package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fixedModel answers every request with "four" as gpt-4o-mini (a priced model), with usage,
// or fails with err before its first token.
type fixedModel struct {
	name  string
	err   error
	calls atomic.Int64
}

func (m *fixedModel) Name() string { return m.name }

func (m *fixedModel) Stream(context.Context, llm.Request) iter.Seq2[llm.Chunk, error] {
	m.calls.Add(1)
	return func(yield func(llm.Chunk, error) bool) {
		if m.err != nil {
			yield(llm.Chunk{}, m.err)
			return
		}
		if yield(llm.Chunk{Text: "four", Model: "gpt-4o-mini"}, nil) {
			yield(llm.Chunk{Model: "gpt-4o-mini", Usage: &llm.Usage{InputTokens: 1000, OutputTokens: 500}}, nil)
		}
	}
}

// scrape reads /metrics (with the bearer credential when not empty).
func scrape(t *testing.T, g *testGateway, bearer string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/metrics", nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return resp.StatusCode, families
}

// sample is the value of the series of family name whose labels include want (summed when
// several match; a histogram gives its count); ok is false when none matches.
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, w := range want {
			match = match && labels[k] == w
		}
		if !match {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return v, ok
}

func completion(t *testing.T, g *testGateway) {
	t.Helper()
	resp, body := postJSON(t, g.URL+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"two plus two?"}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("completion: %d %v", resp.StatusCode, body)
	}
}

// chainGateway serves through a chain whose primary provider is down and whose backup works.
func chainGateway(t *testing.T, opts ...option) (*testGateway, *llm.Chain) {
	t.Helper()
	down := &llm.Error{Provider: "primary", StatusCode: http.StatusServiceUnavailable, Message: "overloaded"}
	chain := llm.NewChain(llm.ChainConfig{Retries: -1, BreakerThreshold: 2, Logger: slog.New(slog.DiscardHandler)},
		&fixedModel{name: "primary", err: down}, &fixedModel{name: "backup"})
	g := startGateway(t, chain, append([]option{func(c *gateway.Config) { c.LLMHealth = chain }}, opts...)...)
	return g, chain
}

// /metrics covers requests, errors, time to first token, turns, costs, caches, sessions and
// the providers' breakers and recent health, all from the traffic that happened.
func TestMetricsFromRealTraffic(t *testing.T) {
	g, _ := chainGateway(t)
	for range 3 {
		completion(t, g)
	}
	if resp, _ := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam",`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d", resp.StatusCode)
	}
	status, m := scrape(t, g, "")
	if status != http.StatusOK {
		t.Fatalf("/metrics without an admin key configured: %d, want open", status)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
	}{
		{"dartmouth_http_requests_total", map[string]string{"route": "/v1/chat/completions", "method": "POST", "code": "200"}, eq(3)},
		{"dartmouth_http_request_duration_seconds", map[string]string{"route": "/v1/chat/completions", "method": "POST"}, eq(3)},
		{"dartmouth_http_errors_total", map[string]string{"code": gateway.CodeInvalidJSON, "status": "400"}, eq(1)},
		{"dartmouth_turns_total", map[string]string{"agent": "passthrough", "outcome": "ok"}, eq(3)},
		{"dartmouth_turn_first_token_seconds", map[string]string{"agent": "passthrough"}, eq(3)},
		// 1000 input and 500 output tokens of gpt-4o-mini at $0.15 and $0.60 per million.
		{"dartmouth_cost_usd_total", map[string]string{"agent": "passthrough", "provider": "backup", "kind": "llm"}, approx(3 * 0.00045)},
		{"dartmouth_llm_cache_hits_total", nil, eq(0)},
		{"dartmouth_llm_cache_misses_total", nil, eq(0)},
		{"dartmouth_sessions_active", nil, eq(0)},
		// Two failures in a row opened the primary's circuit; the third call skipped it.
		{"dartmouth_provider_breaker_state", map[string]string{"kind": "llm", "provider": "primary"}, eq(2)},
		{"dartmouth_provider_breaker_state", map[string]string{"kind": "llm", "provider": "backup"}, eq(0)},
		{"dartmouth_provider_success_ratio", map[string]string{"kind": "llm", "provider": "primary"}, eq(0)},
		{"dartmouth_provider_success_ratio", map[string]string{"kind": "llm", "provider": "backup"}, eq(1)},
		{"dartmouth_provider_recent_calls", map[string]string{"kind": "llm", "provider": "backup"}, eq(3)},
		{"dartmouth_provider_latency_seconds", map[string]string{"kind": "llm", "provider": "backup", "quantile": "0.95"}, func(v float64) bool { return v > 0 && v < 5 }},
		{"dartmouth_agent_success_ratio", map[string]string{"agent": "passthrough"}, eq(1)},
		{"dartmouth_agent_first_token_seconds", map[string]string{"agent": "passthrough", "quantile": "0.5"}, func(v float64) bool { return v > 0 && v < 5 }},
		// The voice series stay.
		{"dartmouth_voice_audio_frames_dropped_total", nil, eq(0)},
	}
	for _, c := range checks {
		v, ok := sample(m, c.name, c.labels)
		if !ok || !c.want(v) {
			t.Errorf("%s%v = %v (present %v)", c.name, c.labels, v, ok)
		}
	}
	if _, ok := sample(m, "dartmouth_agent_success_ratio", map[string]string{"agent": "fam"}); ok {
		t.Error("a success ratio for an agent without turns: it should be absent, not 0")
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

func approx(want float64) func(float64) bool {
	return func(v float64) bool { return v > want*0.999 && v < want*1.001 }
}

// With an admin key configured /metrics takes it (Prometheus sends it as a bearer token);
// without one it is open, even in keys mode.
func TestMetricsAccess(t *testing.T) {
	const admin = "admin-key-0123456789"
	g := startGateway(t, nil, func(c *gateway.Config) { c.Auth = gateway.AuthConfig{AdminKey: admin} })
	if status, _ := scrape(t, g, ""); status != http.StatusUnauthorized {
		t.Errorf("without the admin key: %d, want 401", status)
	}
	if status, _ := scrape(t, g, "not-the-admin-key-at-all"); status != http.StatusUnauthorized && status != http.StatusForbidden {
		t.Errorf("with a wrong key: %d", status)
	}
	if status, m := scrape(t, g, admin); status != http.StatusOK || m["dartmouth_http_requests_total"] == nil {
		t.Errorf("with the admin key: %d", status)
	}
	store, err := session.OpenSQLite(t.Context(), session.SQLiteConfig{Path: t.TempDir() + "/keys.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys := startGateway(t, nil, func(c *gateway.Config) { c.Auth = gateway.AuthConfig{Mode: gateway.AuthKeys, Keys: store} })
	if status, _ := scrape(t, keys, ""); status != http.StatusOK {
		t.Errorf("keys mode without an admin key: %d, want open", status)
	}
}

type healthBody struct {
	Status  string                    `json:"status"`
	Failing []string                  `json:"failing"`
	Checks  map[string]map[string]any `json:"checks"`
	Traffic struct {
		Agents []struct {
			Agent string `json:"agent"`
			session.CallStats
		} `json:"agents"`
		LLM   []llm.ProviderHealth `json:"llm"`
		Voice []json.RawMessage    `json:"voice"`
	} `json:"traffic"`
}

func getHealth(t *testing.T, url string) (int, healthBody) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthBody
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

// GET /health tells each agent's and provider's health from the requests that happened,
// and no provider is called to find out.
func TestHealthFromRealTraffic(t *testing.T) {
	g, chain := chainGateway(t)
	providers := chain.Providers()
	calls := func() int64 {
		return providers[0].(*fixedModel).calls.Load() + providers[1].(*fixedModel).calls.Load()
	}
	status, h := getHealth(t, g.URL+"/health")
	if status != http.StatusOK || len(h.Traffic.LLM) != 2 || h.Traffic.LLM[0].Recent.Calls != 0 {
		t.Fatalf("before traffic: %d %+v", status, h.Traffic)
	}
	for range 4 {
		completion(t, g)
	}
	before := calls()
	status, h = getHealth(t, g.URL+"/health")
	if status != http.StatusOK {
		t.Fatalf("/health: %d", status)
	}
	if calls() != before {
		t.Errorf("/health called a provider (%d calls, %d before)", calls(), before)
	}
	primary, backup := h.Traffic.LLM[0], h.Traffic.LLM[1]
	if primary.Provider != "primary" || primary.Circuit != llm.CircuitOpen || primary.Recent.Calls != 2 || primary.Recent.SuccessRate != 0 {
		t.Errorf("primary: %+v", primary)
	}
	if backup.Circuit != llm.CircuitClosed || backup.Recent.Calls != 4 || backup.Recent.SuccessRate != 1 || backup.Recent.P95Ms <= 0 {
		t.Errorf("backup: %+v", backup)
	}
	var found bool
	for _, a := range h.Traffic.Agents {
		switch a.Agent {
		case "passthrough":
			found = true
			if a.Calls != 4 || a.SuccessRate != 1 || a.P50Ms <= 0 {
				t.Errorf("passthrough agent: %+v", a)
			}
		case "fam":
			if a.Calls != 0 {
				t.Errorf("fam had no turns: %+v", a)
			}
		}
	}
	if !found {
		t.Errorf("agents: %+v", h.Traffic.Agents)
	}
}

// /health/ready fails with 503 naming the backend that is down.
func TestReadyNamesTheBackendThatIsDown(t *testing.T) {
	var redisDown atomic.Bool
	g := startGateway(t, nil, func(c *gateway.Config) {
		c.Checks = append(c.Checks, gateway.HealthCheck{Name: "redis", Check: func(context.Context) error {
			if redisDown.Load() {
				return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
			}
			return nil
		}})
	})
	if status, h := getHealth(t, g.URL+"/health/ready"); status != http.StatusOK || len(h.Failing) != 0 {
		t.Fatalf("all up: %d %+v", status, h)
	}
	redisDown.Store(true)
	status, h := getHealth(t, g.URL+"/health/ready")
	if status != http.StatusServiceUnavailable || len(h.Failing) != 1 || h.Failing[0] != "redis" || h.Checks["redis"]["ok"] != false ||
		!strings.Contains(h.Checks["redis"]["error"].(string), "connection refused") || h.Checks["sql"]["ok"] != true {
		t.Fatalf("redis down: %d %+v", status, h)
	}
	// Chat goes on: readiness is about routing new traffic, not refusing it.
	if resp, body := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hello"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("chat with redis down: %d %v", resp.StatusCode, body)
	}
	redisDown.Store(false)
	if status, _ := getHealth(t, g.URL+"/health/ready"); status != http.StatusOK {
		t.Fatalf("after recovery: %d", status)
	}
}

// waitFor polls cond until it holds, for effects no event announces.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 10 s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}
