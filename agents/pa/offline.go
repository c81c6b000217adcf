package pa

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/session"
)

// Replies the agent recognises in the history, to finish what it asked about.
var askedWhen = regexp.MustCompile(`When should I remind you (to|about|that) (.+?)\?`)

const helpText = "I'm your personal assistant. I can keep reminders (\"remind me to call mom at 5pm tomorrow\"), lists (\"add milk to my shopping list\", \"mark milk as done\", \"list my tasks\"), notes (\"note: the gate code is 4512\", \"show my notes\"), your calendar (\"schedule a meeting with Ann on Monday at 3pm for an hour\", \"what's on my calendar on Friday\") and contacts (\"add contact John Smith john@example.com +1 555 0100\", \"what's John's number\")."

// defaultReminderHour is when a reminder for a day without a time goes off.
const defaultReminderHour = 9

// offline answers a message with the command parser, acting on the store.
func (a *Agent) offline(ctx context.Context, t *turn) (text, intent string, err error) {
	c := ParseCommand(t.in.Message, t.now)
	if c.Kind == CmdUnknown || c.Kind == CmdRemind && !c.HasWhen {
		// "at 5pm" after "When should I remind you to call mom?" finishes that reminder.
		if m := askedWhen.FindStringSubmatch(lastAssistant(t.in)); m != nil {
			if w, _, ok := ParseWhen(t.in.Message, t.now); ok {
				c = Command{Kind: CmdRemind, Connector: m[1], Text: myWords(m[2]), When: w, HasWhen: true}
			}
		}
	}
	intent = intentOfMessage(c)
	switch c.Kind {
	case CmdRemind:
		text, err = a.remind(ctx, t, c)
	case CmdListReminders:
		text, err = a.listReminders(ctx, t)
	case CmdCancelReminder:
		text, err = a.cancelReminder(ctx, t, c)
	case CmdAddTask:
		text, err = a.addTasks(ctx, t, c)
	case CmdListTasks:
		text, err = a.listTasks(ctx, t, c)
	case CmdCompleteTask:
		text, err = a.finishTasks(ctx, t, c, false)
	case CmdRemoveTask:
		text, err = a.finishTasks(ctx, t, c, true)
	case CmdAddNote:
		text, err = a.addNote(ctx, t, c)
	case CmdListNotes:
		text, err = a.listNotes(ctx, t, c)
	case CmdSchedule:
		text, err = a.schedule(ctx, t, c)
	case CmdAgenda:
		text, err = a.agenda(ctx, t, c)
	case CmdAddContact:
		text, err = a.addContact(ctx, t, c)
	case CmdFindContact, CmdListContacts:
		text, err = a.findContact(ctx, t, c)
	case CmdGreeting:
		text, intent = "Hi! "+helpText, nlu.IntentGreeting
	default:
		text = "I'm not sure what you'd like me to do. " + helpText
	}
	if err != nil {
		return "", "", fmt.Errorf("pa: %s: %w", c.Kind, err)
	}
	return text, intent, nil
}

// lastAssistant is the agent's previous reply in the conversation, or "".
func lastAssistant(in agents.Input) string {
	for i := len(in.History) - 1; i >= 0; i-- {
		if in.History[i].Role == session.RoleAssistant {
			return in.History[i].Content
		}
	}
	return ""
}

func (a *Agent) remind(ctx context.Context, t *turn, c Command) (string, error) {
	what := yourWords(c.Text)
	if c.Text == "" {
		return "What should I remind you about, and when? For example: \"remind me to call mom at 5pm tomorrow\".", nil
	}
	if !c.HasWhen {
		return fmt.Sprintf("When should I remind you %s %s? For example \"at 5pm\" or \"tomorrow morning\".", c.Connector, what), nil
	}
	due := c.When.At
	if !c.When.HasTime {
		due = wallClock(due.Year(), due.Month(), due.Day(), defaultReminderHour, 0, t.loc)
	}
	if !due.After(t.now) {
		return fmt.Sprintf("%s has already passed. When should I remind you %s %s? ", capitalize(formatWhen(due, t.now)), c.Connector, what), nil
	}
	r, err := a.cfg.Store.CreateReminder(ctx, session.Reminder{UserID: t.user, Text: c.Text, DueAt: due, TimeZone: t.loc.String(), SessionID: t.in.SessionID})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Okay, I'll remind you %s %s %s.", c.Connector, what, formatWhen(r.DueAt.In(t.loc), t.now)), nil
}

