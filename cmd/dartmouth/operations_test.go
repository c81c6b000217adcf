package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dartmouth-gw/dartmouth/session"
)

// Analytics events are written in batches, so the last turns' events are still in memory when
// SIGTERM comes: the shutdown writes them before the process exits, and none is lost. The
// flush interval is an hour here, so every event is still pending at SIGTERM.
func TestAnalyticsEventsSurviveShutdown(t *testing.T) {
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", dataDir, "--rate-limit=false", "--analytics-flush", "1h")
	cmd.Env = quietEnv()
	p := start(t, cmd)
	const turns = 12
	for range turns {
		chat(t, p.url, `{"agentId":"fam","message":"hello","userId":"ann"}`)
	}
	resp, err := rateClient.Get(p.url + "/api/v2/analytics?groupBy=agent")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Source string `json:"source"`
		Totals struct {
			Turns int `json:"turns"`
		} `json:"totals"`
	}
	err = json.NewDecoder(resp.Body).Decode(&report)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || report.Source != "events" || report.Totals.Turns != 0 {
		t.Fatalf("GET /api/v2/analytics: %d %+v %v", resp.StatusCode, report, err)
	}
	p.stop(t)

	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: filepath.Join(dataDir, "dartmouth.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	n, err := store.CountEvents(context.Background(), "ann", session.EventTurnCompleted)
	if err != nil || n != turns {
		t.Fatalf("%d turn.completed events after a graceful shutdown, want %d (%v)\n%s", n, turns, err, p.logs)
	}
}
