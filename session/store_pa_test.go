package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPATasksLifecycle(t *testing.T) {
	forEachBackend(t, testPATasksLifecycle)
}

func testPATasksLifecycle(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "ann", "")
	milk, err := s.CreateTask(ctx, Task{UserID: "ann", List: " Shopping ", Title: "  milk "})
	if err != nil {
		t.Fatal(err)
	}
	if milk.ID == "" || milk.List != "shopping" || milk.Title != "milk" || milk.Done || !milk.CreatedAt.Equal(testEpoch) {
		t.Fatalf("created %+v", milk)
	}
	clock.Advance(time.Second)
	call, err := s.CreateTask(ctx, Task{UserID: "ann", Title: "call the 100% bank_office", DueAt: testEpoch.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if call.List != DefaultTaskList {
		t.Fatalf("a task with no list goes to %q, got %q", DefaultTaskList, call.List)
	}
	if got, err := s.GetTask(ctx, "ann", call.ID); err != nil || !got.DueAt.Equal(testEpoch.Add(time.Hour)) || got.Title != call.Title {
		t.Fatalf("GetTask = %+v, %v", got, err)
	}

	// LIKE's wildcards in a search are literal characters.
	for search, want := range map[string]int{"100%": 1, "bank_": 1, "%": 1, "_": 1, "MILK": 1, "k": 2, "x": 0} {
		got, err := s.ListTasks(ctx, "ann", TaskFilter{Search: search})
		if err != nil || len(got) != want {
			t.Errorf("search %q: %d tasks, want %d (%v)", search, len(got), want, err)
		}
	}
	if got, _ := s.ListTasks(ctx, "ann", TaskFilter{List: "SHOPPING"}); len(got) != 1 || got[0].ID != milk.ID {
		t.Fatalf("shopping list = %+v", got)
	}

	clock.Advance(time.Minute)
	milk.Done = true
	done, err := s.UpdateTask(ctx, milk)
	if err != nil {
		t.Fatal(err)
	}
	completedAt := testEpoch.Add(time.Second + time.Minute)
	if !done.Done || !done.DoneAt.Equal(completedAt) || !done.UpdatedAt.Equal(completedAt) {
		t.Fatalf("completed task %+v", done)
	}
	clock.Advance(time.Minute)
	done.Title = "oat milk"
	if again, err := s.UpdateTask(ctx, done); err != nil || !again.DoneAt.Equal(completedAt) || again.Title != "oat milk" {
		t.Fatalf("editing a done task must keep when it was done: %+v %v", again, err)
	}
	if open, _ := s.ListTasks(ctx, "ann", TaskFilter{Status: "open"}); len(open) != 1 || open[0].ID != call.ID {
		t.Fatalf("open tasks %+v", open)
	}
	if all, _ := s.ListTasks(ctx, "ann", TaskFilter{}); len(all) != 2 || all[0].ID != call.ID {
		t.Fatalf("open tasks come first: %+v", all)
	}
	done.Done = false
	if reopened, err := s.UpdateTask(ctx, done); err != nil || reopened.Done || !reopened.DoneAt.IsZero() {
		t.Fatalf("reopened %+v %v", reopened, err)
	}
	if err := s.DeleteTask(ctx, "ann", milk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTask(ctx, "ann", milk.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted task: %v", err)
	}
	if err := s.DeleteTask(ctx, "ann", milk.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

// Every record type: another user's id reads, changes and deletes like an id that does not
// exist, lists never show it, and the owner's record is untouched afterwards.
func TestPARecordsBelongToTheirUser(t *testing.T) {
	forEachBackend(t, testPARecordsBelongToTheirUser)
}

func testPARecordsBelongToTheirUser(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "alice", "")
	mustEnsureUser(t, s, "bob", "")
	due := testEpoch.Add(time.Hour)
	tests := []struct {
		name   string
		create func(user string) (string, error)
		get    func(user, id string) (string, error) // returns the title-ish field
		update func(user, id string) error
		delete func(user, id string) error
		count  func(user string) (int, error)
	}{
		{
			name: "task",
			create: func(u string) (string, error) {
				r, err := s.CreateTask(ctx, Task{UserID: u, Title: u + "'s task"})
				return r.ID, err
			},
			get: func(u, id string) (string, error) { r, err := s.GetTask(ctx, u, id); return r.Title, err },
			update: func(u, id string) error {
				_, err := s.UpdateTask(ctx, Task{ID: id, UserID: u, Title: "hijacked", Done: true})
				return err
			},
			delete: func(u, id string) error { return s.DeleteTask(ctx, u, id) },
			count:  func(u string) (int, error) { l, err := s.ListTasks(ctx, u, TaskFilter{}); return len(l), err },
		},
		{
			name: "reminder",
			create: func(u string) (string, error) {
				r, err := s.CreateReminder(ctx, Reminder{UserID: u, Text: u + "'s reminder", DueAt: due})
				return r.ID, err
			},
			get: func(u, id string) (string, error) { r, err := s.GetReminder(ctx, u, id); return r.Text, err },
			update: func(u, id string) error {
				_, err := s.UpdateReminder(ctx, Reminder{ID: id, UserID: u, Text: "hijacked", DueAt: due, Status: ReminderCancelled})
				return err
			},
			delete: func(u, id string) error { return s.DeleteReminder(ctx, u, id) },
			count:  func(u string) (int, error) { l, err := s.ListReminders(ctx, u, ReminderFilter{}); return len(l), err },
		},
		{
			name: "note",
			create: func(u string) (string, error) {
				r, err := s.CreateNote(ctx, Note{UserID: u, Body: u + "'s note"})
				return r.ID, err
			},
			get: func(u, id string) (string, error) { r, err := s.GetNote(ctx, u, id); return r.Body, err },
			update: func(u, id string) error {
				_, err := s.UpdateNote(ctx, Note{ID: id, UserID: u, Body: "hijacked"})
				return err
			},
			delete: func(u, id string) error { return s.DeleteNote(ctx, u, id) },
			count:  func(u string) (int, error) { l, err := s.ListNotes(ctx, u, NoteFilter{}); return len(l), err },
		},
		{
			name: "calendar event",
			create: func(u string) (string, error) {
				r, err := s.CreateCalendarEvent(ctx, CalendarEvent{UserID: u, Title: u + "'s calendar event", Start: due, End: due.Add(time.Hour), ExternalID: "g-1"})
				return r.ID, err
			},
			get: func(u, id string) (string, error) { r, err := s.GetCalendarEvent(ctx, u, id); return r.Title, err },
			update: func(u, id string) error {
				_, err := s.UpdateCalendarEvent(ctx, CalendarEvent{ID: id, UserID: u, Title: "hijacked", Start: due})
				return err
			},
			delete: func(u, id string) error { return s.DeleteCalendarEvent(ctx, u, id) },
			count: func(u string) (int, error) {
				l, err := s.ListCalendarEvents(ctx, u, EventFilter{})
				return len(l), err
			},
		},
		{
			name: "contact",
			create: func(u string) (string, error) {
				r, err := s.CreateContact(ctx, Contact{UserID: u, Name: u + "'s contact", Phone: "+1 555 0100"})
				return r.ID, err
			},
			get: func(u, id string) (string, error) { r, err := s.GetContact(ctx, u, id); return r.Name, err },
			update: func(u, id string) error {
				_, err := s.UpdateContact(ctx, Contact{ID: id, UserID: u, Name: "hijacked"})
				return err
			},
			delete: func(u, id string) error { return s.DeleteContact(ctx, u, id) },
			count:  func(u string) (int, error) { l, err := s.ListContacts(ctx, u, ContactFilter{}); return len(l), err },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bobs, err := tt.create("bob")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tt.get("alice", bobs); !errors.Is(err, ErrNotFound) {
				t.Errorf("alice read bob's %s: %v", tt.name, err)
			}
			if err := tt.update("alice", bobs); !errors.Is(err, ErrNotFound) {
				t.Errorf("alice changed bob's %s: %v", tt.name, err)
			}
			if err := tt.delete("alice", bobs); !errors.Is(err, ErrNotFound) {
				t.Errorf("alice deleted bob's %s: %v", tt.name, err)
			}
			if n, err := tt.count("alice"); err != nil || n != 0 {
				t.Errorf("alice lists %d %ss, want none (%v)", n, tt.name, err)
			}
			if title, err := tt.get("bob", bobs); err != nil || title != "bob's "+tt.name {
				t.Errorf("bob's %s after alice's attempts: %q, %v", tt.name, title, err)
			}
			if _, err := tt.get("bob", "missing-id"); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing id: %v", err)
			}
		})
	}
	// The external id is unique per user, not across users.
	if _, err := s.CreateCalendarEvent(ctx, CalendarEvent{UserID: "alice", Title: "same google id", Start: due, ExternalID: "g-1"}); err != nil {
		t.Fatalf("another user's external id: %v", err)
	}
	if _, err := s.CreateCalendarEvent(ctx, CalendarEvent{UserID: "alice", Title: "dup", Start: due, ExternalID: "g-1"}); err == nil {
		t.Fatal("the same external id twice for one user was accepted")
	}
	if e, err := s.GetCalendarEventByExternalID(ctx, "alice", "g-1"); err != nil || e.Title != "same google id" {
		t.Fatalf("by external id: %+v %v", e, err)
	}
}

func TestPAValidation(t *testing.T) {
	forEachBackend(t, testPAValidation)
}

func testPAValidation(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "ann", "")
	at := testEpoch
	long := string(make([]byte, MaxPATitle+1))
	tests := []struct {
		name  string
		do    func() error
		field string
	}{
		{"task without user", func() error { _, err := s.CreateTask(ctx, Task{Title: "x"}); return err }, "userId"},
		{"task without title", func() error { _, err := s.CreateTask(ctx, Task{UserID: "ann", Title: "  "}); return err }, "title"},
		{"task title too long", func() error { _, err := s.CreateTask(ctx, Task{UserID: "ann", Title: "a" + long}); return err }, "title"},
		{"bad task status filter", func() error { _, err := s.ListTasks(ctx, "ann", TaskFilter{Status: "later"}); return err }, "status"},
		{"reminder without time", func() error { _, err := s.CreateReminder(ctx, Reminder{UserID: "ann", Text: "x"}); return err }, "dueAt"},
		{"reminder without text", func() error { _, err := s.CreateReminder(ctx, Reminder{UserID: "ann", DueAt: at}); return err }, "text"},
		{"reminder bad status", func() error {
			_, err := s.CreateReminder(ctx, Reminder{UserID: "ann", Text: "x", DueAt: at, Status: "snoozed"})
			return err
		}, "status"},
		{"reminder bad zone", func() error {
			_, err := s.CreateReminder(ctx, Reminder{UserID: "ann", Text: "x", DueAt: at, TimeZone: "Mars/Olympus"})
			return err
		}, "timeZone"},
		{"note without body", func() error { _, err := s.CreateNote(ctx, Note{UserID: "ann", Title: "t"}); return err }, "body"},
		{"event without start", func() error {
			_, err := s.CreateCalendarEvent(ctx, CalendarEvent{UserID: "ann", Title: "x"})
			return err
		}, "start"},
		{"event ending first", func() error {
			_, err := s.CreateCalendarEvent(ctx, CalendarEvent{UserID: "ann", Title: "x", Start: at, End: at.Add(-time.Minute)})
			return err
		}, "end"},
		{"contact without name", func() error { _, err := s.CreateContact(ctx, Contact{UserID: "ann", Email: "a@b.c"}); return err }, "name"},
		{"contact bad email", func() error {
			_, err := s.CreateContact(ctx, Contact{UserID: "ann", Name: "A", Email: "nope"})
			return err
		}, "email"},
		{"contact bad phone", func() error {
			_, err := s.CreateContact(ctx, Contact{UserID: "ann", Name: "A", Phone: "call me"})
			return err
		}, "phone"},
		{"invalid UTF-8", func() error { _, err := s.CreateNote(ctx, Note{UserID: "ann", Body: "\xff"}); return err }, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			var ve *PAValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want a validation error on %q", err, tt.field)
			}
		})
	}
}

