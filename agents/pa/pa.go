// Package pa is the personal assistant agent: tasks and lists, reminders, notes, calendar
// events and contacts, per user. With a model that can call tools it works through OpenAI tool
// calling; offline (or in cost-saving mode) a parser reads the common phrasings. Times are
// understood and stated in the user's time zone, from the request context's "timeZone".
package pa

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones even where the system has no zoneinfo (containers)

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/session"
)

// ID is the personal assistant's agent id.
const ID = "pa"

// Provider and models named in the metadata of replies the agent writes itself.
const (
	Provider   = "pa"
	ModelRules = "pa-rules"
)

// Intents the agent reports.
const (
	IntentTask     = "pa_task"
	IntentReminder = "pa_reminder"
	IntentNote     = "pa_note"
	IntentCalendar = "pa_calendar"
	IntentContact  = "pa_contact"
	IntentHelp     = "pa_help"
)

// Store keeps the assistant's records per user; session.SQLStore implements it. Every method
// is scoped to the user it is given.
type Store interface {
	CreateTask(ctx context.Context, t session.Task) (session.Task, error)
	GetTask(ctx context.Context, userID, id string) (session.Task, error)
	ListTasks(ctx context.Context, userID string, f session.TaskFilter) ([]session.Task, error)
	UpdateTask(ctx context.Context, t session.Task) (session.Task, error)
	DeleteTask(ctx context.Context, userID, id string) error

	CreateReminder(ctx context.Context, r session.Reminder) (session.Reminder, error)
	GetReminder(ctx context.Context, userID, id string) (session.Reminder, error)
	ListReminders(ctx context.Context, userID string, f session.ReminderFilter) ([]session.Reminder, error)
	UpdateReminder(ctx context.Context, r session.Reminder) (session.Reminder, error)

	CreateNote(ctx context.Context, n session.Note) (session.Note, error)
	ListNotes(ctx context.Context, userID string, f session.NoteFilter) ([]session.Note, error)

	CreateCalendarEvent(ctx context.Context, e session.CalendarEvent) (session.CalendarEvent, error)
	ListCalendarEvents(ctx context.Context, userID string, f session.EventFilter) ([]session.CalendarEvent, error)

	CreateContact(ctx context.Context, c session.Contact) (session.Contact, error)
	ListContacts(ctx context.Context, userID string, f session.ContactFilter) ([]session.Contact, error)
}

var _ Store = (*session.SQLStore)(nil)

// Config configures the agent; it is shared by every conversation.
type Config struct {
	// Store keeps the records. Required.
	Store Store
	// Tools lets the model act through tool calling; set it when the provider chain's first
	// provider speaks OpenAI's tool calling (OpenAI or a compatible server). Default false:
	// the offline parser answers. It is also used whenever the turn's provider is the offline
	// engine, in cost-saving mode, and when the model is out of reach.
	Tools bool
	// Model overrides the provider's default model for tool calling. Default: the provider's.
	Model string
	// MaxToolRounds bounds the model calls of one turn (each may run several tools). Default 4.
	MaxToolRounds int
	// Temperature for tool calling. Default 0.2: acting on a request is no place for flair.
	Temperature float64
	// MaxTokens bounds each model reply. Default 500.
	MaxTokens int
	// Clock reads "now" for resolving times. Default session.SystemClock.
	Clock session.Clock
	// Logger receives store and tool failures. Default slog.Default().
	Logger *slog.Logger
}

// Agent is the personal assistant. It holds no per-conversation state.
type Agent struct {
	cfg Config
}

var _ agents.Agent = (*Agent)(nil)

// New builds the agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Store == nil {
		return nil, errors.New("pa: the agent needs a store")
	}
	if cfg.MaxToolRounds <= 0 {
		cfg.MaxToolRounds = 4
	}
	if cfg.Temperature == 0 {
		cfg.Temperature = 0.2
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 500
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Agent{cfg: cfg}, nil
}

// Info implements agents.Agent.
func (a *Agent) Info() agents.Info {
	return agents.Info{ID: ID, Name: "Personal assistant", Description: "Keeps your tasks and lists, reminders, notes, calendar and contacts: \"remind me to call mom at 5pm tomorrow\", \"add milk to my shopping list\", \"what's on my calendar on Friday\"."}
}

// Location reads the user's time zone from a request context ("timeZone", an IANA name such
// as "America/New_York"); UTC when it is missing or unknown.
func Location(reqContext map[string]any) *time.Location {
	for _, key := range []string{"timeZone", "timezone", "tz"} {
		name, _ := reqContext[key].(string)
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

// turn is one message being handled: who, where in time, and how.
type turn struct {
	in   agents.Input
	user string
	loc  *time.Location
	now  time.Time // in loc
}

// Respond implements agents.Agent.
func (a *Agent) Respond(ctx context.Context, in agents.Input) (agents.Reply, error) {
	loc := Location(in.Context)
	t := &turn{in: in, user: in.UserID, loc: loc, now: a.cfg.Clock.Now().In(loc)}
	sentiment := nlu.AnalyzeSentiment(in.Message)
	if t.user == "" || t.user == session.AnonymousUserID {
		// Records of the anonymous user would be shared by every anonymous caller.
		return agents.Reply{Intent: nlu.Intent{Name: IntentHelp, Confidence: 1}, Sentiment: sentiment,
			Stream: say("I keep tasks, reminders, notes, your calendar and contacts for you, so I need to know who you are first. Please sign in (or send a userId) and ask me again.")}, nil
	}
	if a.useTools(in) {
		return agents.Reply{Intent: nlu.Intent{Name: intentOfMessage(ParseCommand(in.Message, t.now)), Confidence: 0.8}, Sentiment: sentiment,
			Stream: a.toolLoop(ctx, t)}, nil
	}
	text, intent, err := a.offline(ctx, t)
	if err != nil {
		return agents.Reply{}, err
	}
	return agents.Reply{Intent: nlu.Intent{Name: intent, Confidence: 0.9}, Sentiment: sentiment, Stream: say(text)}, nil
}

// useTools reports whether this turn goes to the model with tools.
func (a *Agent) useTools(in agents.Input) bool {
	return a.cfg.Tools && in.LLM != nil && !in.CostSaving && !fam.IsOffline(in.LLM)
}

func intentOfMessage(c Command) string {
	switch c.Kind {
	case CmdRemind, CmdListReminders, CmdCancelReminder:
		return IntentReminder
	case CmdAddTask, CmdListTasks, CmdCompleteTask, CmdRemoveTask:
		return IntentTask
	case CmdAddNote, CmdListNotes:
		return IntentNote
	case CmdSchedule, CmdAgenda:
		return IntentCalendar
	case CmdAddContact, CmdFindContact, CmdListContacts:
		return IntentContact
	case CmdGreeting:
		return nlu.IntentGreeting
	}
	return IntentHelp
}

// say streams text the agent wrote itself, a few words at a time like a model, ending with an
// empty usage so the engine sees a complete reply.
func say(text string) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		words := strings.SplitAfter(text, " ")
		for i := 0; i < len(words); i += 4 {
			piece := strings.Join(words[i:min(i+4, len(words))], "")
			if !yield(llm.Chunk{Text: piece, Provider: Provider, Model: ModelRules}, nil) {
				return
			}
		}
		yield(llm.Chunk{Provider: Provider, Model: ModelRules, Usage: &llm.Usage{}}, nil)
	}
}
