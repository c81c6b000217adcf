package gateway_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

// sentryServer accepts what a Sentry project's envelope endpoint accepts
// (POST /api/<project>/envelope/) and keeps the events it was sent.
type sentryServer struct {
	*httptest.Server
	mu     sync.Mutex
	raw    []string
	events []sentryEvent
}

// sentryEvent is the part of a Sentry event the tests read.
type sentryEvent struct {
	Level string            `json:"level"`
	Tags  map[string]string `json:"tags"`
	// Exception is the error chain, outermost first, as sentry-go sends it (a list; the
	// protocol also allows {"values": [...]}).
	Exception []struct {
		Type       string `json:"type"`
		Value      string `json:"value"`
		Stacktrace *struct {
			Frames []struct {
				Function string `json:"function"`
			} `json:"frames"`
		} `json:"stacktrace"`
	} `json:"exception"`
	Request json.RawMessage `json:"request"`
}

func newSentryServer(t *testing.T, project string) *sentryServer {
	t.Helper()
	s := &sentryServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/"+project+"/envelope/" {
			t.Errorf("sentry: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("sentry: %v", err)
				return
			}
			body = gz
		}
		raw, _ := io.ReadAll(body)
		if !strings.Contains(r.Header.Get("X-Sentry-Auth"), "sentry_key=publickey") && !bytes.Contains(raw, []byte("publickey")) {
			t.Errorf("sentry: the envelope names no key: %v", r.Header)
		}
		s.mu.Lock()
		s.raw = append(s.raw, string(raw))
		s.events = append(s.events, parseEnvelope(t, raw)...)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"00000000000000000000000000000000"}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// parseEnvelope reads an envelope: a header line, then an item header line and its payload,
// for each item; the events among them are returned.
func parseEnvelope(t *testing.T, raw []byte) []sentryEvent {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	if !sc.Scan() {
		t.Errorf("sentry: empty envelope")
		return nil
	}
	var out []sentryEvent
	for sc.Scan() {
		var item struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &item); err != nil {
			t.Errorf("sentry: item header %q: %v", sc.Text(), err)
			return out
		}
		if !sc.Scan() {
			t.Errorf("sentry: item %s without payload", item.Type)
			return out
		}
		if item.Type != "event" {
			continue
		}
		var e sentryEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Errorf("sentry: event %q: %v", sc.Text(), err)
			continue
		}
		out = append(out, e)
	}
	return out
}

func (s *sentryServer) received() ([]sentryEvent, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sentryEvent(nil), s.events...), strings.Join(s.raw, "\n")
}

// panicky panics inside its stream, as a buggy provider would.
type panicky struct{}

func (panicky) Name() string { return "panicky" }
func (panicky) Stream(context.Context, llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(func(llm.Chunk, error) bool) { panic("provider bug: index out of range") }
}

// switchable delegates to whichever provider is current.
type switchable struct {
	mu sync.Mutex
	p  llm.Provider
}

func (s *switchable) set(p llm.Provider) { s.mu.Lock(); s.p = p; s.mu.Unlock() }
func (s *switchable) Name() string       { return "switchable" }
func (s *switchable) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	return p.Stream(ctx, req)
}

// Errors that become 5xx envelopes, and panics, reach Sentry with the request id, route and
// user id as tags, and with no key or request body in them; a 4xx does not.
func TestSentryReceivesServerErrors(t *testing.T) {
	sentrySrv := newSentryServer(t, "42")
	dsn := strings.Replace(sentrySrv.URL, "http://", "http://publickey@", 1) + "/42"
	reporter, err := gateway.NewSentryReporter(gateway.SentryConfig{DSN: dsn, Environment: "test", Release: "dartmouth@test"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.OpenSQLite(t.Context(), session.SQLiteConfig{Path: t.TempDir() + "/keys.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	aliceKey, _, err := keys.CreateKey(t.Context(), "alice", gateway.PlanPaid, "")
	if err != nil {
		t.Fatal(err)
	}
	provider := &switchable{p: &fixedModel{name: "upstream", err: errors.New("upstream exploded; it was sent Authorization: Bearer sk-live-abcdef123456")}}
	g := startGateway(t, provider, func(c *gateway.Config) {
		c.ErrorReporter = reporter
		c.Auth = gateway.AuthConfig{Mode: gateway.AuthKeys, Keys: keys}
	})
	send := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/api/v2/chat", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+aliceKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Error struct{ Code, RequestID string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&env)
		if env.Error.RequestID == "" || env.Error.RequestID != resp.Header.Get("X-Request-Id") {
			t.Fatalf("%d without the request id: %+v", resp.StatusCode, env)
		}
		return resp.StatusCode, env.Error.RequestID
	}
	const secretBody = "SECRET-BODY-MARKER"
	status, failedID := send(`{"agentId":"passthrough","message":"` + secretBody + `"}`)
	if status != http.StatusInternalServerError {
		t.Fatalf("a failing provider: %d, want 500", status)
	}
	if status, _ := send(`{"agentId":"nobody","message":"hi"}`); status != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", status)
	}
	provider.set(panicky{})
	status, panicID := send(`{"agentId":"passthrough","message":"` + secretBody + `"}`)
	if status != http.StatusInternalServerError {
		t.Fatalf("a panic: %d, want 500", status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !reporter.Close(ctx) { // what cmd does at shutdown
		t.Fatal("the events were not flushed")
	}
	events, raw := sentrySrv.received()
	byRequest := map[string][]sentryEvent{}
	for _, e := range events {
		byRequest[e.Tags["request_id"]] = append(byRequest[e.Tags["request_id"]], e)
	}
	if len(events) != 2 || len(byRequest[failedID]) != 1 || len(byRequest[panicID]) != 1 {
		t.Fatalf("want one event per 5xx request (%s, %s) and none for the 404; got %d: %+v", failedID, panicID, len(events), byRequest)
	}
	failed := byRequest[failedID][0]
	if failed.Level != "error" || failed.Tags["route"] != "/api/v2/chat" || failed.Tags["method"] != "POST" || failed.Tags["user_id"] != "alice" ||
		failed.Tags["status"] != "500" || failed.Tags["code"] != gateway.CodeInternal {
		t.Errorf("the failure's event: %+v", failed)
	}
	values := failed.Exception
	if len(values) == 0 || !strings.Contains(values[len(values)-1].Value+values[0].Value, "upstream exploded") {
		t.Errorf("the failure's exception: %+v", values)
	}
	p := byRequest[panicID][0]
	pv := p.Exception
	if p.Level != "fatal" || p.Tags["panic"] != "true" || p.Tags["user_id"] != "alice" || len(pv) == 0 ||
		!strings.Contains(pv[len(pv)-1].Value, "provider bug: index out of range") || pv[len(pv)-1].Stacktrace == nil {
		t.Errorf("the panic's event: %+v", p)
	}
	for _, leaked := range []string{"sk-live-abcdef123456", aliceKey, secretBody} {
		if strings.Contains(raw, leaked) {
			t.Errorf("%q reached Sentry:\n%s", leaked, raw)
		}
	}
	if !strings.Contains(raw, "[redacted]") || len(failed.Request) != 0 {
		t.Errorf("the key in the error was not redacted, or a request was attached:\n%s", raw)
	}
}

func TestSentryReporterNeedsADSN(t *testing.T) {
	if _, err := gateway.NewSentryReporter(gateway.SentryConfig{}); err == nil {
		t.Error("no error without a DSN")
	}
	if _, err := gateway.NewSentryReporter(gateway.SentryConfig{DSN: "not a dsn"}); err == nil {
		t.Error("no error for a bad DSN")
	}
}