func (a *Agent) listReminders(ctx context.Context, t *turn) (string, error) {
	list, err := a.cfg.Store.ListReminders(ctx, t.user, session.ReminderFilter{Status: session.ReminderPending, Limit: 20})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "You have no upcoming reminders.", nil
	}
	var lines []string
	for _, r := range list {
		lines = append(lines, fmt.Sprintf("%s: %s", capitalize(formatWhen(r.DueAt.In(t.loc), t.now)), yourWords(r.Text)))
	}
	return fmt.Sprintf("You have %s: %s.", plural(len(list), "upcoming reminder"), strings.Join(lines, "; ")), nil
}

func (a *Agent) cancelReminder(ctx context.Context, t *turn, c Command) (string, error) {
	list, err := a.cfg.Store.ListReminders(ctx, t.user, session.ReminderFilter{Status: session.ReminderPending, Search: c.Text, Limit: 10})
	if err != nil {
		return "", err
	}
	switch {
	case len(list) == 0 && c.Text == "":
		return "You have no upcoming reminders to cancel.", nil
	case len(list) == 0:
		return fmt.Sprintf("I couldn't find an upcoming reminder about %q.", c.Text), nil
	case len(list) > 1:
		var names []string
		for _, r := range list {
			names = append(names, fmt.Sprintf("%q (%s)", r.Text, formatWhen(r.DueAt.In(t.loc), t.now)))
		}
		return "Which reminder should I cancel: " + listWords(names) + "?", nil
	}
	r := list[0]
	r.Status = session.ReminderCancelled
	if _, err := a.cfg.Store.UpdateReminder(ctx, r); err != nil {
		return "", err
	}
	return fmt.Sprintf("Cancelled the reminder %q for %s.", r.Text, formatWhen(r.DueAt.In(t.loc), t.now)), nil
}

func (a *Agent) addTasks(ctx context.Context, t *turn, c Command) (string, error) {
	existing, err := a.cfg.Store.ListTasks(ctx, t.user, session.TaskFilter{List: c.List, Status: "open", Limit: 500})
	if err != nil {
		return "", err
	}
	var added, already []string
	for _, item := range c.Items {
		if i := indexTitle(existing, item); i >= 0 {
			already = append(already, existing[i].Title)
			continue
		}
		task := session.Task{UserID: t.user, List: c.List, Title: item}
		if c.HasWhen {
			task.DueAt = c.When.At
		}
		created, err := a.cfg.Store.CreateTask(ctx, task)
		if err != nil {
			return "", err
		}
		existing = append(existing, created)
		added = append(added, item)
	}
	var b strings.Builder
	if len(added) > 0 {
		fmt.Fprintf(&b, "Added %s to %s", listWords(added), listLabel(c.List))
		if c.HasWhen {
			if c.When.HasTime {
				b.WriteString(", due " + formatWhen(c.When.At, t.now))
			} else {
				b.WriteString(", due " + formatDay(c.When.At, t.now))
			}
		}
		b.WriteString(".")
	}
	if len(already) > 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		verb := "is"
		if len(already) > 1 {
			verb = "are"
		}
		fmt.Fprintf(&b, "%s %s already on %s.", capitalize(listWords(already)), verb, listLabel(c.List))
	}
	return b.String(), nil
}

// indexTitle finds a task by its title, ignoring case.
func indexTitle(tasks []session.Task, title string) int {
	for i, task := range tasks {
		if strings.EqualFold(task.Title, title) {
			return i
		}
	}
	return -1
}

func (a *Agent) listTasks(ctx context.Context, t *turn, c Command) (string, error) {
	tasks, err := a.cfg.Store.ListTasks(ctx, t.user, session.TaskFilter{List: c.List, Status: "open", Limit: 200})
	if err != nil {
		return "", err
	}
	if len(tasks) == 0 {
		if c.List == "" {
			return "You have no open tasks.", nil
		}
		return capitalize(listLabel(c.List)) + " is empty.", nil
	}
	byList := map[string][]string{}
	var order []string
	for _, task := range tasks {
		item := task.Title
		if !task.DueAt.IsZero() {
			item += " (due " + formatWhen(task.DueAt.In(t.loc), t.now) + ")"
		}
		if _, seen := byList[task.List]; !seen {
			order = append(order, task.List)
		}
		byList[task.List] = append(byList[task.List], item)
	}
	var parts []string
	for _, list := range order {
		parts = append(parts, fmt.Sprintf("%s (%d): %s", capitalize(strings.TrimPrefix(listLabel(list), "your ")), len(byList[list]), strings.Join(byList[list], ", ")))
	}
	if c.List != "" {
		return fmt.Sprintf("On %s (%d): %s.", listLabel(c.List), len(tasks), strings.Join(byList[c.List], ", ")), nil
	}
	return fmt.Sprintf("You have %s. %s.", plural(len(tasks), "open task"), strings.Join(parts, ". ")), nil
}