func TestDueRemindersAcrossUsersAndClaimOnce(t *testing.T) {
	forEachBackend(t, testDueRemindersAcrossUsersAndClaimOnce)
}

func testDueRemindersAcrossUsersAndClaimOnce(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "ann", "")
	mustEnsureUser(t, s, "bob", "")
	mk := func(user, text string, due time.Duration, status string) Reminder {
		t.Helper()
		r, err := s.CreateReminder(ctx, Reminder{UserID: user, Text: text, DueAt: testEpoch.Add(due), Status: status, TimeZone: "Asia/Tokyo"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	late := mk("bob", "late", -time.Hour, "")
	now := mk("ann", "now", 0, "")
	mk("ann", "later", time.Minute, "")
	mk("bob", "cancelled", -time.Hour, ReminderCancelled)

	due, err := s.DueReminders(ctx, testEpoch, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 || due[0].ID != late.ID || due[1].ID != now.ID || due[1].TimeZone != "Asia/Tokyo" {
		t.Fatalf("due = %+v, want late then now", due)
	}
	if one, _ := s.DueReminders(ctx, testEpoch, 1); len(one) != 1 || one[0].ID != late.ID {
		t.Fatalf("limit 1: %+v", one)
	}

	clock.Advance(5 * time.Second)
	claimed, err := s.MarkReminderFired(ctx, late.ID)
	if err != nil || !claimed {
		t.Fatalf("first claim = %v, %v", claimed, err)
	}
	if claimed, err := s.MarkReminderFired(ctx, late.ID); err != nil || claimed {
		t.Fatalf("second claim = %v, %v; want false, nil", claimed, err)
	}
	if got, _ := s.GetReminder(ctx, "bob", late.ID); got.Status != ReminderFired || !got.FiredAt.Equal(testEpoch.Add(5*time.Second)) {
		t.Fatalf("fired reminder %+v", got)
	}
	if _, err := s.MarkReminderFired(ctx, "rem_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if due, _ := s.DueReminders(ctx, testEpoch, 10); len(due) != 1 || due[0].ID != now.ID {
		t.Fatalf("after firing, due = %+v", due)
	}

	// Rescheduling a fired reminder makes it pending again, with no fired time.
	late.Status, late.DueAt = ReminderPending, testEpoch.Add(2*time.Minute)
	if again, err := s.UpdateReminder(ctx, late); err != nil || again.Status != ReminderPending || !again.FiredAt.IsZero() {
		t.Fatalf("rescheduled %+v %v", again, err)
	}
	if due, _ := s.DueReminders(ctx, testEpoch.Add(2*time.Minute), 10); len(due) != 3 {
		t.Fatalf("rescheduled reminder not due again: %+v", due)
	}
}

// Two processes on one database race for the same reminders: each is claimed exactly once.
func TestMarkReminderFiredRacesAcrossStores(t *testing.T) {
	forEachBackend(t, testMarkReminderFiredRacesAcrossStores)
}

func testMarkReminderFiredRacesAcrossStores(t *testing.T) {
	clock := newTestClock()
	path := newTestLocation(t)
	a := openStoreAt(t, path, clock)
	b := openStoreAt(t, path, clock)
	ctx := t.Context()
	mustEnsureUser(t, a, "ann", "")
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		r, err := a.CreateReminder(ctx, Reminder{UserID: "ann", Text: fmt.Sprint("r", i), DueAt: testEpoch})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = r.ID
	}
	claims := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	for _, s := range []*SQLStore{a, b, a, b} {
		wg.Go(func() {
			for i, id := range ids {
				ok, err := s.MarkReminderFired(context.Background(), id)
				if err != nil {
					t.Errorf("claim %s: %v", id, err)
					return
				}
				if ok {
					claims[i].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for i := range claims {
		if c := claims[i].Load(); c != 1 {
			t.Errorf("reminder %d claimed %d times", i, c)
		}
	}
}

func TestCalendarEventsOverlapTheWindow(t *testing.T) {
	forEachBackend(t, testCalendarEventsOverlapTheWindow)
}

func testCalendarEventsOverlapTheWindow(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "ann", "")
	day := time.Date(2025, 3, 7, 0, 0, 0, 0, time.UTC)
	mk := func(title string, start, end time.Time, allDay bool) {
		t.Helper()
		if _, err := s.CreateCalendarEvent(ctx, CalendarEvent{UserID: "ann", Title: title, Start: start, End: end, AllDay: allDay}); err != nil {
			t.Fatal(err)
		}
	}
	mk("overnight", day.Add(-2*time.Hour), day.Add(time.Hour), false)
	mk("standup", day.Add(9*time.Hour), day.Add(9*time.Hour+15*time.Minute), false)
	mk("holiday", day, day.Add(24*time.Hour), true)
	mk("deadline", day.Add(17*time.Hour), time.Time{}, false) // an instant
	mk("tomorrow", day.Add(24*time.Hour), day.Add(25*time.Hour), false)

	titles := func(f EventFilter) []string {
		list, err := s.ListCalendarEvents(ctx, "ann", f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			out = append(out, e.Title)
		}
		return out
	}
	if got := fmt.Sprint(titles(EventFilter{From: day, To: day.Add(24 * time.Hour)})); got != "[overnight holiday standup deadline]" {
		t.Fatalf("events of the day: %s", got)
	}
	if got := fmt.Sprint(titles(EventFilter{From: day.Add(17 * time.Hour), To: day.Add(18 * time.Hour)})); got != "[holiday deadline]" {
		t.Fatalf("an instant at the window's start counts: %s", got)
	}
	if got := fmt.Sprint(titles(EventFilter{Search: "STAND"})); got != "[standup]" {
		t.Fatalf("search: %s", got)
	}
	list, _ := s.ListCalendarEvents(ctx, "ann", EventFilter{Search: "holiday"})
	if len(list) != 1 || !list[0].AllDay || !list[0].End.Equal(day.Add(24*time.Hour)) {
		t.Fatalf("all-day event %+v", list)
	}
}

func TestContactsAndNotesSearch(t *testing.T) {
	forEachBackend(t, testContactsAndNotesSearch)
}

func testContactsAndNotesSearch(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()
	mustEnsureUser(t, s, "ann", "")
	for _, c := range []Contact{
		{Name: "john Smith", Email: "john@example.com", Phone: "+1 555 0100"},
		{Name: "Ann Lee", Email: "ann@example.org"},
		{Name: "Bob", Phone: "(020) 7946 0018"},
	} {
		c.UserID = "ann"
		if _, err := s.CreateContact(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	names := func(search string) string {
		list, err := s.ListContacts(ctx, "ann", ContactFilter{Search: search})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list {
			out = append(out, c.Name)
		}
		return fmt.Sprint(out)
	}
	for search, want := range map[string]string{"": "[Ann Lee Bob john Smith]", "JOHN": "[john Smith]", "example.org": "[Ann Lee]", "7946": "[Bob]"} {
		if got := names(search); got != want {
			t.Errorf("contacts %q = %s, want %s", search, got, want)
		}
	}

	for _, body := range []string{"Gate code 4512", "Wifi password is hunter2"} {
		if _, err := s.CreateNote(ctx, Note{UserID: "ann", Body: body}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	notes, _ := s.ListNotes(ctx, "ann", NoteFilter{})
	if len(notes) != 2 || notes[0].Body != "Wifi password is hunter2" {
		t.Fatalf("notes newest first: %+v", notes)
	}
	if found, _ := s.ListNotes(ctx, "ann", NoteFilter{Search: "gate"}); len(found) != 1 || found[0].Body != "Gate code 4512" {
		t.Fatalf("note search %+v", found)
	}
}
