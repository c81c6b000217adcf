package pa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/session"
)

// systemPrompt is the stable head of the tool-calling prompt; the user's local time follows.
const systemPrompt = `You are a personal assistant speaking through Dartmouth, a voice and text gateway. You keep the user's tasks and lists, reminders, notes, calendar events and contacts with the tools provided: always use a tool to create, change or look up a record, never pretend you did. Times you pass to tools are the user's local wall-clock time in ISO 8601 without an offset ("2025-03-04T17:00"); dates are "2025-03-04". After acting, confirm in one or two plain sentences (your reply may be read aloud), stating the day, date and local time you used. If something needed is missing (such as when a reminder should go off), ask for it instead of guessing.`

// timeParam describes the time arguments to the model.
const timeParam = "Local date-time in ISO 8601 without offset, e.g. 2025-03-04T17:00, or a date 2025-03-04."

func obj(required []string, props map[string]any) map[string]any {
	schema := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		schema["required"] = required
	}
	return schema
}

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }

// Tools are the functions the model may call; each runs against the PA store for the turn's
// user only.
var Tools = []llm.Tool{
	{Name: "create_task", Description: "Add an item to one of the user's lists (the to-do list by default, or a named list such as shopping).",
		Parameters: obj([]string{"title"}, map[string]any{"title": str("What to do or buy."), "list": str("List name, lower case: todo (default), shopping, or another."), "due": str("When it is due. " + timeParam)})},
	{Name: "list_tasks", Description: "List the user's tasks.",
		Parameters: obj(nil, map[string]any{"list": str("Only this list; omit for every list."), "status": map[string]any{"type": "string", "enum": []any{"open", "done", "all"}, "description": "Default open."}})},
	{Name: "complete_task", Description: "Mark one of the user's open tasks as done, found by id or title.",
		Parameters: obj(nil, map[string]any{"id": str("The task's id."), "title": str("The task's title, or part of it.")})},
	{Name: "delete_task", Description: "Remove one of the user's tasks, found by id or title.",
		Parameters: obj(nil, map[string]any{"id": str("The task's id."), "title": str("The task's title, or part of it.")})},
	{Name: "create_reminder", Description: "Remind the user of something at a time: they get a notification then.",
		Parameters: obj([]string{"text", "when"}, map[string]any{"text": str("What to remind them of, e.g. call mom."), "when": str("When to remind them. " + timeParam)})},
	{Name: "list_reminders", Description: "List the user's upcoming reminders.", Parameters: obj(nil, map[string]any{})},
	{Name: "cancel_reminder", Description: "Cancel one of the user's upcoming reminders, found by id or text.",
		Parameters: obj(nil, map[string]any{"id": str("The reminder's id."), "text": str("The reminder's text, or part of it.")})},
	{Name: "create_note", Description: "Save a note for the user.",
		Parameters: obj([]string{"body"}, map[string]any{"body": str("The note."), "title": str("A short title, optional.")})},
	{Name: "list_notes", Description: "List or search the user's notes, newest first.",
		Parameters: obj(nil, map[string]any{"query": str("Only notes containing this, optional.")})},
	{Name: "create_event", Description: "Put an event on the user's calendar.",
		Parameters: obj([]string{"title", "start"}, map[string]any{"title": str("The event's title."), "start": str("When it starts. " + timeParam + " A date alone makes an all-day event."),
			"end": str("When it ends. " + timeParam), "duration_minutes": map[string]any{"type": "integer", "description": "Length when no end is given; default 60."}, "location": str("Where, optional.")})},
	{Name: "list_events", Description: "List the user's calendar events between two dates (local), inclusive.",
		Parameters: obj([]string{"from"}, map[string]any{"from": str("First day, 2025-03-04."), "to": str("Last day, 2025-03-04; default the same as from.")})},
	{Name: "create_contact", Description: "Save a contact in the user's address book.",
		Parameters: obj([]string{"name"}, map[string]any{"name": str("Full name."), "email": str("Email address, optional."), "phone": str("Phone number, optional.")})},
	{Name: "find_contacts", Description: "Look up the user's contacts by name, email or phone.",
		Parameters: obj(nil, map[string]any{"query": str("Name, email or phone, or part of it; omit for all.")})},
}

