package pa_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/gateway/gatewaytest"
	"github.com/dartmouth-gw/dartmouth/session"
)

// These scenarios drive the personal assistant through the real gateway (POST /api/v2/chat)
// with the offline engine, over a real SQLite store, on a clock that only moves when told.

// scenarioNow is Monday 3 March 2025 14:00 UTC: 9:00 AM in New York (EST, before the DST
// change of 9 March), 11:00 PM the same Monday in Tokyo.
var scenarioNow = time.Date(2025, 3, 3, 14, 0, 0, 0, time.UTC)

type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type harness struct {
	url   string
	store *session.SQLStore
	clock *manualClock
}

func startPA(t *testing.T) *harness {
	t.Helper()
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/pa.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := &manualClock{now: scenarioNow}
	quiet := slog.New(slog.DiscardHandler)
	agent, err := pa.New(pa.Config{Store: store, Clock: clock, Logger: quiet})
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
	return &harness{url: gatewaytest.Serve(t, engine), store: store, clock: clock}
}

type reply struct {
	SessionID string `json:"sessionId"`
	Content   string `json:"content"`
	Intent    string `json:"intent"`
	Metadata  struct {
		Provider string  `json:"provider"`
		Model    string  `json:"model"`
		Cost     float64 `json:"cost"`
	} `json:"metadata"`
}

// chat sends one message as user in zone (empty: none sent) in session (empty: a new one).
func (h *harness) chat(t *testing.T, user, zone, sessionID, message string) reply {
	t.Helper()
	body := map[string]any{"agentId": pa.ID, "message": message, "userId": user, "sessionId": sessionID}
	if zone != "" {
		body["context"] = map[string]any{"timeZone": zone}
	}
	var r reply
	gatewaytest.Chat(t, h.url, body, &r)
	if r.Metadata.Provider != pa.Provider || r.Metadata.Model != pa.ModelRules || r.Metadata.Cost != 0 {
		t.Fatalf("offline replies are the agent's own, at no cost: %+v", r.Metadata)
	}
	return r
}

// say is chat in a new session, checking that the reply contains every part.
func (h *harness) say(t *testing.T, user, zone, message string, parts ...string) reply {
	t.Helper()
	r := h.chat(t, user, zone, "", message)
	for _, p := range parts {
		if !strings.Contains(r.Content, p) {
			t.Fatalf("%q: the reply lacks %q:\n%s", message, p, r.Content)
		}
	}
	return r
}

