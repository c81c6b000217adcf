package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/labstack/echo/v4"
)

// The personal assistant's records over REST: /api/v2/pa/{tasks,reminders,notes,calendar,
// contacts} with GET (list) and POST (create), and /:id with GET, PATCH and DELETE. Every
// request acts for one user (callerUser: the authenticated caller, or the userId query or
// body field in open mode); another user's id is 404, exactly like a missing one.

// PAStore keeps the assistant's records per user; session.SQLStore implements it.
type PAStore interface {
	EnsureUser(ctx context.Context, id, plan string) (session.User, error)

	CreateTask(ctx context.Context, t session.Task) (session.Task, error)
	GetTask(ctx context.Context, userID, id string) (session.Task, error)
	ListTasks(ctx context.Context, userID string, f session.TaskFilter) ([]session.Task, error)
	UpdateTask(ctx context.Context, t session.Task) (session.Task, error)
	DeleteTask(ctx context.Context, userID, id string) error

	CreateReminder(ctx context.Context, r session.Reminder) (session.Reminder, error)
	GetReminder(ctx context.Context, userID, id string) (session.Reminder, error)
	ListReminders(ctx context.Context, userID string, f session.ReminderFilter) ([]session.Reminder, error)
	UpdateReminder(ctx context.Context, r session.Reminder) (session.Reminder, error)
	DeleteReminder(ctx context.Context, userID, id string) error

	CreateNote(ctx context.Context, n session.Note) (session.Note, error)
	GetNote(ctx context.Context, userID, id string) (session.Note, error)
	ListNotes(ctx context.Context, userID string, f session.NoteFilter) ([]session.Note, error)
	UpdateNote(ctx context.Context, n session.Note) (session.Note, error)
	DeleteNote(ctx context.Context, userID, id string) error

	CreateCalendarEvent(ctx context.Context, e session.CalendarEvent) (session.CalendarEvent, error)
	GetCalendarEvent(ctx context.Context, userID, id string) (session.CalendarEvent, error)
	ListCalendarEvents(ctx context.Context, userID string, f session.EventFilter) ([]session.CalendarEvent, error)
	UpdateCalendarEvent(ctx context.Context, e session.CalendarEvent) (session.CalendarEvent, error)
	DeleteCalendarEvent(ctx context.Context, userID, id string) error

	CreateContact(ctx context.Context, c session.Contact) (session.Contact, error)
	GetContact(ctx context.Context, userID, id string) (session.Contact, error)
	ListContacts(ctx context.Context, userID string, f session.ContactFilter) ([]session.Contact, error)
	UpdateContact(ctx context.Context, c session.Contact) (session.Contact, error)
	DeleteContact(ctx context.Context, userID, id string) error
}

var _ PAStore = (*session.SQLStore)(nil)

// paRoutes registers the PA endpoints on g (/api/v2/pa).
func (s *Server) paRoutes(g *echo.Group) {
	registerPA(s, g, "/tasks", paTasks)
	registerPA(s, g, "/reminders", paReminders)
	registerPA(s, g, "/notes", paNotes)
	registerPA(s, g, "/calendar", paEvents)
	registerPA(s, g, "/contacts", paContacts)
}

// paResource is one record type over REST: R the record, V its JSON view, In the body of a
// create or update (every field optional, so PATCH changes only what it names).
type paResource[R, V, In any] struct {
	// what names one record in messages ("task"); plural keys the list response ("tasks").
	what, plural string
	list         func(ctx context.Context, st PAStore, user string, q *queryParams) ([]R, error)
	get          func(ctx context.Context, st PAStore, user, id string) (R, error)
	create       func(ctx context.Context, st PAStore, user string, in In) (R, error)
	// patch applies in to the current record and stores it.
	patch  func(ctx context.Context, st PAStore, cur R, in In) (R, error)
	delete func(ctx context.Context, st PAStore, user, id string) error
	view   func(R) V
}

