package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"github.com/dartmouth-gw/dartmouth/session/redistest"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// countingS3 is an in-process S3 server (gofakes3) that counts the objects written under each
// key, so a job that ran twice is seen.
type countingS3 struct {
	*httptest.Server
	mu   sync.Mutex
	puts map[string]int
}

func startCountingS3(t *testing.T, bucket string) *countingS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	s := &countingS3{puts: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			s.mu.Lock()
			s.puts[strings.TrimPrefix(r.URL.Path, "/"+bucket+"/")]++
			s.mu.Unlock()
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingS3) putsUnder(prefix string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, n := range s.puts {
		if strings.HasPrefix(k, prefix) {
			out[k] = n
		}
	}
	return out
}

// TestThreeReplicasShareRedisPostgresAndS3 is issue 8's first acceptance test: three gateway
// processes on loopback share a real redis-server, a real PostgreSQL and an S3 server. A chat
// started on A continues on B; a sentence synthesized through A is a cache hit on C; a
// reminder set on A reaches a WebSocket client on C; the archival job archives a finished
// conversation exactly once.
func TestThreeReplicasShareRedisPostgresAndS3(t *testing.T) {
	rdb := redistest.Start(t)
	dbURL := pgtest.Start(t).NewDatabase(t)
	s3 := startCountingS3(t, "dartmouth")

	// A conversation that ended 40 days ago, for the archival job.
	ctx := context.Background()
	store, err := session.OpenPostgres(ctx, session.PostgresConfig{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	old := time.Now().Add(-40 * 24 * time.Hour)
	if _, err := store.EnsureUser(ctx, "archived-user", "free"); err != nil {
		t.Fatal(err)
	}
	oldSession := session.Session{ID: session.NewID("ses"), UserID: "archived-user", AgentID: "fam", CreatedAt: old, UpdatedAt: old}
	if err := store.CreateSession(ctx, oldSession); err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{"hello", "Hello! How can I help?"} {
		role := []string{session.RoleUser, session.RoleAssistant}[i]
		if err := store.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: oldSession.ID, Role: role, Content: text, CreatedAt: old}); err != nil {
			t.Fatal(err)
		}
	}

	bin := buildBinary(t)
	replicas := startReplicas(t, bin, 3,
		"--redis-url", "redis://"+rdb.Addr, "--database-url", dbURL,
		"--s3-bucket", "dartmouth", "--s3-endpoint", s3.URL, "--s3-region", "us-east-1", "--s3-access-key", "test", "--s3-secret-key", "test",
		"--archive-interval", "1s", "--archive-days", "30", "--rate-limit=false")
	a, b, c := replicas[0], replicas[1], replicas[2]

	// A chat started on A continues on B with the history.
	var first struct {
		SessionID string `json:"sessionId"`
		Content   string `json:"content"`
	}
	postJSON(t, a.url+"/api/v2/chat", `{"agentId":"fam","userId":"roamer","message":"my name is John"}`, &first)
	var second struct {
		Content string `json:"content"`
	}
	postJSON(t, b.url+"/api/v2/chat", `{"agentId":"fam","userId":"roamer","sessionId":"`+first.SessionID+`","message":"what is my name?"}`, &second)
	if !strings.Contains(second.Content, "John") {
		t.Errorf("B answered %q: it did not see the conversation started on A", second.Content)
	}

	// A sentence synthesized through A is a cache hit on C.
	tts := func(base string) string {
		resp, err := http.Post(base+"/api/v2/voice/tts", "application/json", strings.NewReader(`{"text":"Shared across replicas."}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("tts on %s: %d", base, resp.StatusCode)
		}
		return resp.Header.Get("X-Voice-Cached")
	}
	if got := tts(a.url); got != "false" {
		t.Errorf("first synthesis on A: cached %q", got)
	}
	if got := tts(c.url); got != "true" {
		t.Errorf("the same sentence on C: cached %q, want a hit from A's synthesis", got)
	}

	// A reminder set on A reaches the user's WebSocket on C.
	wsCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(wsCtx, "ws"+strings.TrimPrefix(c.url, "http")+"/api/v2/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	writeWS(t, wsCtx, conn, `{"type":"session.start","agentId":"pa","userId":"roamer"}`)
	readWSType(t, wsCtx, conn, "session.started")
	due := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	postJSON(t, a.url+"/api/v2/pa/reminders", `{"userId":"roamer","text":"call mom","dueAt":"`+due+`"}`, &map[string]any{})
	if f := readWSType(t, wsCtx, conn, "reminder"); !strings.Contains(f["text"].(string), "call mom") {
		t.Errorf("reminder frame %v", f)
	}

	// The archival job, run by whichever replica holds the lock, archived the old
	// conversation once.
	key := ""
	deadline := time.Now().Add(20 * time.Second)
	for key == "" {
		for k := range s3.putsUnder("archive/") {
			if strings.Contains(k, oldSession.ID) {
				key = k
			}
		}
		if key == "" && time.Now().After(deadline) {
			t.Fatal("the finished conversation was never archived")
		}
		if key == "" {
			time.Sleep(100 * time.Millisecond) // polling the job's outcome, which no event announces
		}
	}
	// Give the other replicas several more archival ticks to (wrongly) archive it again.
	time.Sleep(3 * time.Second)
	if puts := s3.putsUnder("archive/"); puts[key] != 1 || len(puts) != 1 {
		t.Errorf("archive writes %v, want the one conversation written once", puts)
	}
	msgs, err := store.ListMessages(ctx, "archived-user", oldSession.ID, 0)
	if err != nil || len(msgs) != 0 {
		t.Errorf("the archived conversation still has %d messages in PostgreSQL (%v)", len(msgs), err)
	}
}

func postJSON(t *testing.T, url, body string, out any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var raw map[string]any
		json.NewDecoder(resp.Body).Decode(&raw)
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, raw)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
}

func writeWS(t *testing.T, ctx context.Context, conn *websocket.Conn, frame string) {
	t.Helper()
	if err := conn.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

func readWSType(t *testing.T, ctx context.Context, conn *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		if f["type"] == typ {
			return f
		}
		if f["type"] == "error" {
			t.Fatalf("waiting for %s: error %v", typ, f)
		}
	}
}