func (h *harness) reminders(t *testing.T, user string) []session.Reminder {
	t.Helper()
	list, err := h.store.ListReminders(context.Background(), user, session.ReminderFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (h *harness) tasks(t *testing.T, user string, f session.TaskFilter) []session.Task {
	t.Helper()
	list, err := h.store.ListTasks(context.Background(), user, f)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (h *harness) events(t *testing.T, user string) []session.CalendarEvent {
	t.Helper()
	list, err := h.store.ListCalendarEvents(context.Background(), user, session.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func onlyReminder(t *testing.T, list []session.Reminder) session.Reminder {
	t.Helper()
	if len(list) != 1 {
		t.Fatalf("want one reminder, got %+v", list)
	}
	return list[0]
}

// 1-2. "tomorrow at 5pm" is 5pm where the user is: two different instants for New York and
// Tokyo, each stated back in local time with the zone.
func TestScenarioTomorrowAt5pmInNewYorkAndTokyo(t *testing.T) {
	h := startPA(t)
	r := h.say(t, "nina", "America/New_York", "Remind me to call mom at 5pm tomorrow",
		"I'll remind you to call mom tomorrow (Tuesday, March 4) at 5:00 PM EST")
	if r.Intent != pa.IntentReminder {
		t.Fatalf("intent %q", r.Intent)
	}
	ny := onlyReminder(t, h.reminders(t, "nina"))
	if want := time.Date(2025, 3, 4, 22, 0, 0, 0, time.UTC); !ny.DueAt.Equal(want) || ny.TimeZone != "America/New_York" || ny.Text != "call mom" || ny.Status != session.ReminderPending {
		t.Fatalf("New York reminder %+v, want due %v", ny, want)
	}
	h.say(t, "taro", "Asia/Tokyo", "remind me to call mom at 5pm tomorrow", "tomorrow (Tuesday, March 4) at 5:00 PM JST")
	tokyo := onlyReminder(t, h.reminders(t, "taro"))
	if want := time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC); !tokyo.DueAt.Equal(want) {
		t.Fatalf("Tokyo reminder due %v, want %v", tokyo.DueAt, want)
	}
	if gap := ny.DueAt.Sub(tokyo.DueAt); gap != 14*time.Hour {
		t.Fatalf("the same words in the two zones are %v apart, want 14h", gap)
	}
}

// 3. A relative time is exact.
func TestScenarioReminderInTenMinutes(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "Europe/Paris", "remind me in 10 minutes to take the pizza out", "take the pizza out today (Monday, March 3) at 3:10 PM CET")
	if r := onlyReminder(t, h.reminders(t, "nina")); !r.DueAt.Equal(scenarioNow.Add(10 * time.Minute)) {
		t.Fatalf("due %v", r.DueAt)
	}
}

// 4. Across the start of daylight saving time the clock time holds: 10 AM is EDT now, an hour
// less after midnight UTC than the day before.
func TestScenarioReminderAcrossDaylightSavingTime(t *testing.T) {
	h := startPA(t)
	h.clock.Set(time.Date(2025, 3, 8, 15, 0, 0, 0, time.UTC)) // Saturday 10:00 AM EST
	h.say(t, "nina", "America/New_York", "remind me tomorrow at 10am to change the smoke alarm batteries",
		"tomorrow (Sunday, March 9) at 10:00 AM EDT")
	if r := onlyReminder(t, h.reminders(t, "nina")); !r.DueAt.Equal(time.Date(2025, 3, 9, 14, 0, 0, 0, time.UTC)) {
		t.Fatalf("due %v, want 14:00 UTC (23 hours on)", r.DueAt)
	}
	// "in 24 hours" is exactly that, so the clock shows 11 AM.
	h.say(t, "omar", "America/New_York", "remind me in 24 hours to check the oven", "tomorrow (Sunday, March 9) at 11:00 AM EDT")
}

// 5. A reminder without a time is asked about, and the answer in the same conversation sets it.
func TestScenarioReminderAsksWhenThenSetsIt(t *testing.T) {
	h := startPA(t)
	first := h.say(t, "nina", "America/New_York", "remind me to water my plants", "When should I remind you to water your plants?")
	if n := len(h.reminders(t, "nina")); n != 0 {
		t.Fatalf("%d reminders set before a time was given", n)
	}
	second := h.chat(t, "nina", "America/New_York", first.SessionID, "at 6pm")
	if !strings.Contains(second.Content, "water your plants today (Monday, March 3) at 6:00 PM EST") {
		t.Fatalf("follow-up: %q", second.Content)
	}
	if r := onlyReminder(t, h.reminders(t, "nina")); r.Text != "water my plants" || !r.DueAt.Equal(time.Date(2025, 3, 3, 23, 0, 0, 0, time.UTC)) {
		t.Fatalf("reminder %+v", r)
	}
}

// 6. A time that has passed is not set.
func TestScenarioReminderInThePastIsRefused(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "UTC", "remind me yesterday at 9am to pay the bill", "has already passed", "When should I remind you to pay the bill?")
	if n := len(h.reminders(t, "nina")); n != 0 {
		t.Fatalf("%d reminders set in the past", n)
	}
}

// 7. Listing and cancelling reminders.
func TestScenarioListAndCancelReminders(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "UTC", "remind me to stretch in 2 hours")
	h.say(t, "nina", "UTC", "remind me on Friday to pay rent", "pay rent Friday, March 7 at 9:00 AM UTC")
	h.say(t, "nina", "UTC", "what are my reminders", "You have 2 upcoming reminders", "Today (Monday, March 3) at 4:00 PM UTC: stretch", "Friday, March 7 at 9:00 AM UTC: pay rent")
	h.say(t, "nina", "UTC", "cancel the reminder to pay rent", `Cancelled the reminder "pay rent"`)
	h.say(t, "nina", "UTC", "list my reminders", "You have 1 upcoming reminder", "stretch")
	if got := h.reminders(t, "nina"); len(got) != 2 || got[1].Status != session.ReminderCancelled {
		t.Fatalf("reminders %+v", got)
	}
}

// 8. A shopping list: several items at once, a duplicate, listing, completing.
func TestScenarioShoppingList(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "", "add milk to my shopping list", "Added milk to your shopping list.")
	h.say(t, "nina", "", "add eggs, bread and butter to the grocery list", "Added eggs, bread and butter to your shopping list.")
	h.say(t, "nina", "", "put milk on my shopping list", "Milk is already on your shopping list.")
	h.say(t, "nina", "", "what's on my shopping list?", "On your shopping list (4): milk, eggs, bread, butter.")
	h.say(t, "nina", "", "mark milk as done", "Marked milk as done.")
	h.say(t, "nina", "", "I bought eggs and bread", "Marked eggs and bread as done.")
	h.say(t, "nina", "", "what do I need to buy", "On your shopping list (1): butter.")
	done := h.tasks(t, "nina", session.TaskFilter{List: "shopping", Status: "done"})
	if len(done) != 3 || done[0].DoneAt.IsZero() {
		t.Fatalf("done items %+v", done)
	}
}

