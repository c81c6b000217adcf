package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// serving is the wired binary running "serve" on a loopback port.
type serving struct {
	base   string
	stop   func()
	exited chan error
}

func startServe(t *testing.T, dataDir string, extraEnv ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"DARTMOUTH_ADDR": "127.0.0.1:0", "DARTMOUTH_DATA_DIR": dataDir, "DARTMOUTH_LOG_FORMAT": "json"}
	for i := 0; i+1 < len(extraEnv); i += 2 {
		env[extraEnv[i]] = extraEnv[i+1]
	}
	logs, logw := io.Pipe()
	s := &serving{exited: make(chan error, 1)}
	go func() {
		err := run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, logw)
		logw.Close()
		s.exited <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "dartmouth listening" {
				addr <- rec["addr"].(string)
			}
		}
		_, _ = io.Copy(io.Discard, logs)
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case err := <-s.exited:
		cancel()
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("not listening after 30s")
	}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-s.exited; err != nil {
			t.Errorf("serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	}
	t.Cleanup(s.stop)
	return s
}

func (s *serving) post(t *testing.T, path, body string, out any) int {
	t.Helper()
	resp, err := http.Post(s.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: not JSON: %v", path, err)
	}
	return resp.StatusCode
}

// openSession opens a WebSocket session for user and returns its frames.
func (s *serving) openSession(t *testing.T, ctx context.Context, user string) (*websocket.Conn, <-chan map[string]any) {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.base, "http")+"/api/v2/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	frames := make(chan map[string]any, 16)
	go func() {
		defer close(frames)
		for {
			var f map[string]any
			if err := wsjson.Read(ctx, conn, &f); err != nil {
				return
			}
			frames <- f
		}
	}()
	if err := wsjson.Write(ctx, conn, map[string]any{"type": "session.start", "agentId": "pa", "userId": user}); err != nil {
		t.Fatal(err)
	}
	if f := nextFrame(t, frames, "session.started", 10*time.Second); f == nil {
		t.Fatal("no session.started")
	}
	return conn, frames
}

// nextFrame waits for a frame of a type, skipping others.
func nextFrame(t *testing.T, frames <-chan map[string]any, typ string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("the session closed before a %q frame", typ)
			}
			if f["type"] == typ {
				return f
			}
		case <-deadline:
			t.Fatalf("no %q frame within %v", typ, within)
		}
	}
}

