package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// paGateway is a gateway serving the PA endpoints and the pa agent over one SQLite store.
type paGateway struct {
	url   string
	store *session.SQLStore
}

func startPAGateway(t *testing.T, configure ...func(*gateway.Config)) *paGateway {
	t.Helper()
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/pa.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	agent, err := pa.New(pa.Config{Store: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := agents.NewRegistry(agent)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: offline.New(offline.Config{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	configure = append([]func(*gateway.Config){func(c *gateway.Config) { c.PA = store }}, configure...)
	return &paGateway{url: gatewaytest.Serve(t, engine, configure...), store: store}
}

// call sends a request as JSON and decodes the JSON answer (none for 204).
func (g *paGateway) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if method == http.MethodDelete || method == http.MethodGet {
		req.Body = http.NoBody
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if resp.StatusCode != http.StatusNoContent {
		if err := jsonDecode(resp.Body, &out); err != nil {
			t.Fatalf("%s %s: not JSON (%d): %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, out
}

// paCase is one resource with a valid body, a change to it, and a field to read back.
type paCase struct {
	path, key     string // /tasks; the list's key
	create, patch string // JSON fields, without braces
	field         string // a field the patch changes
	before, after any
}

var paCases = []paCase{
	{"/tasks", "tasks", `"title":"milk","list":"shopping"`, `"title":"oat milk"`, "title", "milk", "oat milk"},
	{"/reminders", "reminders", `"text":"call mom","dueAt":"2030-03-04T17:00:00-05:00","timeZone":"America/New_York"`, `"status":"cancelled"`, "status", "pending", "cancelled"},
	{"/notes", "notes", `"body":"gate code 4512"`, `"body":"gate code 9999"`, "body", "gate code 4512", "gate code 9999"},
	{"/calendar", "events", `"title":"standup","start":"2030-03-04T09:00:00Z","end":"2030-03-04T09:15:00Z"`, `"location":"room 4"`, "location", "", "room 4"},
	{"/contacts", "contacts", `"name":"John Smith","email":"john@example.com","phone":"+1 555 0100"`, `"phone":"+1 555 0199"`, "phone", "+1 555 0100", "+1 555 0199"},
}

func TestPARESTCreateReadUpdateDelete(t *testing.T) {
	g := startPAGateway(t)
	for _, tc := range paCases {
		t.Run(tc.path, func(t *testing.T) {
			base := "/api/v2/pa" + tc.path
			status, created := g.call(t, "POST", base, `{"userId":"ann",`+tc.create+`}`)
			if status != http.StatusCreated || created["id"] == nil || created[tc.field] != tc.before {
				t.Fatalf("create: %d %v", status, created)
			}
			id := created["id"].(string)
			status, list := g.call(t, "GET", base+"?userId=ann", "")
			items, _ := list[tc.key].([]any)
			if status != http.StatusOK || len(items) != 1 || items[0].(map[string]any)["id"] != id || list["total"] != 1.0 {
				t.Fatalf("list: %d %v", status, list)
			}
			if status, got := g.call(t, "GET", base+"/"+id+"?userId=ann", ""); status != http.StatusOK || got["id"] != id {
				t.Fatalf("get: %d %v", status, got)
			}
			status, patched := g.call(t, "PATCH", base+"/"+id, `{"userId":"ann",`+tc.patch+`}`)
			if status != http.StatusOK || patched[tc.field] != tc.after {
				t.Fatalf("patch: %d %v", status, patched)
			}
			for k, v := range created { // a PATCH changes only what it names
				if k != tc.field && k != "updatedAt" && k != "firedAt" && fmt.Sprint(patched[k]) != fmt.Sprint(v) {
					t.Errorf("patch changed %s: %v -> %v", k, v, patched[k])
				}
			}
			if status, _ := g.call(t, "DELETE", base+"/"+id+"?userId=ann", ""); status != http.StatusNoContent {
				t.Fatalf("delete: %d", status)
			}
			status, gone := g.call(t, "GET", base+"/"+id+"?userId=ann", "")
			if status != http.StatusNotFound || errCode(gone) != gateway.CodeNotFound {
				t.Fatalf("after delete: %d %v", status, gone)
			}
		})
	}
}

// Tenant isolation over REST: with bob's ids, alice reads, changes and deletes nothing, and
// lists nothing of his.
func TestPARESTUsersCannotTouchEachOthersRecords(t *testing.T) {
	g := startPAGateway(t)
	for _, tc := range paCases {
		t.Run(tc.path, func(t *testing.T) {
			base := "/api/v2/pa" + tc.path
			_, bobs := g.call(t, "POST", base, `{"userId":"bob",`+tc.create+`}`)
			id := bobs["id"].(string)
			for _, attempt := range []struct{ method, path, body string }{
				{"GET", base + "/" + id + "?userId=alice", ""},
				{"PATCH", base + "/" + id, `{"userId":"alice",` + tc.patch + `}`},
				{"PATCH", base + "/" + id + "?userId=alice", `{` + tc.patch + `}`},
				{"DELETE", base + "/" + id + "?userId=alice", ""},
			} {
				status, out := g.call(t, attempt.method, attempt.path, attempt.body)
				if status != http.StatusNotFound || errCode(out) != gateway.CodeNotFound {
					t.Errorf("alice %s %s: %d %v, want 404 not_found", attempt.method, attempt.path, status, out)
				}
			}
			if _, list := g.call(t, "GET", base+"?userId=alice", ""); list["total"] != 0.0 {
				t.Errorf("alice lists %v", list)
			}
			if status, got := g.call(t, "GET", base+"/"+id+"?userId=bob", ""); status != http.StatusOK || got[tc.field] != tc.before {
				t.Errorf("bob's record after alice: %d %v", status, got)
			}
		})
	}
}

func TestPARESTRefusesBadInputWithTheEnvelope(t *testing.T) {
	g := startPAGateway(t)
	_, task := g.call(t, "POST", "/api/v2/pa/tasks", `{"userId":"ann","title":"milk"}`)
	taskPath := "/api/v2/pa/tasks/" + task["id"].(string)
	tests := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"malformed JSON", "POST", "/api/v2/pa/tasks", `{"userId":"ann","title":`, 400, gateway.CodeInvalidJSON, ""},
		{"wrong type", "POST", "/api/v2/pa/tasks", `{"userId":"ann","title":7}`, 400, gateway.CodeInvalidJSON, ""},
		{"no user", "POST", "/api/v2/pa/tasks", `{"title":"milk"}`, 400, gateway.CodeValidation, "userId"},
		{"anonymous user", "GET", "/api/v2/pa/notes?userId=anonymous", "", 400, gateway.CodeValidation, "userId"},
		{"bad user id", "GET", "/api/v2/pa/notes?userId=a%20b", "", 400, gateway.CodeValidation, "userId"},
		{"missing title", "POST", "/api/v2/pa/tasks", `{"userId":"ann","list":"shopping"}`, 400, gateway.CodeValidation, "title"},
		{"bad time", "POST", "/api/v2/pa/reminders", `{"userId":"ann","text":"x","dueAt":"tomorrow"}`, 400, gateway.CodeInvalidJSON, ""},
		{"reminder without time", "POST", "/api/v2/pa/reminders", `{"userId":"ann","text":"x"}`, 400, gateway.CodeValidation, "dueAt"},
		{"bad zone", "POST", "/api/v2/pa/reminders", `{"userId":"ann","text":"x","dueAt":"2030-01-01T00:00:00Z","timeZone":"Mars/Base"}`, 400, gateway.CodeValidation, "timeZone"},
		{"event ends first", "POST", "/api/v2/pa/calendar", `{"userId":"ann","title":"x","start":"2030-01-01T10:00:00Z","end":"2030-01-01T09:00:00Z"}`, 400, gateway.CodeValidation, "end"},
		{"bad email", "POST", "/api/v2/pa/contacts", `{"userId":"ann","name":"x","email":"nope"}`, 400, gateway.CodeValidation, "email"},
		{"patch to empty title", "PATCH", taskPath, `{"userId":"ann","title":""}`, 400, gateway.CodeValidation, "title"},
		{"bad limit", "GET", "/api/v2/pa/tasks?userId=ann&limit=0", "", 400, gateway.CodeValidation, "limit"},
		{"bad status filter", "GET", "/api/v2/pa/tasks?userId=ann&status=later", "", 400, gateway.CodeValidation, "status"},
		{"bad from", "GET", "/api/v2/pa/calendar?userId=ann&from=monday", "", 400, gateway.CodeValidation, "from"},
		{"unknown id", "GET", "/api/v2/pa/contacts/con_missing?userId=ann", "", 404, gateway.CodeNotFound, ""},
		{"unknown collection", "GET", "/api/v2/pa/widgets?userId=ann", "", 404, gateway.CodeNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := g.call(t, tt.method, tt.path, tt.body)
			e, _ := out["error"].(map[string]any)
			if status != tt.status || errCode(out) != tt.code || e["message"] == "" || e["requestId"] == "" {
				t.Fatalf("%d %v, want %d %s", status, out, tt.status, tt.code)
			}
			if tt.field != "" {
				if d, _ := e["details"].(map[string]any); d["field"] != tt.field {
					t.Fatalf("details %v, want field %s", e["details"], tt.field)
				}
			}
		})
	}
	if _, got := g.call(t, "GET", taskPath+"?userId=ann", ""); got["title"] != "milk" {
		t.Fatalf("a refused patch changed the task: %v", got)
	}
}

func TestPARESTTaskFieldsAndFilters(t *testing.T) {
	g := startPAGateway(t)
	_, milk := g.call(t, "POST", "/api/v2/pa/tasks", `{"userId":"ann","title":"milk","list":"Shopping","dueAt":"2030-03-04T17:00:00-05:00"}`)
	g.call(t, "POST", "/api/v2/pa/tasks", `{"userId":"ann","title":"pay rent"}`)
	if milk["list"] != "shopping" || milk["dueAt"] != "2030-03-04T22:00:00Z" || milk["done"] != false || milk["doneAt"] != nil {
		t.Fatalf("created %v", milk)
	}
	path := "/api/v2/pa/tasks/" + milk["id"].(string)
	_, done := g.call(t, "PATCH", path, `{"userId":"ann","done":true,"dueAt":null}`)
	if done["done"] != true || done["doneAt"] == nil || done["dueAt"] != nil {
		t.Fatalf("completed with the due date cleared: %v", done)
	}
	for query, want := range map[string]float64{"list=shopping": 1, "status=open": 1, "status=done": 1, "q=RENT": 1, "": 2, "limit=1": 1} {
		if _, list := g.call(t, "GET", "/api/v2/pa/tasks?userId=ann&"+query, ""); list["total"] != want {
			t.Errorf("%s: %v", query, list)
		}
	}
	_, ev := g.call(t, "POST", "/api/v2/pa/calendar", `{"userId":"ann","title":"offsite","start":"2030-03-07T00:00:00Z","end":"2030-03-08T00:00:00Z","allDay":true,"externalId":"google-1"}`)
	if ev["allDay"] != true || ev["externalId"] != "google-1" {
		t.Fatalf("event %v", ev)
	}
	for query, want := range map[string]float64{"from=2030-03-07T12:00:00Z&to=2030-03-07T13:00:00Z": 1, "from=2030-03-08T00:00:00Z": 0} {
		if _, list := g.call(t, "GET", "/api/v2/pa/calendar?userId=ann&"+query, ""); list["total"] != want {
			t.Errorf("%s: %v", query, list)
		}
	}
}

func TestPARESTWithoutAStoreIsUnavailable(t *testing.T) {
	g := startPAGateway(t, func(c *gateway.Config) { c.PA = nil })
	status, out := g.call(t, "GET", "/api/v2/pa/tasks?userId=ann", "")
	if status != http.StatusServiceUnavailable || errCode(out) != gateway.CodeUnavailable {
		t.Fatalf("%d %v", status, out)
	}
}

// Chat and REST act on the same records, and neither lets one user reach another's.
func TestPAChatAndRESTShareRecordsPerUser(t *testing.T) {
	g := startPAGateway(t)
	var r struct {
		Content string `json:"content"`
	}
	gatewaytest.Chat(t, g.url, map[string]any{"agentId": pa.ID, "userId": "alice", "message": "add milk to my shopping list"}, &r)
	_, list := g.call(t, "GET", "/api/v2/pa/tasks?userId=alice&list=shopping", "")
	items, _ := list["tasks"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["title"] != "milk" {
		t.Fatalf("alice's REST list after chat: %v", list)
	}
	milkID := items[0].(map[string]any)["id"].(string)

	g.call(t, "POST", "/api/v2/pa/notes", `{"userId":"alice","body":"alice's secret"}`)
	for msg, want := range map[string]string{
		"what's on my shopping list": "Your shopping list is empty.",
		"show my notes":              `You have no notes yet. Say "note: ..." to take one.`,
		"mark milk as done":          `I couldn't find "milk" on your lists.`,
	} {
		gatewaytest.Chat(t, g.url, map[string]any{"agentId": pa.ID, "userId": "bob", "message": msg}, &r)
		if r.Content != want {
			t.Errorf("bob %q: %q, want %q", msg, r.Content, want)
		}
	}
	if status, _ := g.call(t, "DELETE", "/api/v2/pa/tasks/"+milkID+"?userId=bob", ""); status != http.StatusNotFound {
		t.Fatalf("bob deleted alice's task over REST: %d", status)
	}
	gatewaytest.Chat(t, g.url, map[string]any{"agentId": pa.ID, "userId": "alice", "message": "mark milk as done"}, &r)
	if _, got := g.call(t, "GET", "/api/v2/pa/tasks/"+milkID+"?userId=alice", ""); got["done"] != true {
		t.Fatalf("alice's own chat completes her task: %v", got)
	}
}

// In keys mode the PA endpoints act for the authenticated user only: naming another user is
// refused, and without credentials nothing is served.
func TestPARESTFollowsAuthentication(t *testing.T) {
	paStore, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/pa.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { paStore.Close() })
	a := startAuthGateway(t, func(c *gateway.Config) { c.PA = paStore })
	resp, created := do(t, "POST", a.URL+"/api/v2/pa/notes", bearer(a.alice), `{"body":"alice's note"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with alice's key: %d %v", resp.StatusCode, created)
	}
	if notes, _ := paStore.ListNotes(context.Background(), "alice", session.NoteFilter{}); len(notes) != 1 {
		t.Fatalf("the note is not alice's: %v", notes)
	}
	if resp, out := do(t, "GET", a.URL+"/api/v2/pa/notes?userId=alice", bearer(a.bob), ""); resp.StatusCode != http.StatusForbidden || errCode(out) != gateway.CodeForbidden {
		t.Fatalf("bob asking for alice's notes: %d %v", resp.StatusCode, out)
	}
	if resp, out := do(t, "GET", a.URL+"/api/v2/pa/notes/"+created["id"].(string), bearer(a.bob), ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob reading alice's note by id: %d %v", resp.StatusCode, out)
	}
	if resp, out := do(t, "GET", a.URL+"/api/v2/pa/notes", "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d %v", resp.StatusCode, out)
	}
}

// Acceptance: a reminder due in two seconds reaches the user's open WebSocket, pushed by the
// scheduler through DeliverToUser, and no other user's.
func TestReminderReachesTheUsersWebSocket(t *testing.T) {
	g := startGateway(t, nil)
	clock := newFakeClock()
	if _, err := g.Store.EnsureUser(context.Background(), "reminded", ""); err != nil {
		t.Fatal(err)
	}
	r, err := g.Store.CreateReminder(context.Background(), session.Reminder{UserID: "reminded", Text: "call my mom", DueAt: clock.Now().Add(2 * time.Second), TimeZone: "America/New_York"})
	if err != nil {
		t.Fatal(err)
	}
	mine := dialVoice(t, g)
	mine.startVoice(map[string]any{"agentId": "fam", "userId": "reminded"})
	other := dialVoice(t, g)
	other.startVoice(map[string]any{"agentId": "fam", "userId": "someone-else"})

	ticks := make(chan time.Time)
	sched, err := pa.NewScheduler(pa.SchedulerConfig{
		Reminders: g.Store, Clock: clock, Logger: slog.New(slog.DiscardHandler),
		Ticker: func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} },
		Deliverer: pa.DelivererFunc(func(ctx context.Context, r session.Reminder) error {
			_, err := g.Srv.DeliverToUser(ctx, r.UserID, pa.NewReminderEvent(r))
			return err
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	defer func() { cancel(); <-done }()

	ticks <- time.Time{} // the first poll ran: not due yet
	clock.Advance(2 * time.Second)
	ticks <- time.Time{}
	if ev := mine.next(5*time.Second, nil, "reminder"); ev.Text != "Reminder: call your mom" {
		t.Fatalf("reminder frame %+v", ev)
	}
	other.sendJSON(map[string]any{"type": "ping"})
	other.next(5*time.Second, func(ev voiceEvent) {
		if ev.Type == "reminder" {
			t.Error("another user's session got the reminder")
		}
	}, "pong")
	if got, _ := g.Store.GetReminder(context.Background(), "reminded", r.ID); got.Status != session.ReminderFired {
		t.Fatalf("reminder after delivery: %+v", got)
	}
}
