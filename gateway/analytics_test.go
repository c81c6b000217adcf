package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

// lateUsage is a gateway.UsageReader whose store is set once the test gateway has opened it.
type lateUsage struct {
	mu    sync.Mutex
	store *session.SQLStore
}

func (l *lateUsage) EventUsage(ctx context.Context, q session.EventUsageQuery) ([]session.EventUsageRow, error) {
	l.mu.Lock()
	s := l.store
	l.mu.Unlock()
	return s.EventUsage(ctx, q)
}

type analyticsBody struct {
	From, To string
	GroupBy  []string
	Source   string
	Totals   session.EventUsageRow
	Rows     []session.EventUsageRow
	Error    *struct {
		Code    string
		Message string
		Details map[string]any
	}
}

func getAnalytics(t *testing.T, g *testGateway, query, bearer string) (int, analyticsBody) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v2/analytics"+query, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body analyticsBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return resp.StatusCode, body
}

// GET /api/v2/analytics counts the turns that happened, text and voice, by agent, intent,
// voice tier and day.
func TestAnalyticsEndpoint(t *testing.T) {
	usage := &lateUsage{}
	g := instantVoiceGateway(t, 200*time.Millisecond, func(c *gateway.Config) { c.Analytics = usage })
	usage.mu.Lock()
	usage.store = g.Store
	usage.mu.Unlock()

	for _, body := range []string{
		`{"agentId":"fam","message":"hello","userId":"alice"}`,
		`{"agentId":"fam","message":"what is 12 times 7?","userId":"alice"}`,
		`{"agentId":"fam","message":"hello","userId":"bob"}`,
	} {
		if resp, out := postJSON(t, g.URL+"/api/v2/chat", body); resp.StatusCode != http.StatusOK {
			t.Fatalf("chat: %d %v", resp.StatusCode, out)
		}
	}
	// One spoken turn, on the local tier of the test's voice router.
	c := dialVoice(t, g)
	c.startVoice(map[string]any{"agentId": "fam", "userId": "carol", "audio": map[string]any{"format": "pcm16", "sampleRate": 16000}})
	c.sendJSON(map[string]any{"type": "text", "text": "hello there"})
	c.next(10*time.Second, nil, "response.done")
	if n, err := g.Store.CountEvents(t.Context(), "carol", session.EventVoiceTurn); err != nil || n != 1 {
		t.Fatalf("voice.turn events: %d %v", n, err)
	}
	if _, m := scrape(t, g, ""); m != nil {
		if v, ok := sample(m, "dartmouth_tts_first_byte_seconds", map[string]string{"tier": "local"}); !ok || v < 1 {
			t.Errorf("TTS time to first byte of the spoken reply: %v %v", v, ok)
		}
	}

	status, r := getAnalytics(t, g, "?groupBy=agent,tier", "")
	if status != http.StatusOK || r.Source != "events" || len(r.GroupBy) != 2 {
		t.Fatalf("analytics: %d %+v", status, r)
	}
	tiers := map[string]session.EventUsageRow{}
	for _, row := range r.Rows {
		if row.Agent != "fam" {
			t.Errorf("a row of another agent: %+v", row)
		}
		tiers[row.Tier] = row
	}
	if tiers["text"].Turns != 3 || tiers["local"].Turns != 1 || r.Totals.Turns != 4 || r.Totals.Errors != 0 {
		t.Errorf("by agent and tier: %+v totals %+v", r.Rows, r.Totals)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if r.From > today || r.To != today {
		t.Errorf("the default period is the last 7 days: %s to %s", r.From, r.To)
	}

	status, r = getAnalytics(t, g, "?from="+today+"&to="+today+"&userId=alice&groupBy=intent,day", "")
	if status != http.StatusOK || r.Totals.Turns != 2 || len(r.Rows) != 2 || r.Rows[0].Day != today || r.Rows[0].Intent == r.Rows[1].Intent {
		t.Errorf("alice's turns by intent and day: %d %+v", status, r)
	}
	status, r = getAnalytics(t, g, "?groupBy=", "")
	if status != http.StatusOK || len(r.Rows) != 1 || r.Rows[0].Turns != 4 || r.Rows[0].Day != "" {
		t.Errorf("no grouping gives one row of totals: %+v", r)
	}

	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	for _, bad := range []struct{ query, field string }{
		{"?from=2026-13-01", "from"},
		{"?to=yesterday", "to"},
		{"?from=" + today + "&to=" + yesterday, "from"},
		{"?from=2020-01-01&to=2026-01-01", "from"},
		{"?groupBy=agent,model", "groupBy"},
		{"?groupBy=day,day", "groupBy"},
	} {
		status, r := getAnalytics(t, g, bad.query, "")
		if status != http.StatusBadRequest || r.Error == nil || r.Error.Code != gateway.CodeValidation || r.Error.Details["field"] != bad.field || r.Error.Message == "" {
			t.Errorf("%s: %d %+v, want 400 %s on %s", bad.query, status, r.Error, gateway.CodeValidation, bad.field)
		}
	}
}

// The endpoint is the admin's, and needs a usage reader.
func TestAnalyticsEndpointAccess(t *testing.T) {
	const admin = "admin-key-0123456789"
	g := startGateway(t, nil, func(c *gateway.Config) { c.Auth = gateway.AuthConfig{AdminKey: admin} })
	if status, _ := getAnalytics(t, g, "", ""); status != http.StatusUnauthorized {
		t.Errorf("without the admin key: %d", status)
	}
	if status, r := getAnalytics(t, g, "", admin); status != http.StatusServiceUnavailable || r.Error == nil || r.Error.Code != gateway.CodeUnavailable {
		t.Errorf("without a usage reader: %d %+v", status, r.Error)
	}
}