func registerPA[R, V, In any](s *Server, g *echo.Group, path string, res paResource[R, V, In]) {
	g.GET(path, func(c echo.Context) error {
		st, user, err := s.paCaller(c, "")
		if err != nil {
			return err
		}
		list, err := res.list(c.Request().Context(), st, user, &queryParams{c: c})
		if err != nil {
			return paError(res.what, err)
		}
		views := make([]V, 0, len(list))
		for _, r := range list {
			views = append(views, res.view(r))
		}
		return c.JSON(http.StatusOK, map[string]any{res.plural: views, "total": len(views)})
	})
	g.POST(path, func(c echo.Context) error {
		var body paBody[In]
		if err := decodeJSON(c, &body); err != nil {
			return err
		}
		st, user, err := s.paCaller(c, body.UserID)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		if _, err := st.EnsureUser(ctx, user, ""); err != nil {
			return fmt.Errorf("pa: %w", err)
		}
		created, err := res.create(ctx, st, user, body.Fields)
		if err != nil {
			return paError(res.what, err)
		}
		return c.JSON(http.StatusCreated, res.view(created))
	})
	g.GET(path+"/:id", func(c echo.Context) error {
		st, user, err := s.paCaller(c, "")
		if err != nil {
			return err
		}
		r, err := res.get(c.Request().Context(), st, user, c.Param("id"))
		if err != nil {
			return paError(res.what, err)
		}
		return c.JSON(http.StatusOK, res.view(r))
	})
	g.PATCH(path+"/:id", func(c echo.Context) error {
		var body paBody[In]
		if err := decodeJSON(c, &body); err != nil {
			return err
		}
		st, user, err := s.paCaller(c, body.UserID)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		cur, err := res.get(ctx, st, user, c.Param("id"))
		if err != nil {
			return paError(res.what, err)
		}
		updated, err := res.patch(ctx, st, cur, body.Fields)
		if err != nil {
			return paError(res.what, err)
		}
		return c.JSON(http.StatusOK, res.view(updated))
	})
	g.DELETE(path+"/:id", func(c echo.Context) error {
		st, user, err := s.paCaller(c, "")
		if err != nil {
			return err
		}
		if err := res.delete(c.Request().Context(), st, user, c.Param("id")); err != nil {
			return paError(res.what, err)
		}
		return c.NoContent(http.StatusNoContent)
	})
}

// paBody is a create or update body: the caller's userId (open mode) and the record's fields.
type paBody[In any] struct {
	UserID string `json:"-"`
	Fields In     `json:"-"`
}

// UnmarshalJSON reads userId and the fields from one flat object.
func (b *paBody[In]) UnmarshalJSON(raw []byte) error {
	var who struct {
		UserID string `json:"userId"`
	}
	if err := json.Unmarshal(raw, &who); err != nil {
		return err
	}
	b.UserID = who.UserID
	return json.Unmarshal(raw, &b.Fields)
}

// paCaller resolves the store and the user a PA request acts for. The assistant's records are
// never the anonymous user's: that user is shared by every caller without an id.
func (s *Server) paCaller(c echo.Context, bodyUser string) (PAStore, string, error) {
	if s.cfg.PA == nil {
		return nil, "", newAPIError(http.StatusServiceUnavailable, CodeUnavailable, "the personal assistant's records are not configured on this server")
	}
	requested := bodyUser
	if requested == "" {
		requested = c.QueryParam("userId")
	}
	user, err := s.callerUser(c, requested)
	if err != nil {
		return nil, "", err
	}
	user = strings.TrimSpace(user)
	switch {
	case user == "" || user == session.AnonymousUserID:
		return nil, "", &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "userId: is required: the assistant's records belong to a user", Details: map[string]any{"field": "userId"}}
	case !agents.ValidUserID(user):
		return nil, "", &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: "userId: must be 1-128 letters, digits or _.@:-", Details: map[string]any{"field": "userId"}}
	}
	return s.cfg.PA, user, nil
}

