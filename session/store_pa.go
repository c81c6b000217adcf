package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The personal assistant's records: tasks, reminders, notes, calendar events and contacts.
// Each belongs to one user, and every method that reads or changes one is scoped by the user
// id: another user's record is ErrNotFound, exactly like a missing one. The one exception is
// the scheduler's view (DueReminders, MarkReminderFired), which works across users by design.

// PAValidationError is a record the store refuses: a required field is missing or a value is
// out of range. Field names the record field ("title", "dueAt", ...).
type PAValidationError struct {
	Field   string
	Message string
}

func (e *PAValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &PAValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Size limits of PA fields, in characters.
const (
	MaxPATitle = 500
	MaxPAText  = 20000
)

// DefaultTaskList is the list a task goes to when none is named: the to-do list.
const DefaultTaskList = "todo"

// Reminder statuses.
const (
	ReminderPending   = "pending"
	ReminderFired     = "fired"
	ReminderCancelled = "cancelled"
)

// ValidReminderStatus reports whether s is a reminder status.
func ValidReminderStatus(s string) bool {
	return s == ReminderPending || s == ReminderFired || s == ReminderCancelled
}

// Task is an item of one of the user's lists ("todo", "shopping", ...).
type Task struct {
	ID     string
	UserID string
	// List names the list, lower case; DefaultTaskList when empty on create.
	List  string
	Title string
	Notes string
	Done  bool
	// DueAt is when the task is due; zero means no due date.
	DueAt time.Time
	// DoneAt is when the task was completed; zero while it is open.
	DoneAt    time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TaskFilter narrows ListTasks.
type TaskFilter struct {
	// List keeps the tasks of one list. Default: every list.
	List string
	// Status is "open" or "done". Default: both.
	Status string
	// Search keeps tasks whose title contains it, ignoring case. Default: all.
	Search string
	// Limit bounds the list. Default 100, at most 500.
	Limit int
}

// Reminder is a message to the user at a time. The scheduler fires it once.
type Reminder struct {
	ID     string
	UserID string
	Text   string
	// DueAt is when it fires (UTC in the database).
	DueAt time.Time
	// Status is pending, fired or cancelled.
	Status string
	// FiredAt is when it fired; zero unless fired.
	FiredAt time.Time
	// TimeZone is the IANA zone the user set it in, to word it in their local time.
	TimeZone string
	// SessionID is the conversation it was set in, if any.
	SessionID string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ReminderFilter narrows ListReminders.
type ReminderFilter struct {
	// Status keeps reminders in this status. Default: any.
	Status string
	// From and To keep reminders due in [From, To). Zero: unbounded.
	From, To time.Time
	// Search keeps reminders whose text contains it, ignoring case. Default: all.
	Search string
	// Limit bounds the list. Default 100, at most 500.
	Limit int
}

// Note is a free-form note.
type Note struct {
	ID        string
	UserID    string
	Title     string
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NoteFilter narrows ListNotes.
type NoteFilter struct {
	// Search keeps notes whose title or body contains it, ignoring case. Default: all.
	Search string
	// Limit bounds the list. Default 100, at most 500.
	Limit int
}

// CalendarEvent is an entry of the user's calendar.
type CalendarEvent struct {
	ID          string
	UserID      string
	Title       string
	Description string
	Location    string
	// Start and End bound the event; End == Start for an instant. An all-day event runs from
	// the first day's midnight to the midnight after the last, in TimeZone.
	Start  time.Time
	End    time.Time
	AllDay bool
	// TimeZone is the IANA zone the event was set in. Default "".
	TimeZone string
	// ExternalID is the event's id in a synced calendar (Google Calendar); unique per user.
	ExternalID string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// EventFilter narrows ListCalendarEvents.
type EventFilter struct {
	// From and To keep the events that overlap [From, To). Zero: unbounded.
	From, To time.Time
	// Search keeps events whose title contains it, ignoring case. Default: all.
	Search string
	// Limit bounds the list. Default 100, at most 500.
	Limit int
}

// Contact is someone in the user's address book.
type Contact struct {
	ID        string
	UserID    string
	Name      string
	Email     string
	Phone     string
	Notes     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ContactFilter narrows ListContacts.
type ContactFilter struct {
	// Search keeps contacts whose name, email or phone contains it, ignoring case. Default: all.
	Search string
	// Limit bounds the list. Default 100, at most 500.
	Limit int
}

func paLimit(n int) int {
	if n <= 0 {
		return 100
	}
	return min(n, 500)
}

// likePattern turns a search string into a LIKE pattern matching it anywhere, with LIKE's own
// wildcards escaped (the queries say ESCAPE '\').
func likePattern(search string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(search)) + "%"
}

func checkText(field, value string, required bool, max int) error {
	switch {
	case required && strings.TrimSpace(value) == "":
		return invalid(field, "is required")
	case !utf8.ValidString(value):
		return invalid(field, "is not valid UTF-8")
	case utf8.RuneCountInString(value) > max:
		return invalid(field, "is longer than %d characters", max)
	}
	return nil
}

func checkUser(userID string) error {
	if userID == "" {
		return invalid("userId", "is required")
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scanAll runs a query and scans every row with scan.
func scanAll[T any](ctx context.Context, s *SQLStore, what, query string, args []any, scan func(func(...any) error) (T, error)) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// scanOne reads the single row of a query scoped to a user; no row is ErrNotFound.
func scanOne[T any](ctx context.Context, s *SQLStore, what, query string, args []any, scan func(func(...any) error) (T, error)) (T, error) {
	v, err := scan(s.db.QueryRowContext(ctx, s.dialect.rebind(query), args...).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// execScoped runs an UPDATE or DELETE of one user's row; no row changed is ErrNotFound.
func (s *SQLStore) execScoped(ctx context.Context, what, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// paTables are the tables deletePA may name; nothing else reaches the query text.
var paTables = map[string]bool{"pa_tasks": true, "pa_reminders": true, "pa_notes": true, "pa_events": true, "pa_contacts": true}

func (s *SQLStore) deletePA(ctx context.Context, table, what, userID, id string) error {
	if !paTables[table] {
		return fmt.Errorf("%s: unknown table %q", what, table)
	}
	return s.execScoped(ctx, what, `DELETE FROM `+table+` WHERE id = ? AND user_id = ?`, id, userID)
}

// --- Tasks ---

const taskColumns = `id, user_id, list, title, notes, done, due_at, done_at, created_at, updated_at`

func scanTask(scan func(...any) error) (Task, error) {
	var t Task
	var done int
	var due, doneAt, created, updated int64
	if err := scan(&t.ID, &t.UserID, &t.List, &t.Title, &t.Notes, &done, &due, &doneAt, &created, &updated); err != nil {
		return Task{}, err
	}
	t.Done = done != 0
	t.DueAt, t.DoneAt = timeOrZero(due), timeOrZero(doneAt)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return t, nil
}

// normalizeTask trims and checks a task before it is written.
func normalizeTask(t *Task) error {
	t.Title = strings.TrimSpace(t.Title)
	t.List = strings.ToLower(strings.TrimSpace(t.List))
	if t.List == "" {
		t.List = DefaultTaskList
	}
	if err := checkUser(t.UserID); err != nil {
		return err
	}
	if err := checkText("title", t.Title, true, MaxPATitle); err != nil {
		return err
	}
	if err := checkText("list", t.List, true, 100); err != nil {
		return err
	}
	return checkText("notes", t.Notes, false, MaxPAText)
}

// CreateTask stores a new task for t.UserID (who must exist) and returns it with its id and
// times.
func (s *SQLStore) CreateTask(ctx context.Context, t Task) (Task, error) {
	if err := normalizeTask(&t); err != nil {
		return Task{}, fmt.Errorf("create task: %w", err)
	}
	if t.ID == "" {
		t.ID = NewID("tsk")
	}
	now := s.now()
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(now), time.UnixMilli(now)
	t.DoneAt = time.Time{}
	if t.Done {
		t.DoneAt = t.CreatedAt
	}
	// seq is taken inside the insert: the user's next number, so a list keeps the order items
	// were added in even when they share a millisecond.
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO pa_tasks (seq, `+taskColumns+`)
		SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM pa_tasks WHERE user_id = ?`),
		t.ID, t.UserID, t.List, t.Title, t.Notes, boolInt(t.Done), msOrZero(t.DueAt), msOrZero(t.DoneAt), now, now, t.UserID); err != nil {
		return Task{}, fmt.Errorf("create task: %w", err)
	}
	return t, nil
}

// GetTask returns the user's task, else ErrNotFound (also for another user's).
func (s *SQLStore) GetTask(ctx context.Context, userID, id string) (Task, error) {
	return scanOne(ctx, s, "get task", `SELECT `+taskColumns+` FROM pa_tasks WHERE id = ? AND user_id = ?`, []any{id, userID}, scanTask)
}

// ListTasks returns the user's tasks, open ones first, in the order they were added.
func (s *SQLStore) ListTasks(ctx context.Context, userID string, f TaskFilter) ([]Task, error) {
	query := `SELECT ` + taskColumns + ` FROM pa_tasks WHERE user_id = ?`
	args := []any{userID}
	if l := strings.ToLower(strings.TrimSpace(f.List)); l != "" {
		query += ` AND list = ?`
		args = append(args, l)
	}
	switch f.Status {
	case "":
	case "open":
		query += ` AND done = 0`
	case "done":
		query += ` AND done = 1`
	default:
		return nil, fmt.Errorf("list tasks: %w", invalid("status", "must be open or done, not %q", f.Status))
	}
	if f.Search != "" {
		query += ` AND LOWER(title) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(f.Search))
	}
	query += ` ORDER BY done, seq, id LIMIT ?`
	args = append(args, paLimit(f.Limit))
	return scanAll(ctx, s, "list tasks", query, args, scanTask)
}

// UpdateTask replaces the editable fields (list, title, notes, done, due date) of the user's
// task t.ID and returns it; ErrNotFound when it is not theirs. Completing stamps DoneAt;
// reopening clears it.
func (s *SQLStore) UpdateTask(ctx context.Context, t Task) (Task, error) {
	if err := normalizeTask(&t); err != nil {
		return Task{}, fmt.Errorf("update task: %w", err)
	}
	now := s.now()
	if err := s.execScoped(ctx, "update task", `UPDATE pa_tasks SET list = ?, title = ?, notes = ?, due_at = ?, updated_at = ?,
		done_at = CASE WHEN ? = 0 THEN 0 WHEN done = 1 THEN done_at ELSE ? END, done = ?
		WHERE id = ? AND user_id = ?`,
		t.List, t.Title, t.Notes, msOrZero(t.DueAt), now, boolInt(t.Done), now, boolInt(t.Done), t.ID, t.UserID); err != nil {
		return Task{}, err
	}
	return s.GetTask(ctx, t.UserID, t.ID)
}

// DeleteTask removes the user's task; ErrNotFound when it is not theirs.
func (s *SQLStore) DeleteTask(ctx context.Context, userID, id string) error {
	return s.deletePA(ctx, "pa_tasks", "delete task", userID, id)
}

// --- Reminders ---

const reminderColumns = `id, user_id, text, due_at, status, fired_at, time_zone, session_id, created_at, updated_at`

func scanReminder(scan func(...any) error) (Reminder, error) {
	var r Reminder
	var due, fired, created, updated int64
	if err := scan(&r.ID, &r.UserID, &r.Text, &due, &r.Status, &fired, &r.TimeZone, &r.SessionID, &created, &updated); err != nil {
		return Reminder{}, err
	}
	r.DueAt, r.FiredAt = time.UnixMilli(due), timeOrZero(fired)
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return r, nil
}

func normalizeReminder(r *Reminder) error {
	r.Text = strings.TrimSpace(r.Text)
	if r.Status == "" {
		r.Status = ReminderPending
	}
	if err := checkUser(r.UserID); err != nil {
		return err
	}
	if err := checkText("text", r.Text, true, MaxPATitle); err != nil {
		return err
	}
	if r.DueAt.IsZero() {
		return invalid("dueAt", "is required")
	}
	if !ValidReminderStatus(r.Status) {
		return invalid("status", "must be pending, fired or cancelled, not %q", r.Status)
	}
	if r.TimeZone != "" {
		if _, err := time.LoadLocation(r.TimeZone); err != nil {
			return invalid("timeZone", "%q is not an IANA time zone", r.TimeZone)
		}
	}
	return nil
}

// CreateReminder stores a new reminder, pending unless a status is given, and returns it.
func (s *SQLStore) CreateReminder(ctx context.Context, r Reminder) (Reminder, error) {
	if err := normalizeReminder(&r); err != nil {
		return Reminder{}, fmt.Errorf("create reminder: %w", err)
	}
	if r.ID == "" {
		r.ID = NewID("rem")
	}
	now := s.now()
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(now), time.UnixMilli(now)
	r.FiredAt = time.Time{}
	if r.Status == ReminderFired {
		r.FiredAt = r.CreatedAt
	}
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO pa_reminders (`+reminderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.UserID, r.Text, r.DueAt.UnixMilli(), r.Status, msOrZero(r.FiredAt), r.TimeZone, r.SessionID, now, now); err != nil {
		return Reminder{}, fmt.Errorf("create reminder: %w", err)
	}
	r.DueAt = time.UnixMilli(r.DueAt.UnixMilli())
	return r, nil
}

// GetReminder returns the user's reminder, else ErrNotFound (also for another user's).
func (s *SQLStore) GetReminder(ctx context.Context, userID, id string) (Reminder, error) {
	return scanOne(ctx, s, "get reminder", `SELECT `+reminderColumns+` FROM pa_reminders WHERE id = ? AND user_id = ?`, []any{id, userID}, scanReminder)
}

// ListReminders returns the user's reminders, soonest due first.
func (s *SQLStore) ListReminders(ctx context.Context, userID string, f ReminderFilter) ([]Reminder, error) {
	query := `SELECT ` + reminderColumns + ` FROM pa_reminders WHERE user_id = ?`
	args := []any{userID}
	if f.Status != "" {
		if !ValidReminderStatus(f.Status) {
			return nil, fmt.Errorf("list reminders: %w", invalid("status", "must be pending, fired or cancelled, not %q", f.Status))
		}
		query += ` AND status = ?`
		args = append(args, f.Status)
	}
	if !f.From.IsZero() {
		query += ` AND due_at >= ?`
		args = append(args, f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		query += ` AND due_at < ?`
		args = append(args, f.To.UnixMilli())
	}
	if f.Search != "" {
		query += ` AND LOWER(text) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(f.Search))
	}
	query += ` ORDER BY due_at, id LIMIT ?`
	args = append(args, paLimit(f.Limit))
	return scanAll(ctx, s, "list reminders", query, args, scanReminder)
}

// UpdateReminder replaces the text, due time, status and time zone of the user's reminder
// r.ID and returns it; ErrNotFound when it is not theirs. Setting it back to pending clears
// FiredAt, so a rescheduled reminder fires again.
func (s *SQLStore) UpdateReminder(ctx context.Context, r Reminder) (Reminder, error) {
	if err := normalizeReminder(&r); err != nil {
		return Reminder{}, fmt.Errorf("update reminder: %w", err)
	}
	now := s.now()
	if err := s.execScoped(ctx, "update reminder", `UPDATE pa_reminders SET text = ?, due_at = ?, time_zone = ?, updated_at = ?,
		fired_at = CASE WHEN ? <> 'fired' THEN 0 WHEN status = 'fired' THEN fired_at ELSE ? END, status = ?
		WHERE id = ? AND user_id = ?`,
		r.Text, r.DueAt.UnixMilli(), r.TimeZone, now, r.Status, now, r.Status, r.ID, r.UserID); err != nil {
		return Reminder{}, err
	}
	return s.GetReminder(ctx, r.UserID, r.ID)
}

// DeleteReminder removes the user's reminder; ErrNotFound when it is not theirs.
func (s *SQLStore) DeleteReminder(ctx context.Context, userID, id string) error {
	return s.deletePA(ctx, "pa_reminders", "delete reminder", userID, id)
}

// DueReminders returns pending reminders due at or before now, across every user, oldest due
// first: the scheduler's work list. Listing does not claim them; see MarkReminderFired.
func (s *SQLStore) DueReminders(ctx context.Context, now time.Time, limit int) ([]Reminder, error) {
	return scanAll(ctx, s, "due reminders", `SELECT `+reminderColumns+` FROM pa_reminders
		WHERE status = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?`,
		[]any{ReminderPending, now.UnixMilli(), paLimit(limit)}, scanReminder)
}

// MarkReminderFired claims a pending reminder for delivery: it moves it to fired in one
// conditional UPDATE and reports whether this call did so. Of any number of schedulers racing
// for one reminder exactly one gets true; a reminder already fired or cancelled gives false
// (the call is idempotent). An unknown id is ErrNotFound.
func (s *SQLStore) MarkReminderFired(ctx context.Context, id string) (bool, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE pa_reminders SET status = ?, fired_at = ?, updated_at = ? WHERE id = ? AND status = ?`),
		ReminderFired, now, now, id, ReminderPending)
	if err != nil {
		return false, fmt.Errorf("mark reminder fired: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark reminder fired: %w", err)
	}
	if n > 0 {
		return true, nil
	}
	var exists int
	if err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT COUNT(*) FROM pa_reminders WHERE id = ?`), id).Scan(&exists); err != nil {
		return false, fmt.Errorf("mark reminder fired: %w", err)
	}
	if exists == 0 {
		return false, fmt.Errorf("mark reminder fired: %w", ErrNotFound)
	}
	return false, nil
}

// --- Notes ---

const noteColumns = `id, user_id, title, body, created_at, updated_at`

func scanNote(scan func(...any) error) (Note, error) {
	var n Note
	var created, updated int64
	if err := scan(&n.ID, &n.UserID, &n.Title, &n.Body, &created, &updated); err != nil {
		return Note{}, err
	}
	n.CreatedAt, n.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return n, nil
}

func normalizeNote(n *Note) error {
	n.Title, n.Body = strings.TrimSpace(n.Title), strings.TrimSpace(n.Body)
	if err := checkUser(n.UserID); err != nil {
		return err
	}
	if err := checkText("title", n.Title, false, MaxPATitle); err != nil {
		return err
	}
	return checkText("body", n.Body, true, MaxPAText)
}

// CreateNote stores a new note and returns it.
func (s *SQLStore) CreateNote(ctx context.Context, n Note) (Note, error) {
	if err := normalizeNote(&n); err != nil {
		return Note{}, fmt.Errorf("create note: %w", err)
	}
	if n.ID == "" {
		n.ID = NewID("note")
	}
	now := s.now()
	n.CreatedAt, n.UpdatedAt = time.UnixMilli(now), time.UnixMilli(now)
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO pa_notes (seq, `+noteColumns+`)
		SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM pa_notes WHERE user_id = ?`),
		n.ID, n.UserID, n.Title, n.Body, now, now, n.UserID); err != nil {
		return Note{}, fmt.Errorf("create note: %w", err)
	}
	return n, nil
}

// GetNote returns the user's note, else ErrNotFound (also for another user's).
func (s *SQLStore) GetNote(ctx context.Context, userID, id string) (Note, error) {
	return scanOne(ctx, s, "get note", `SELECT `+noteColumns+` FROM pa_notes WHERE id = ? AND user_id = ?`, []any{id, userID}, scanNote)
}

// ListNotes returns the user's notes, newest first.
func (s *SQLStore) ListNotes(ctx context.Context, userID string, f NoteFilter) ([]Note, error) {
	query := `SELECT ` + noteColumns + ` FROM pa_notes WHERE user_id = ?`
	args := []any{userID}
	if f.Search != "" {
		query += ` AND (LOWER(title) LIKE ? ESCAPE '\' OR LOWER(body) LIKE ? ESCAPE '\')`
		p := likePattern(f.Search)
		args = append(args, p, p)
	}
	query += ` ORDER BY seq DESC, id DESC LIMIT ?`
	args = append(args, paLimit(f.Limit))
	return scanAll(ctx, s, "list notes", query, args, scanNote)
}

// UpdateNote replaces the title and body of the user's note n.ID and returns it; ErrNotFound
// when it is not theirs.
func (s *SQLStore) UpdateNote(ctx context.Context, n Note) (Note, error) {
	if err := normalizeNote(&n); err != nil {
		return Note{}, fmt.Errorf("update note: %w", err)
	}
	if err := s.execScoped(ctx, "update note", `UPDATE pa_notes SET title = ?, body = ?, updated_at = ? WHERE id = ? AND user_id = ?`,
		n.Title, n.Body, s.now(), n.ID, n.UserID); err != nil {
		return Note{}, err
	}
	return s.GetNote(ctx, n.UserID, n.ID)
}

// DeleteNote removes the user's note; ErrNotFound when it is not theirs.
func (s *SQLStore) DeleteNote(ctx context.Context, userID, id string) error {
	return s.deletePA(ctx, "pa_notes", "delete note", userID, id)
}

// --- Calendar events ---

const eventColumns = `id, user_id, title, description, location, start_at, end_at, all_day, time_zone, external_id, created_at, updated_at`

func scanEvent(scan func(...any) error) (CalendarEvent, error) {
	var e CalendarEvent
	var start, end, created, updated int64
	var allDay int
	if err := scan(&e.ID, &e.UserID, &e.Title, &e.Description, &e.Location, &start, &end, &allDay, &e.TimeZone, &e.ExternalID, &created, &updated); err != nil {
		return CalendarEvent{}, err
	}
	e.Start, e.End, e.AllDay = time.UnixMilli(start), time.UnixMilli(end), allDay != 0
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return e, nil
}

func normalizeEvent(e *CalendarEvent) error {
	e.Title, e.ExternalID = strings.TrimSpace(e.Title), strings.TrimSpace(e.ExternalID)
	if err := checkUser(e.UserID); err != nil {
		return err
	}
	if err := checkText("title", e.Title, true, MaxPATitle); err != nil {
		return err
	}
	if err := checkText("description", e.Description, false, MaxPAText); err != nil {
		return err
	}
	if err := checkText("location", e.Location, false, MaxPATitle); err != nil {
		return err
	}
	if err := checkText("externalId", e.ExternalID, false, 1024); err != nil {
		return err
	}
	if e.Start.IsZero() {
		return invalid("start", "is required")
	}
	if e.End.IsZero() {
		e.End = e.Start
	}
	if e.End.Before(e.Start) {
		return invalid("end", "is before the start")
	}
	if e.TimeZone != "" {
		if _, err := time.LoadLocation(e.TimeZone); err != nil {
			return invalid("timeZone", "%q is not an IANA time zone", e.TimeZone)
		}
	}
	return nil
}

// CreateCalendarEvent stores a new event and returns it. End defaults to Start.
func (s *SQLStore) CreateCalendarEvent(ctx context.Context, e CalendarEvent) (CalendarEvent, error) {
	if err := normalizeEvent(&e); err != nil {
		return CalendarEvent{}, fmt.Errorf("create event: %w", err)
	}
	if e.ID == "" {
		e.ID = NewID("evt")
	}
	now := s.now()
	e.CreatedAt, e.UpdatedAt = time.UnixMilli(now), time.UnixMilli(now)
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO pa_events (`+eventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.ID, e.UserID, e.Title, e.Description, e.Location, e.Start.UnixMilli(), e.End.UnixMilli(), boolInt(e.AllDay), e.TimeZone, e.ExternalID, now, now); err != nil {
		return CalendarEvent{}, fmt.Errorf("create event: %w", err)
	}
	e.Start, e.End = time.UnixMilli(e.Start.UnixMilli()), time.UnixMilli(e.End.UnixMilli())
	return e, nil
}

// GetCalendarEvent returns the user's event, else ErrNotFound (also for another user's).
func (s *SQLStore) GetCalendarEvent(ctx context.Context, userID, id string) (CalendarEvent, error) {
	return scanOne(ctx, s, "get event", `SELECT `+eventColumns+` FROM pa_events WHERE id = ? AND user_id = ?`, []any{id, userID}, scanEvent)
}

// GetCalendarEventByExternalID returns the user's event synced from an external calendar
// under that id, else ErrNotFound.
func (s *SQLStore) GetCalendarEventByExternalID(ctx context.Context, userID, externalID string) (CalendarEvent, error) {
	if externalID == "" {
		return CalendarEvent{}, fmt.Errorf("get event: %w", ErrNotFound)
	}
	return scanOne(ctx, s, "get event", `SELECT `+eventColumns+` FROM pa_events WHERE external_id = ? AND user_id = ?`, []any{externalID, userID}, scanEvent)
}

// ListCalendarEvents returns the user's events that overlap the filter's window, by start.
// An instant event (End == Start) counts when it starts inside the window.
func (s *SQLStore) ListCalendarEvents(ctx context.Context, userID string, f EventFilter) ([]CalendarEvent, error) {
	query := `SELECT ` + eventColumns + ` FROM pa_events WHERE user_id = ?`
	args := []any{userID}
	if !f.To.IsZero() {
		query += ` AND start_at < ?`
		args = append(args, f.To.UnixMilli())
	}
	if !f.From.IsZero() {
		query += ` AND (end_at > ? OR start_at >= ?)`
		args = append(args, f.From.UnixMilli(), f.From.UnixMilli())
	}
	if f.Search != "" {
		query += ` AND LOWER(title) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(f.Search))
	}
	query += ` ORDER BY start_at, id LIMIT ?`
	args = append(args, paLimit(f.Limit))
	return scanAll(ctx, s, "list events", query, args, scanEvent)
}

// UpdateCalendarEvent replaces the editable fields of the user's event e.ID and returns it;
// ErrNotFound when it is not theirs.
func (s *SQLStore) UpdateCalendarEvent(ctx context.Context, e CalendarEvent) (CalendarEvent, error) {
	if err := normalizeEvent(&e); err != nil {
		return CalendarEvent{}, fmt.Errorf("update event: %w", err)
	}
	if err := s.execScoped(ctx, "update event", `UPDATE pa_events SET title = ?, description = ?, location = ?, start_at = ?, end_at = ?,
		all_day = ?, time_zone = ?, external_id = ?, updated_at = ? WHERE id = ? AND user_id = ?`,
		e.Title, e.Description, e.Location, e.Start.UnixMilli(), e.End.UnixMilli(), boolInt(e.AllDay), e.TimeZone, e.ExternalID, s.now(), e.ID, e.UserID); err != nil {
		return CalendarEvent{}, err
	}
	return s.GetCalendarEvent(ctx, e.UserID, e.ID)
}

// DeleteCalendarEvent removes the user's event; ErrNotFound when it is not theirs.
func (s *SQLStore) DeleteCalendarEvent(ctx context.Context, userID, id string) error {
	return s.deletePA(ctx, "pa_events", "delete event", userID, id)
}

// --- Contacts ---

const contactColumns = `id, user_id, name, email, phone, notes, created_at, updated_at`

func scanContact(scan func(...any) error) (Contact, error) {
	var c Contact
	var created, updated int64
	if err := scan(&c.ID, &c.UserID, &c.Name, &c.Email, &c.Phone, &c.Notes, &created, &updated); err != nil {
		return Contact{}, err
	}
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return c, nil
}

func normalizeContact(c *Contact) error {
	c.Name, c.Email, c.Phone = strings.TrimSpace(c.Name), strings.TrimSpace(c.Email), strings.TrimSpace(c.Phone)
	if err := checkUser(c.UserID); err != nil {
		return err
	}
	if err := checkText("name", c.Name, true, MaxPATitle); err != nil {
		return err
	}
	if err := checkText("email", c.Email, false, 320); err != nil {
		return err
	}
	if c.Email != "" && (!strings.Contains(c.Email, "@") || strings.ContainsAny(c.Email, " \t\r\n")) {
		return invalid("email", "%q is not an email address", c.Email)
	}
	if err := checkText("phone", c.Phone, false, 64); err != nil {
		return err
	}
	if strings.Trim(c.Phone, "+0123456789 ()-./") != "" {
		return invalid("phone", "%q is not a phone number", c.Phone)
	}
	return checkText("notes", c.Notes, false, MaxPAText)
}

// CreateContact stores a new contact and returns it.
func (s *SQLStore) CreateContact(ctx context.Context, c Contact) (Contact, error) {
	if err := normalizeContact(&c); err != nil {
		return Contact{}, fmt.Errorf("create contact: %w", err)
	}
	if c.ID == "" {
		c.ID = NewID("con")
	}
	now := s.now()
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(now), time.UnixMilli(now)
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO pa_contacts (`+contactColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.UserID, c.Name, c.Email, c.Phone, c.Notes, now, now); err != nil {
		return Contact{}, fmt.Errorf("create contact: %w", err)
	}
	return c, nil
}

// GetContact returns the user's contact, else ErrNotFound (also for another user's).
func (s *SQLStore) GetContact(ctx context.Context, userID, id string) (Contact, error) {
	return scanOne(ctx, s, "get contact", `SELECT `+contactColumns+` FROM pa_contacts WHERE id = ? AND user_id = ?`, []any{id, userID}, scanContact)
}

// ListContacts returns the user's contacts by name.
func (s *SQLStore) ListContacts(ctx context.Context, userID string, f ContactFilter) ([]Contact, error) {
	query := `SELECT ` + contactColumns + ` FROM pa_contacts WHERE user_id = ?`
	args := []any{userID}
	if f.Search != "" {
		query += ` AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\' OR phone LIKE ? ESCAPE '\')`
		p := likePattern(f.Search)
		args = append(args, p, p, p)
	}
	query += ` ORDER BY LOWER(name), id LIMIT ?`
	args = append(args, paLimit(f.Limit))
	return scanAll(ctx, s, "list contacts", query, args, scanContact)
}

// UpdateContact replaces the name, email, phone and notes of the user's contact c.ID and
// returns it; ErrNotFound when it is not theirs.
func (s *SQLStore) UpdateContact(ctx context.Context, c Contact) (Contact, error) {
	if err := normalizeContact(&c); err != nil {
		return Contact{}, fmt.Errorf("update contact: %w", err)
	}
	if err := s.execScoped(ctx, "update contact", `UPDATE pa_contacts SET name = ?, email = ?, phone = ?, notes = ?, updated_at = ? WHERE id = ? AND user_id = ?`,
		c.Name, c.Email, c.Phone, c.Notes, s.now(), c.ID, c.UserID); err != nil {
		return Contact{}, err
	}
	return s.GetContact(ctx, c.UserID, c.ID)
}

// DeleteContact removes the user's contact; ErrNotFound when it is not theirs.
func (s *SQLStore) DeleteContact(ctx context.Context, userID, id string) error {
	return s.deletePA(ctx, "pa_contacts", "delete contact", userID, id)
}