// 9. A to-do with a due day, listed with every open task.
func TestScenarioTodoWithDueDate(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "America/New_York", "add a task to pay rent by friday", "Added pay rent to your to-do list, due Friday, March 7.")
	h.say(t, "nina", "America/New_York", "add sun cream to my shopping list", "Added sun cream to your shopping list.")
	h.say(t, "nina", "America/New_York", "list my tasks", "You have 2 open tasks", "To-do list (1): pay rent (due Friday, March 7 at 12:00 AM EST)", "Shopping list (1): sun cream")
	task := h.tasks(t, "nina", session.TaskFilter{List: "todo"})
	if len(task) != 1 || !task[0].DueAt.Equal(time.Date(2025, 3, 7, 5, 0, 0, 0, time.UTC)) {
		t.Fatalf("to-do %+v", task)
	}
}

// 10. Removing an item deletes it.
func TestScenarioRemoveFromList(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "", "add tofu and rice to my shopping list")
	h.say(t, "nina", "", "remove tofu from my shopping list", "Removed tofu from your shopping list.")
	if got := h.tasks(t, "nina", session.TaskFilter{}); len(got) != 1 || got[0].Title != "rice" {
		t.Fatalf("tasks %+v", got)
	}
}

// 11. Completing what is not there, or is ambiguous, changes nothing and says why.
func TestScenarioCompletingUnknownOrAmbiguousTasks(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "", "add oat milk and almond milk to my shopping list")
	h.say(t, "nina", "", "mark milk as done", "Which one did you mean?", "oat milk and almond milk")
	h.say(t, "nina", "", "mark cheese as done", `I couldn't find "cheese" on your lists.`)
	h.say(t, "nina", "", "check off oat milk", "Marked oat milk as done.")
	if open := h.tasks(t, "nina", session.TaskFilter{Status: "open"}); len(open) != 1 || open[0].Title != "almond milk" {
		t.Fatalf("open %+v", open)
	}
}

// 12. Notes: taking, listing newest first, searching.
func TestScenarioNotes(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "", "note: the gate code is 4512", `Noted: "the gate code is 4512".`)
	h.clock.Set(scenarioNow.Add(time.Minute))
	h.say(t, "nina", "", "take a note that the wifi password is hunter2", `Noted: "the wifi password is hunter2".`)
	r := h.say(t, "nina", "", "show my notes", "1. the wifi password is hunter2", "2. the gate code is 4512")
	if r.Intent != pa.IntentNote {
		t.Fatalf("intent %q", r.Intent)
	}
	h.say(t, "nina", "", "find notes about gate", "the gate code is 4512")
	h.say(t, "nina", "", "find notes about parking", `You have no notes about "parking".`)
}