// paError turns the store's refusals into the envelope: a missing (or another user's) record
// is 404, a bad field 400.
func paError(what string, err error) error {
	var ve *session.PAValidationError
	switch {
	case errors.Is(err, session.ErrNotFound):
		return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: what + " not found", cause: err}
	case errors.As(err, &ve):
		return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: ve.Error(), Details: map[string]any{"field": ve.Field}, cause: err}
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr
	}
	return fmt.Errorf("pa %s: %w", what, err)
}

// queryParams reads list filters, remembering the first bad one.
type queryParams struct {
	c   echo.Context
	bad *APIError
}

func (q *queryParams) fail(name, format string, args ...any) {
	if q.bad == nil {
		q.bad = &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: name + ": " + fmt.Sprintf(format, args...), Details: map[string]any{"field": name}}
	}
}

// err is the first bad filter, if any; list functions check it before asking the store.
func (q *queryParams) err() error {
	if q.bad != nil {
		return q.bad
	}
	return nil
}

func (q *queryParams) str(name string) string { return strings.TrimSpace(q.c.QueryParam(name)) }

func (q *queryParams) limit() int {
	v := q.str("limit")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		q.fail("limit", "must be a whole number from 1 to 500")
		return 0
	}
	return n
}

func (q *queryParams) time(name string) time.Time {
	v := q.str(name)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		q.fail(name, "must be an RFC 3339 time such as 2025-03-04T17:00:00Z")
	}
	return t
}

// optTime is a time field of a body: absent leaves it unchanged, null or "" clears it.
type optTime struct {
	Set  bool
	Time time.Time
}