// toolArgs holds every argument any tool takes.
type toolArgs struct {
	ID, Title, List, Due, Status, Text, When, Body, Query, Start, End, Location, Name, Email, Phone, From, To string
	DurationMinutes                                                                                           int `json:"duration_minutes"`
}

// toolLoop asks the model with the tools, runs the calls it makes for this user, sends the
// results back, and streams the final answer; at most MaxToolRounds model calls. A model that
// cannot be reached before it said anything, or that turns out to be the offline engine, hands
// the message to the offline parser.
func (a *Agent) toolLoop(ctx context.Context, t *turn) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		msgs := append(slices.Clone(t.in.History), llm.Message{Role: "user", Content: t.in.Message})
		system := systemPrompt + "\n\nThe user's time zone is " + t.loc.String() + "; it is now " + t.now.Format("Monday, January 2, 2006 15:04 MST") + "."
		temperature := a.cfg.Temperature
		var usage llm.Usage
		var provider, model string
		var summaries []string
		wrote := false
		for round := 0; round < a.cfg.MaxToolRounds; round++ {
			req := llm.Request{Model: a.cfg.Model, System: system, CachePrefix: len(systemPrompt), Messages: msgs, Tools: Tools, Temperature: &temperature, MaxTokens: a.cfg.MaxTokens}
			var calls []llm.ToolCall
			var text strings.Builder
			started := false
			for c, err := range t.in.LLM.Stream(ctx, req) {
				if err != nil {
					if round == 0 && !started && ctx.Err() == nil {
						a.cfg.Logger.WarnContext(ctx, "pa: no model answered; the offline parser takes the message", "err", err)
						a.offlineStream(ctx, t, yield)
						return
					}
					yield(llm.Chunk{}, err)
					return
				}
				if round == 0 && !started && (c.Model == offline.ModelName || c.Provider == "offline") {
					// The chain fell back to the offline engine, which knows nothing of tools.
					a.offlineStream(ctx, t, yield)
					return
				}
				started = true
				if c.Provider != "" {
					provider = c.Provider
				}
				if c.Model != "" {
					model = c.Model
				}
				if c.Usage != nil {
					usage.InputTokens += c.Usage.InputTokens
					usage.CachedInputTokens += c.Usage.CachedInputTokens
					usage.CacheWriteTokens += c.Usage.CacheWriteTokens
					usage.OutputTokens += c.Usage.OutputTokens
				}
				calls = append(calls, c.ToolCalls...)
				if c.Text != "" {
					text.WriteString(c.Text)
					wrote = true
					if !yield(llm.Chunk{Text: c.Text, Provider: c.Provider, Model: c.Model}, nil) {
						return
					}
				}
			}
			if len(calls) == 0 {
				break
			}
			msgs = append(msgs, llm.Message{Role: "assistant", Content: text.String(), ToolCalls: calls})
			for _, call := range calls {
				result, summary := a.runTool(ctx, t, call)
				if summary != "" {
					summaries = append(summaries, summary)
				}
				msgs = append(msgs, llm.Message{Role: "tool", ToolCallID: call.ID, Content: result})
			}
			if err := ctx.Err(); err != nil {
				yield(llm.Chunk{}, err)
				return
			}
		}
		if !wrote {
			// The model acted but said nothing (or ran out of rounds): say what was done.
			text := "Done. " + strings.Join(summaries, " ")
			if len(summaries) == 0 {
				text = "Sorry, I couldn't finish that. Could you say it another way?"
			}
			if !yield(llm.Chunk{Text: strings.TrimSpace(text), Provider: provider, Model: model}, nil) {
				return
			}
		}
		yield(llm.Chunk{Usage: &usage, Provider: provider, Model: model}, nil)
	}
}

// offlineStream answers with the offline parser inside a stream that already began.
func (a *Agent) offlineStream(ctx context.Context, t *turn, yield func(llm.Chunk, error) bool) {
	text, _, err := a.offline(ctx, t)
	if err != nil {
		yield(llm.Chunk{}, err)
		return
	}
	for c, err := range say(text) {
		if !yield(c, err) {
			return
		}
	}
}