// 13. Scheduling a meeting, then asking for the day's agenda.
func TestScenarioScheduleMeetingAndAgenda(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "America/New_York", "schedule a meeting with Ann on Monday at 3pm for an hour",
		`Scheduled "Meeting with Ann" today (Monday, March 3) from 3:00 PM to 4:00 PM EST.`)
	e := h.events(t, "nina")
	if len(e) != 1 || !e[0].Start.Equal(time.Date(2025, 3, 3, 20, 0, 0, 0, time.UTC)) || !e[0].End.Equal(e[0].Start.Add(time.Hour)) {
		t.Fatalf("events %+v", e)
	}
	h.say(t, "nina", "America/New_York", "what's on my calendar today?", "You have 1 event for today (Monday, March 3)", "3:00 PM to 4:00 PM: Meeting with Ann")
	h.say(t, "nina", "America/New_York", "what's on my calendar on Friday", "Nothing on your calendar for Friday, March 7.")
}

// 14. A day without a time is an all-day event; a clash is pointed out.
func TestScenarioAllDayEventAndOverlap(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "UTC", "schedule team offsite on Friday", `Scheduled "Team offsite" Friday, March 7, all day.`)
	h.say(t, "nina", "UTC", "add lunch with Bob to my calendar on Friday at noon", `Scheduled "Lunch with Bob" Friday, March 7 from 12:00 PM to 1:00 PM UTC.`)
	h.say(t, "nina", "UTC", "book a call with the bank on Friday at 12:30pm", "It overlaps with \"Lunch with Bob\".")
	h.say(t, "nina", "UTC", "what do I have on Friday", "You have 3 events", "Friday, March 7: Team offsite (all day)", "12:00 PM to 1:00 PM: Lunch with Bob")
}

// 15. Events are stored as instants and shown in the zone of whoever asks.
func TestScenarioCalendarAcrossTimeZones(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "Asia/Tokyo", "schedule standup tomorrow at 9am", `Scheduled "Standup" tomorrow (Tuesday, March 4) from 9:00 AM to 10:00 AM JST.`)
	if e := h.events(t, "nina"); len(e) != 1 || !e[0].Start.Equal(time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)) || e[0].TimeZone != "Asia/Tokyo" {
		t.Fatalf("event %+v", e)
	}
	// The same user travelling in New York: 9 AM Tokyo is 7 PM the evening before.
	h.say(t, "nina", "America/New_York", "what's on my calendar today", "Today (Monday, March 3), 7:00 PM to 8:00 PM: Standup")
}

// 16. An event without a day or time is asked about.
func TestScenarioScheduleWithoutTimeAsks(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "", "schedule a haircut", `When is "Haircut"?`)
	if n := len(h.events(t, "nina")); n != 0 {
		t.Fatalf("%d events without a time", n)
	}
}

// 17. Contacts: saving one with email and phone, then asking for each.
func TestScenarioContacts(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "", "add contact John Smith john@example.com +1 555 0100", "Saved John Smith to your contacts (email john@example.com, phone +1 555 0100).")
	r := h.say(t, "nina", "", "what's John's number", "John Smith's phone number is +1 555 0100.")
	if r.Intent != pa.IntentContact {
		t.Fatalf("intent %q", r.Intent)
	}
	h.say(t, "nina", "", "what is the email of john smith?", "John Smith's email address is john@example.com.")
	h.say(t, "nina", "", "save Ann Lee to my contacts, email ann@example.org", "Saved Ann Lee to your contacts (email ann@example.org).")
	h.say(t, "nina", "", "what's Ann's phone number", "I don't have a phone number for Ann Lee (email ann@example.org).")
	h.say(t, "nina", "", "list my contacts", "You have 2 contacts: Ann Lee (email ann@example.org); John Smith")
	h.say(t, "nina", "", "what's Zoe's number", "I don't have a contact named Zoe.")
}