func (o *optTime) UnmarshalJSON(raw []byte) error {
	o.Set = true
	if s := string(bytes.TrimSpace(raw)); s == "null" || s == `""` {
		o.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return errors.New("times must be RFC 3339 strings such as 2025-03-04T17:00:00-05:00")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("%q is not an RFC 3339 time such as 2025-03-04T17:00:00-05:00", s)
	}
	o.Time = t
	return nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func setTime(dst *time.Time, v optTime) {
	if v.Set {
		*dst = v.Time
	}
}

func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// --- Tasks ---

type taskView struct {
	ID        string     `json:"id"`
	List      string     `json:"list"`
	Title     string     `json:"title"`
	Notes     string     `json:"notes"`
	Done      bool       `json:"done"`
	DueAt     *time.Time `json:"dueAt"`
	DoneAt    *time.Time `json:"doneAt"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
}

type taskInput struct {
	List  *string `json:"list"`
	Title *string `json:"title"`
	Notes *string `json:"notes"`
	Done  *bool   `json:"done"`
	DueAt optTime `json:"dueAt"`
}

func (in taskInput) apply(t *session.Task) {
	set(&t.List, in.List)
	set(&t.Title, in.Title)
	set(&t.Notes, in.Notes)
	set(&t.Done, in.Done)
	setTime(&t.DueAt, in.DueAt)
}

var paTasks = paResource[session.Task, taskView, taskInput]{
	what: "task", plural: "tasks",
	list: func(ctx context.Context, st PAStore, user string, q *queryParams) ([]session.Task, error) {
		f := session.TaskFilter{List: q.str("list"), Status: q.str("status"), Search: q.str("q"), Limit: q.limit()}
		if err := q.err(); err != nil {
			return nil, err
		}
		return st.ListTasks(ctx, user, f)
	},
	get: func(ctx context.Context, st PAStore, user, id string) (session.Task, error) {
		return st.GetTask(ctx, user, id)
	},
	create: func(ctx context.Context, st PAStore, user string, in taskInput) (session.Task, error) {
		t := session.Task{UserID: user}
		in.apply(&t)
		return st.CreateTask(ctx, t)
	},
	patch: func(ctx context.Context, st PAStore, t session.Task, in taskInput) (session.Task, error) {
		in.apply(&t)
		return st.UpdateTask(ctx, t)
	},
	delete: func(ctx context.Context, st PAStore, user, id string) error { return st.DeleteTask(ctx, user, id) },
	view: func(t session.Task) taskView {
		return taskView{ID: t.ID, List: t.List, Title: t.Title, Notes: t.Notes, Done: t.Done, DueAt: utcOrNil(t.DueAt), DoneAt: utcOrNil(t.DoneAt),
			CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
	},
}

// --- Reminders ---

type reminderView struct {
	ID        string     `json:"id"`
	Text      string     `json:"text"`
	DueAt     time.Time  `json:"dueAt"`
	Status    string     `json:"status"`
	FiredAt   *time.Time `json:"firedAt"`
	TimeZone  string     `json:"timeZone"`
	SessionID string     `json:"sessionId,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
}

type reminderInput struct {
	Text     *string `json:"text"`
	DueAt    optTime `json:"dueAt"`
	Status   *string `json:"status"`
	TimeZone *string `json:"timeZone"`
}

func (in reminderInput) apply(r *session.Reminder) {
	set(&r.Text, in.Text)
	setTime(&r.DueAt, in.DueAt)
	set(&r.Status, in.Status)
	set(&r.TimeZone, in.TimeZone)
}

var paReminders = paResource[session.Reminder, reminderView, reminderInput]{
	what: "reminder", plural: "reminders",
	list: func(ctx context.Context, st PAStore, user string, q *queryParams) ([]session.Reminder, error) {
		f := session.ReminderFilter{Status: q.str("status"), From: q.time("from"), To: q.time("to"), Search: q.str("q"), Limit: q.limit()}
		if err := q.err(); err != nil {
			return nil, err
		}
		return st.ListReminders(ctx, user, f)
	},
	get: func(ctx context.Context, st PAStore, user, id string) (session.Reminder, error) {
		return st.GetReminder(ctx, user, id)
	},
	create: func(ctx context.Context, st PAStore, user string, in reminderInput) (session.Reminder, error) {
		r := session.Reminder{UserID: user}
		in.apply(&r)
		return st.CreateReminder(ctx, r)
	},
	patch: func(ctx context.Context, st PAStore, r session.Reminder, in reminderInput) (session.Reminder, error) {
		in.apply(&r)
		return st.UpdateReminder(ctx, r)
	},
	delete: func(ctx context.Context, st PAStore, user, id string) error { return st.DeleteReminder(ctx, user, id) },
	view: func(r session.Reminder) reminderView {
		return reminderView{ID: r.ID, Text: r.Text, DueAt: r.DueAt.UTC(), Status: r.Status, FiredAt: utcOrNil(r.FiredAt), TimeZone: r.TimeZone,
			SessionID: r.SessionID, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	},
}

// --- Notes ---

type noteView struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

type noteInput struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
}

var paNotes = paResource[session.Note, noteView, noteInput]{
	what: "note", plural: "notes",
	list: func(ctx context.Context, st PAStore, user string, q *queryParams) ([]session.Note, error) {
		f := session.NoteFilter{Search: q.str("q"), Limit: q.limit()}
		if err := q.err(); err != nil {
			return nil, err
		}
		return st.ListNotes(ctx, user, f)
	},
	get: func(ctx context.Context, st PAStore, user, id string) (session.Note, error) {
		return st.GetNote(ctx, user, id)
	},
	create: func(ctx context.Context, st PAStore, user string, in noteInput) (session.Note, error) {
		n := session.Note{UserID: user}
		set(&n.Title, in.Title)
		set(&n.Body, in.Body)
		return st.CreateNote(ctx, n)
	},
	patch: func(ctx context.Context, st PAStore, n session.Note, in noteInput) (session.Note, error) {
		set(&n.Title, in.Title)
		set(&n.Body, in.Body)
		return st.UpdateNote(ctx, n)
	},
	delete: func(ctx context.Context, st PAStore, user, id string) error { return st.DeleteNote(ctx, user, id) },
	view: func(n session.Note) noteView {
		return noteView{ID: n.ID, Title: n.Title, Body: n.Body, CreatedAt: n.CreatedAt.UTC(), UpdatedAt: n.UpdatedAt.UTC()}
	},
}

// --- Calendar ---

type eventView struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Location    string    `json:"location"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	AllDay      bool      `json:"allDay"`
	TimeZone    string    `json:"timeZone"`
	ExternalID  string    `json:"externalId"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

type eventInput struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
	Location    *string `json:"location"`
	Start       optTime `json:"start"`
	End         optTime `json:"end"`
	AllDay      *bool   `json:"allDay"`
	TimeZone    *string `json:"timeZone"`
	ExternalID  *string `json:"externalId"`
}