// runTool executes one call for the turn's user and returns its JSON result for the model and
// a sentence saying what it did (empty for lookups and failures). Failures are results too:
// the model reads them and can correct itself.
func (a *Agent) runTool(ctx context.Context, t *turn, call llm.ToolCall) (result, summary string) {
	var args toolArgs
	if strings.TrimSpace(call.Arguments) != "" {
		if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil {
			return toolError(fmt.Errorf("the arguments are not a valid JSON object: %w", err)), ""
		}
	}
	out, summary, err := a.execTool(ctx, t, call.Name, args)
	if err != nil {
		var ve *session.PAValidationError
		if !errors.As(err, &ve) && !errors.Is(err, errToolInput) && !errors.Is(err, session.ErrNotFound) {
			a.cfg.Logger.ErrorContext(ctx, "pa: tool failed", "tool", call.Name, "err", err)
		}
		return toolError(err), ""
	}
	b, err := json.Marshal(out)
	if err != nil {
		return toolError(err), ""
	}
	return string(b), summary
}

var errToolInput = errors.New("bad tool input")

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errToolInput, fmt.Sprintf(format, args...))
}

func toolError(err error) string {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	return string(b)
}

// parseToolTime reads a time argument in the user's zone: ISO 8601 local ("2025-03-04T17:00"),
// with an offset (converted), a date alone, or, from a model that ignored the format, words
// ParseWhen understands ("tomorrow at 5pm"). hasTime is false for a date alone.
func parseToolTime(s string, t *turn) (at time.Time, hasTime bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false, badInput("a time is required")
	}
	if v, err := time.Parse(time.RFC3339, s); err == nil {
		return v.In(t.loc), true, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if v, err := time.ParseInLocation(layout, s, t.loc); err == nil {
			return wallClock(v.Year(), v.Month(), v.Day(), v.Hour(), v.Minute(), t.loc), true, nil
		}
	}
	if v, err := time.ParseInLocation("2006-01-02", s, t.loc); err == nil {
		return v, false, nil
	}
	if w, _, ok := ParseWhen(s, t.now); ok {
		return w.At, w.HasTime, nil
	}
	return time.Time{}, false, badInput("%q is not a time; use 2025-03-04T17:00", s)
}

// Views of records for the model: ids to refer back to them, local times to speak.
type (
	taskView struct {
		ID    string `json:"id"`
		List  string `json:"list"`
		Title string `json:"title"`
		Done  bool   `json:"done"`
		Due   string `json:"due,omitempty"`
	}
	reminderView struct {
		ID     string `json:"id"`
		Text   string `json:"text"`
		When   string `json:"when"`
		Status string `json:"status"`
	}
	noteView struct {
		ID      string `json:"id"`
		Title   string `json:"title,omitempty"`
		Body    string `json:"body"`
		Created string `json:"created"`
	}
	eventView struct {
		ID       string `json:"id"`
		Title    string `json:"title"`
		Start    string `json:"start"`
		End      string `json:"end"`
		AllDay   bool   `json:"allDay,omitempty"`
		Location string `json:"location,omitempty"`
	}
	contactView struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email,omitempty"`
		Phone string `json:"phone,omitempty"`
	}
)

// localISO is how times go to the model: local wall clock with its offset and the day named.
func (t *turn) localISO(v time.Time) string {
	if v.IsZero() {
		return ""
	}
	v = v.In(t.loc)
	return v.Format("2006-01-02T15:04:05-07:00") + " (" + v.Format("Monday") + ")"
}

func (t *turn) taskView(task session.Task) taskView {
	return taskView{ID: task.ID, List: task.List, Title: task.Title, Done: task.Done, Due: t.localISO(task.DueAt)}
}

func (t *turn) reminderView(r session.Reminder) reminderView {
	return reminderView{ID: r.ID, Text: r.Text, When: t.localISO(r.DueAt), Status: r.Status}
}

func (t *turn) eventView(e session.CalendarEvent) eventView {
	return eventView{ID: e.ID, Title: e.Title, Start: t.localISO(e.Start), End: t.localISO(e.End), AllDay: e.AllDay, Location: e.Location}
}

func contactViewOf(c session.Contact) contactView {
	return contactView{ID: c.ID, Name: c.Name, Email: c.Email, Phone: c.Phone}
}