// finishTasks completes (or removes) the tasks named by the items.
func (a *Agent) finishTasks(ctx context.Context, t *turn, c Command, remove bool) (string, error) {
	var done, missing, ambiguous []string
	for _, item := range c.Items {
		task, others, err := a.findTask(ctx, t, c.List, item)
		if err != nil {
			return "", err
		}
		switch {
		case task == nil && len(others) > 1:
			ambiguous = append(ambiguous, fmt.Sprintf("%q matches %s", item, listWords(others)))
			continue
		case task == nil:
			missing = append(missing, item)
			continue
		}
		if remove {
			err = a.cfg.Store.DeleteTask(ctx, t.user, task.ID)
		} else {
			task.Done = true
			_, err = a.cfg.Store.UpdateTask(ctx, *task)
		}
		if err != nil {
			return "", err
		}
		done = append(done, task.Title)
	}
	var b strings.Builder
	if len(done) > 0 {
		if remove {
			fmt.Fprintf(&b, "Removed %s from %s.", listWords(done), listLabel(c.List))
		} else {
			fmt.Fprintf(&b, "Marked %s as done.", listWords(done))
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, " I couldn't find %s on your lists.", listWords(quoteAll(missing)))
	}
	if len(ambiguous) > 0 {
		fmt.Fprintf(&b, " Which one did you mean? %s.", strings.Join(ambiguous, "; "))
	}
	return strings.TrimSpace(b.String()), nil
}

// findTask finds the user's open task for an item: the one with that exact title, else the
// only one containing it. With several candidates it returns their titles instead.
func (a *Agent) findTask(ctx context.Context, t *turn, list, item string) (*session.Task, []string, error) {
	candidates, err := a.cfg.Store.ListTasks(ctx, t.user, session.TaskFilter{List: list, Status: "open", Search: item, Limit: 20})
	if err != nil {
		return nil, nil, err
	}
	if i := indexTitle(candidates, item); i >= 0 {
		return &candidates[i], nil, nil
	}
	if len(candidates) == 1 {
		return &candidates[0], nil, nil
	}
	var titles []string
	for _, c := range candidates {
		titles = append(titles, c.Title)
	}
	return nil, titles, nil
}