func (in eventInput) apply(e *session.CalendarEvent) {
	set(&e.Title, in.Title)
	set(&e.Description, in.Description)
	set(&e.Location, in.Location)
	setTime(&e.Start, in.Start)
	setTime(&e.End, in.End)
	set(&e.AllDay, in.AllDay)
	set(&e.TimeZone, in.TimeZone)
	set(&e.ExternalID, in.ExternalID)
}

var paEvents = paResource[session.CalendarEvent, eventView, eventInput]{
	what: "event", plural: "events",
	list: func(ctx context.Context, st PAStore, user string, q *queryParams) ([]session.CalendarEvent, error) {
		f := session.EventFilter{From: q.time("from"), To: q.time("to"), Search: q.str("q"), Limit: q.limit()}
		if err := q.err(); err != nil {
			return nil, err
		}
		return st.ListCalendarEvents(ctx, user, f)
	},
	get: func(ctx context.Context, st PAStore, user, id string) (session.CalendarEvent, error) {
		return st.GetCalendarEvent(ctx, user, id)
	},
	create: func(ctx context.Context, st PAStore, user string, in eventInput) (session.CalendarEvent, error) {
		e := session.CalendarEvent{UserID: user}
		in.apply(&e)
		return st.CreateCalendarEvent(ctx, e)
	},
	patch: func(ctx context.Context, st PAStore, e session.CalendarEvent, in eventInput) (session.CalendarEvent, error) {
		in.apply(&e)
		return st.UpdateCalendarEvent(ctx, e)
	},
	delete: func(ctx context.Context, st PAStore, user, id string) error {
		return st.DeleteCalendarEvent(ctx, user, id)
	},
	view: func(e session.CalendarEvent) eventView {
		return eventView{ID: e.ID, Title: e.Title, Description: e.Description, Location: e.Location, Start: e.Start.UTC(), End: e.End.UTC(),
			AllDay: e.AllDay, TimeZone: e.TimeZone, ExternalID: e.ExternalID, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
	},
}

// --- Contacts ---

type contactView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Phone     string    `json:"phone"`
	Notes     string    `json:"notes"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

type contactInput struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
	Phone *string `json:"phone"`
	Notes *string `json:"notes"`
}

func (in contactInput) apply(c *session.Contact) {
	set(&c.Name, in.Name)
	set(&c.Email, in.Email)
	set(&c.Phone, in.Phone)
	set(&c.Notes, in.Notes)
}

var paContacts = paResource[session.Contact, contactView, contactInput]{
	what: "contact", plural: "contacts",
	list: func(ctx context.Context, st PAStore, user string, q *queryParams) ([]session.Contact, error) {
		f := session.ContactFilter{Search: q.str("q"), Limit: q.limit()}
		if err := q.err(); err != nil {
			return nil, err
		}
		return st.ListContacts(ctx, user, f)
	},
	get: func(ctx context.Context, st PAStore, user, id string) (session.Contact, error) {
		return st.GetContact(ctx, user, id)
	},
	create: func(ctx context.Context, st PAStore, user string, in contactInput) (session.Contact, error) {
		c := session.Contact{UserID: user}
		in.apply(&c)
		return st.CreateContact(ctx, c)
	},
	patch: func(ctx context.Context, st PAStore, c session.Contact, in contactInput) (session.Contact, error) {
		in.apply(&c)
		return st.UpdateContact(ctx, c)
	},
	delete: func(ctx context.Context, st PAStore, user, id string) error { return st.DeleteContact(ctx, user, id) },
	view: func(c session.Contact) contactView {
		return contactView{ID: c.ID, Name: c.Name, Email: c.Email, Phone: c.Phone, Notes: c.Notes, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	},
}