func (a *Agent) execTool(ctx context.Context, t *turn, name string, args toolArgs) (any, string, error) {
	store := a.cfg.Store
	switch name {
	case "create_task":
		task := session.Task{UserID: t.user, Title: args.Title, List: listName(args.List)}
		if args.Due != "" {
			due, _, err := parseToolTime(args.Due, t)
			if err != nil {
				return nil, "", err
			}
			task.DueAt = due
		}
		created, err := store.CreateTask(ctx, task)
		if err != nil {
			return nil, "", err
		}
		return t.taskView(created), fmt.Sprintf("Added %s to %s.", created.Title, listLabel(created.List)), nil
	case "list_tasks":
		f := session.TaskFilter{Status: "open", Limit: 100}
		if args.List != "" {
			f.List = listName(args.List)
		}
		switch args.Status {
		case "done":
			f.Status = "done"
		case "all":
			f.Status = ""
		}
		tasks, err := store.ListTasks(ctx, t.user, f)
		if err != nil {
			return nil, "", err
		}
		views := []taskView{}
		for _, task := range tasks {
			views = append(views, t.taskView(task))
		}
		return map[string]any{"tasks": views}, "", nil
	case "complete_task", "delete_task":
		task, err := a.toolTask(ctx, t, args)
		if err != nil {
			return nil, "", err
		}
		if name == "delete_task" {
			if err := store.DeleteTask(ctx, t.user, task.ID); err != nil {
				return nil, "", err
			}
			return map[string]any{"deleted": t.taskView(task)}, fmt.Sprintf("Removed %s from %s.", task.Title, listLabel(task.List)), nil
		}
		task.Done = true
		done, err := store.UpdateTask(ctx, task)
		if err != nil {
			return nil, "", err
		}
		return t.taskView(done), fmt.Sprintf("Marked %s as done.", done.Title), nil
	case "create_reminder":
		at, hasTime, err := parseToolTime(args.When, t)
		if err != nil {
			return nil, "", err
		}
		if !hasTime {
			at = wallClock(at.Year(), at.Month(), at.Day(), defaultReminderHour, 0, t.loc)
		}
		if !at.After(t.now) {
			return nil, "", badInput("%s is in the past; it is now %s", t.localISO(at), t.localISO(t.now))
		}
		r, err := store.CreateReminder(ctx, session.Reminder{UserID: t.user, Text: args.Text, DueAt: at, TimeZone: t.loc.String(), SessionID: t.in.SessionID})
		if err != nil {
			return nil, "", err
		}
		return t.reminderView(r), fmt.Sprintf("I'll remind you: %s, %s.", r.Text, formatWhen(r.DueAt.In(t.loc), t.now)), nil
	case "list_reminders":
		list, err := store.ListReminders(ctx, t.user, session.ReminderFilter{Status: session.ReminderPending, Limit: 50})
		if err != nil {
			return nil, "", err
		}
		views := []reminderView{}
		for _, r := range list {
			views = append(views, t.reminderView(r))
		}
		return map[string]any{"reminders": views}, "", nil
	case "cancel_reminder":
		var r session.Reminder
		if args.ID != "" {
			var err error
			if r, err = store.GetReminder(ctx, t.user, args.ID); err != nil {
				return nil, "", err
			}
		} else {
			list, err := store.ListReminders(ctx, t.user, session.ReminderFilter{Status: session.ReminderPending, Search: args.Text, Limit: 50})
			if err != nil {
				return nil, "", err
			}
			if len(list) != 1 {
				return nil, "", badInput("%d upcoming reminders match; give the id of one (list_reminders)", len(list))
			}
			r = list[0]
		}
		r.Status = session.ReminderCancelled
		r, err := store.UpdateReminder(ctx, r)
		if err != nil {
			return nil, "", err
		}
		return t.reminderView(r), fmt.Sprintf("Cancelled the reminder %q.", r.Text), nil
	case "create_note":
		n, err := store.CreateNote(ctx, session.Note{UserID: t.user, Title: args.Title, Body: args.Body})
		if err != nil {
			return nil, "", err
		}
		return noteView{ID: n.ID, Title: n.Title, Body: n.Body, Created: t.localISO(n.CreatedAt)}, "Noted.", nil
	case "list_notes":
		notes, err := store.ListNotes(ctx, t.user, session.NoteFilter{Search: args.Query, Limit: 20})
		if err != nil {
			return nil, "", err
		}
		views := []noteView{}
		for _, n := range notes {
			views = append(views, noteView{ID: n.ID, Title: n.Title, Body: n.Body, Created: t.localISO(n.CreatedAt)})
		}
		return map[string]any{"notes": views}, "", nil
	case "create_event":
		start, hasTime, err := parseToolTime(args.Start, t)
		if err != nil {
			return nil, "", err
		}
		e := session.CalendarEvent{UserID: t.user, Title: args.Title, Location: args.Location, Start: start, TimeZone: t.loc.String(), AllDay: !hasTime}
		switch {
		case args.End != "":
			if e.End, _, err = parseToolTime(args.End, t); err != nil {
				return nil, "", err
			}
			if e.AllDay {
				e.End = e.End.AddDate(0, 0, 1) // the last day is included
			}
		case e.AllDay:
			e.End = wallClock(start.Year(), start.Month(), start.Day()+1, 0, 0, t.loc)
		case args.DurationMinutes > 0 && args.DurationMinutes <= 60*24*31:
			e.End = start.Add(time.Duration(args.DurationMinutes) * time.Minute)
		default:
			e.End = start.Add(time.Hour)
		}
		created, err := store.CreateCalendarEvent(ctx, e)
		if err != nil {
			return nil, "", err
		}
		return t.eventView(created), fmt.Sprintf("Scheduled %s %s.", created.Title, formatSpan(created.Start.In(t.loc), created.End.In(t.loc), created.AllDay, t.now)), nil
	case "list_events":
		from, _, err := parseToolTime(args.From, t)
		if err != nil {
			return nil, "", err
		}
		to := from
		if args.To != "" {
			if to, _, err = parseToolTime(args.To, t); err != nil {
				return nil, "", err
			}
		}
		start := wallClock(from.Year(), from.Month(), from.Day(), 0, 0, t.loc)
		end := wallClock(to.Year(), to.Month(), to.Day()+1, 0, 0, t.loc)
		events, err := store.ListCalendarEvents(ctx, t.user, session.EventFilter{From: start, To: end, Limit: 100})
		if err != nil {
			return nil, "", err
		}
		views := []eventView{}
		for _, e := range events {
			views = append(views, t.eventView(e))
		}
		return map[string]any{"events": views}, "", nil
	case "create_contact":
		c, err := store.CreateContact(ctx, session.Contact{UserID: t.user, Name: args.Name, Email: args.Email, Phone: args.Phone})
		if err != nil {
			return nil, "", err
		}
		return contactViewOf(c), fmt.Sprintf("Saved %s to your contacts.", c.Name), nil
	case "find_contacts":
		list, err := store.ListContacts(ctx, t.user, session.ContactFilter{Search: args.Query, Limit: 20})
		if err != nil {
			return nil, "", err
		}
		views := []contactView{}
		for _, c := range list {
			views = append(views, contactViewOf(c))
		}
		return map[string]any{"contacts": views}, "", nil
	}
	return nil, "", badInput("there is no tool named %q", name)
}

// toolTask finds the open task a call means, by id or by title.
func (a *Agent) toolTask(ctx context.Context, t *turn, args toolArgs) (session.Task, error) {
	if args.ID != "" {
		return a.cfg.Store.GetTask(ctx, t.user, args.ID)
	}
	if strings.TrimSpace(args.Title) == "" {
		return session.Task{}, badInput("give the task's id or title")
	}
	tasks, err := a.cfg.Store.ListTasks(ctx, t.user, session.TaskFilter{Search: args.Title, Status: "open", Limit: 100})
	if err != nil {
		return session.Task{}, err
	}
	if i := indexTitle(tasks, args.Title); i >= 0 {
		return tasks[i], nil
	}
	if len(tasks) == 1 {
		return tasks[0], nil
	}
	return session.Task{}, badInput("%d open tasks match %q; give the id of one (list_tasks)", len(tasks), args.Title)
}