// The wired binary: pa answers chat, its records are on REST, and a reminder due in two
// seconds reaches the user's WebSocket from the real scheduler.
func TestServeWiresThePersonalAssistant(t *testing.T) {
	s := startServe(t, t.TempDir())
	var chat struct {
		Content string `json:"content"`
	}
	if status := s.post(t, "/api/v2/chat", `{"agentId":"pa","userId":"nina","message":"add milk to my shopping list"}`, &chat); status != 200 || chat.Content != "Added milk to your shopping list." {
		t.Fatalf("chat: %d %+v", status, chat)
	}
	resp, err := http.Get(s.base + "/api/v2/pa/tasks?userId=nina")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Total int `json:"total"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if list.Total != 1 {
		t.Fatalf("REST sees %d tasks", list.Total)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, frames := s.openSession(t, ctx, "nina")
	due := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	var created map[string]any
	if status := s.post(t, "/api/v2/pa/reminders", `{"userId":"nina","text":"stretch","dueAt":"`+due+`"}`, &created); status != http.StatusCreated {
		t.Fatalf("create reminder: %d %v", status, created)
	}
	f := nextFrame(t, frames, "reminder", 10*time.Second)
	if f["text"] != "Reminder: stretch" {
		t.Fatalf("reminder frame %v", f)
	}
}

// A reminder still pending when the server stops fires after it starts again on the same data.
func TestServeFiresPendingRemindersAfterRestart(t *testing.T) {
	dir := t.TempDir()
	first := startServe(t, dir)
	dueAt := time.Now().Add(5 * time.Second)
	var created map[string]any
	if status := first.post(t, "/api/v2/pa/reminders", `{"userId":"nina","text":"take the bins out","dueAt":"`+dueAt.UTC().Format(time.RFC3339Nano)+`"}`, &created); status != http.StatusCreated {
		t.Fatalf("create reminder: %d %v", status, created)
	}
	first.stop()

	second := startServe(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, frames := second.openSession(t, ctx, "nina")
	if time.Now().Before(dueAt) {
		f := nextFrame(t, frames, "reminder", 15*time.Second)
		if r, _ := f["reminder"].(map[string]any); r["id"] != created["id"] || f["text"] != "Reminder: take the bins out" {
			t.Fatalf("reminder frame %v", f)
		}
		return
	}
	// A slow machine restarted after the reminder fell due: it fired at start before the
	// session opened, or fires on the next poll (within a second). Either way it fires.
	select {
	case f := <-frames:
		if f["type"] == "reminder" {
			return
		}
	case <-time.After(3 * time.Second):
	}
	resp, err := http.Get(second.base + "/api/v2/pa/reminders/" + created["id"].(string) + "?userId=nina")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	if got["status"] != "fired" {
		t.Fatalf("after restart the reminder is %v", got)
	}
}

// TestServeEmailsAndTextsReminders: with SendGrid and Twilio configured, a reminder is also
// emailed and texted to the user's own contact card ("me"), through local servers speaking
// both APIs.
func TestServeEmailsAndTextsReminders(t *testing.T) {
	type call struct {
		path, auth string
		body       []byte
	}
	calls := make(chan call, 4)
	record := func(status int, reply string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			calls <- call{r.URL.Path, r.Header.Get("Authorization"), body}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, reply)
		}
	}
	sendgrid := httptest.NewServer(record(http.StatusAccepted, ""))
	defer sendgrid.Close()
	twilio := httptest.NewServer(record(http.StatusCreated, `{"sid":"SM1","status":"queued"}`))
	defer twilio.Close()
	s := startServe(t, t.TempDir(),
		"DARTMOUTH_SENDGRID_API_KEY", "SG.test-key", "DARTMOUTH_SENDGRID_BASE_URL", sendgrid.URL, "DARTMOUTH_EMAIL_FROM", "Dartmouth <noreply@example.com>",
		"DARTMOUTH_TWILIO_ACCOUNT_SID", "AC123", "DARTMOUTH_TWILIO_AUTH_TOKEN", "secret", "DARTMOUTH_TWILIO_FROM", "+15550001111", "DARTMOUTH_TWILIO_BASE_URL", twilio.URL)

	if status := s.post(t, "/api/v2/pa/contacts", `{"userId":"nina","name":"me","email":"nina@example.com","phone":"+15550002222"}`, &map[string]any{}); status != http.StatusCreated {
		t.Fatalf("create contact: %d", status)
	}
	due := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)
	if status := s.post(t, "/api/v2/pa/reminders", `{"userId":"nina","text":"stretch","dueAt":"`+due+`"}`, &map[string]any{}); status != http.StatusCreated {
		t.Fatalf("create reminder: %d", status)
	}
	got := map[string]call{}
	for len(got) < 2 {
		select {
		case c := <-calls:
			got[c.path] = c
		case <-time.After(15 * time.Second):
			t.Fatalf("reminder not sent by both email and SMS; got %v", got)
		}
	}
	email := got["/v3/mail/send"]
	if email.auth != "Bearer SG.test-key" || !strings.Contains(string(email.body), "nina@example.com") || !strings.Contains(string(email.body), "stretch") {
		t.Errorf("email request: auth %q body %s", email.auth, email.body)
	}
	sms := got["/2010-04-01/Accounts/AC123/Messages.json"]
	if !strings.Contains(string(sms.body), "To=%2B15550002222") || !strings.Contains(string(sms.body), "stretch") {
		t.Errorf("SMS request body %s", sms.body)
	}
}

func TestWebRTCSettings(t *testing.T) {
	for _, tc := range []struct {
		servers, ports, wantErr string
		wantServers             int
		wantTURNUser            string
	}{
		{servers: "", ports: ""},
		{servers: "stun:stun.example.com:3478, turn:turn.example.com:3478?transport=udp", ports: "50000-50100", wantServers: 2, wantTURNUser: "u"},
		{servers: "http://example.com", wantErr: "not a stun: or turn: URL"},
		{ports: "50100-50000", wantErr: "MIN-MAX"},
		{ports: "abc", wantErr: "MIN-MAX"},
	} {
		c := &Config{ICEServers: tc.servers, WebRTCUDPPort: tc.ports, TURNUsername: "u", TURNPassword: "p"}
		w, err := c.webRTC()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v: err %v, want %q", tc, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(w.ICEServers) != tc.wantServers {
			t.Errorf("%+v: %+v, %v", tc, w, err)
		}
		if tc.wantTURNUser != "" && (w.ICEServers[1].Username != tc.wantTURNUser || w.ICEServers[0].Username != "" || w.UDPPortMin != 50000 || w.UDPPortMax != 50100) {
			t.Errorf("%+v: %+v", tc, w)
		}
	}
}