func quoteAll(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func (a *Agent) addNote(ctx context.Context, t *turn, c Command) (string, error) {
	if _, err := a.cfg.Store.CreateNote(ctx, session.Note{UserID: t.user, Body: c.Text}); err != nil {
		return "", err
	}
	return fmt.Sprintf("Noted: %q.", c.Text), nil
}

func (a *Agent) listNotes(ctx context.Context, t *turn, c Command) (string, error) {
	notes, err := a.cfg.Store.ListNotes(ctx, t.user, session.NoteFilter{Search: c.Text, Limit: 10})
	if err != nil {
		return "", err
	}
	if len(notes) == 0 {
		if c.Text != "" {
			return fmt.Sprintf("You have no notes about %q.", c.Text), nil
		}
		return "You have no notes yet. Say \"note: ...\" to take one.", nil
	}
	var lines []string
	for i, n := range notes {
		body := n.Body
		if n.Title != "" {
			body = n.Title + ": " + body
		}
		lines = append(lines, fmt.Sprintf("%d. %s (%s)", i+1, body, formatDay(n.CreatedAt.In(t.loc), t.now)))
	}
	what := "Your notes"
	if c.Text != "" {
		what = fmt.Sprintf("Your notes about %q", c.Text)
	}
	return fmt.Sprintf("%s, newest first: %s", what, strings.Join(lines, " ")), nil
}

func (a *Agent) schedule(ctx context.Context, t *turn, c Command) (string, error) {
	title := c.Text
	if title == "" {
		title = "Event"
	}
	if !c.HasWhen {
		return fmt.Sprintf("When is %q? Tell me the day and time, like \"schedule a meeting with Ann on Monday at 3pm\".", title), nil
	}
	e := session.CalendarEvent{UserID: t.user, Title: title, TimeZone: t.loc.String()}
	if c.When.HasTime {
		e.Start = c.When.At
		switch {
		case !c.When.End.IsZero():
			e.End = c.When.End
		case c.When.Duration > 0:
			e.End = e.Start.Add(c.When.Duration)
		default:
			e.End = e.Start.Add(time.Hour)
		}
	} else {
		e.AllDay = true
		e.Start = c.When.At
		d := e.Start
		e.End = wallClock(d.Year(), d.Month(), d.Day()+max(c.When.Days, 1), 0, 0, t.loc)
	}
	overlapping, err := a.cfg.Store.ListCalendarEvents(ctx, t.user, session.EventFilter{From: e.Start, To: e.End, Limit: 5})
	if err != nil {
		return "", err
	}
	created, err := a.cfg.Store.CreateCalendarEvent(ctx, e)
	if err != nil {
		return "", err
	}
	reply := fmt.Sprintf("Scheduled %q %s.", created.Title, formatSpan(created.Start.In(t.loc), created.End.In(t.loc), created.AllDay, t.now))
	if !created.AllDay && created.Start.Before(t.now) {
		reply += " Note that this is in the past."
	}
	var clashes []string
	for _, o := range overlapping {
		if !o.AllDay && !e.AllDay {
			clashes = append(clashes, fmt.Sprintf("%q", o.Title))
		}
	}
	if len(clashes) > 0 {
		reply += " It overlaps with " + listWords(clashes) + "."
	}
	return reply, nil
}

func (a *Agent) agenda(ctx context.Context, t *turn, c Command) (string, error) {
	from := wallClock(t.now.Year(), t.now.Month(), t.now.Day(), 0, 0, t.loc)
	days := 7
	label := "in the next 7 days"
	if c.HasWhen {
		d := c.When.At
		from = wallClock(d.Year(), d.Month(), d.Day(), 0, 0, t.loc)
		days = max(c.When.Days, 1)
		label = "for " + formatDay(from, t.now)
		if days > 1 {
			last := from.AddDate(0, 0, days-1)
			label = "from " + formatDay(from, t.now) + " to " + formatDay(last, t.now)
		}
	}
	to := wallClock(from.Year(), from.Month(), from.Day()+days, 0, 0, t.loc)
	events, err := a.cfg.Store.ListCalendarEvents(ctx, t.user, session.EventFilter{From: from, To: to, Limit: 50})
	if err != nil {
		return "", err
	}
	if len(events) == 0 {
		return "Nothing on your calendar " + label + ".", nil
	}
	var items []string
	for _, e := range events {
		start, end := e.Start.In(t.loc), e.End.In(t.loc)
		switch {
		case e.AllDay:
			items = append(items, fmt.Sprintf("%s: %s (all day)", capitalize(formatDay(start, t.now)), e.Title))
		case end.Equal(start):
			items = append(items, fmt.Sprintf("%s at %s: %s", capitalize(formatDay(start, t.now)), formatClock(start), e.Title))
		default:
			items = append(items, fmt.Sprintf("%s, %s to %s: %s", capitalize(formatDay(start, t.now)), formatClock(start), formatClock(end), e.Title))
		}
	}
	return fmt.Sprintf("You have %s %s (%s): %s.", plural(len(events), "event"), label, zoneName(from), strings.Join(items, "; ")), nil
}

func (a *Agent) addContact(ctx context.Context, t *turn, c Command) (string, error) {
	if c.Text == "" {
		return "What's the contact's name? For example: \"add contact John Smith john@example.com +1 555 0100\".", nil
	}
	created, err := a.cfg.Store.CreateContact(ctx, session.Contact{UserID: t.user, Name: c.Text, Email: c.Email, Phone: c.Phone})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Saved %s to your contacts%s.", created.Name, contactDetails(created)), nil
}

func contactDetails(c session.Contact) string {
	var parts []string
	if c.Email != "" {
		parts = append(parts, "email "+c.Email)
	}
	if c.Phone != "" {
		parts = append(parts, "phone "+c.Phone)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (a *Agent) findContact(ctx context.Context, t *turn, c Command) (string, error) {
	contacts, err := a.cfg.Store.ListContacts(ctx, t.user, session.ContactFilter{Search: c.Text, Limit: 10})
	if err != nil {
		return "", err
	}
	if len(contacts) == 0 {
		if c.Text == "" {
			return "You have no contacts yet.", nil
		}
		return fmt.Sprintf("I don't have a contact named %s.", c.Text), nil
	}
	if c.Kind == CmdListContacts || len(contacts) > 1 {
		var names []string
		for _, ct := range contacts {
			names = append(names, ct.Name+contactDetails(ct))
		}
		if c.Kind == CmdListContacts {
			return fmt.Sprintf("You have %s: %s.", plural(len(contacts), "contact"), strings.Join(names, "; ")), nil
		}
		return fmt.Sprintf("I found %s matching %s: %s.", plural(len(contacts), "contact"), c.Text, strings.Join(names, "; ")), nil
	}
	ct := contacts[0]
	switch c.Field {
	case "phone":
		if ct.Phone == "" {
			return fmt.Sprintf("I don't have a phone number for %s%s.", ct.Name, contactDetails(ct)), nil
		}
		return fmt.Sprintf("%s's phone number is %s.", ct.Name, ct.Phone), nil
	case "email":
		if ct.Email == "" {
			return fmt.Sprintf("I don't have an email address for %s%s.", ct.Name, contactDetails(ct)), nil
		}
		return fmt.Sprintf("%s's email address is %s.", ct.Name, ct.Email), nil
	}
	return fmt.Sprintf("%s%s.", ct.Name, contactDetails(ct)), nil
}