// 18. Tenant isolation through chat: nothing one user keeps is visible to, or changed by,
// another.
func TestScenarioUsersNeverSeeEachOthersRecords(t *testing.T) {
	h := startPA(t)
	h.say(t, "alice", "", "add milk to my shopping list")
	h.say(t, "alice", "", "note: alice's secret plan")
	h.say(t, "alice", "", "add contact John Smith +1 555 0100")
	h.say(t, "alice", "", "remind me to call mom in 1 hour")
	h.say(t, "alice", "", "schedule a meeting with Ann tomorrow at 3pm")

	h.say(t, "bob", "", "what's on my shopping list", "Your shopping list is empty.")
	h.say(t, "bob", "", "show my notes", "You have no notes yet.")
	h.say(t, "bob", "", "what's John's number", "I don't have a contact named John.")
	h.say(t, "bob", "", "list my reminders", "You have no upcoming reminders.")
	h.say(t, "bob", "", "what's on my calendar tomorrow", "Nothing on your calendar")
	h.say(t, "bob", "", "mark milk as done", `I couldn't find "milk" on your lists.`)
	h.say(t, "bob", "", "cancel the reminder to call mom", "I couldn't find an upcoming reminder")
	if open := h.tasks(t, "alice", session.TaskFilter{Status: "open"}); len(open) != 1 || open[0].Title != "milk" {
		t.Fatalf("alice's list after bob: %+v", open)
	}
	if r := onlyReminder(t, h.reminders(t, "alice")); r.Status != session.ReminderPending {
		t.Fatalf("alice's reminder after bob: %+v", r)
	}
}

// 19. Without a user the assistant keeps nothing: anonymous records would be shared.
func TestScenarioAnonymousCallerKeepsNothing(t *testing.T) {
	h := startPA(t)
	h.say(t, "", "", "add milk to my shopping list", "I need to know who you are first")
	if n := len(h.tasks(t, session.AnonymousUserID, session.TaskFilter{})); n != 0 {
		t.Fatalf("%d tasks stored for the anonymous user", n)
	}
}

// 20. An unknown zone falls back to UTC and says so in every time it states.
func TestScenarioUnknownTimeZoneIsUTC(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "Mars/Olympus_Mons", "remind me at noon on the 20th to renew the lease", "Thursday, March 20 at 12:00 PM UTC")
	if r := onlyReminder(t, h.reminders(t, "nina")); !r.DueAt.Equal(time.Date(2025, 3, 20, 12, 0, 0, 0, time.UTC)) || r.TimeZone != "UTC" {
		t.Fatalf("reminder %+v", r)
	}
}

// 21. Greetings, help and what the agent cannot do.
func TestScenarioGreetingAndHelp(t *testing.T) {
	h := startPA(t)
	h.say(t, "nina", "", "hello", "Hi! I'm your personal assistant", "remind me to call mom at 5pm tomorrow")
	h.say(t, "nina", "", "what can you do?", "add milk to my shopping list")
	r := h.say(t, "nina", "", "the weather is nice", "I'm not sure what you'd like me to do.")
	if r.Intent != pa.IntentHelp {
		t.Fatalf("intent %q", r.Intent)
	}
}

// 22. The local time in the reply and the stored instant agree, at the edge of a day: 11 PM
// Monday in Tokyo, "in 2 hours" is Tuesday.
func TestScenarioRelativeTimeCrossesMidnightLocally(t *testing.T) {
	h := startPA(t)
	h.say(t, "taro", "Asia/Tokyo", "remind me in 2 hours to sleep", "tomorrow (Tuesday, March 4) at 1:00 AM JST")
	if r := onlyReminder(t, h.reminders(t, "taro")); !r.DueAt.Equal(scenarioNow.Add(2 * time.Hour)) {
		t.Fatalf("due %v", r.DueAt)
	}
}
