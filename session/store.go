package session

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a record does not exist or belongs to another tenant; the two
// cases are indistinguishable on purpose so ids cannot be probed across tenants.
var ErrNotFound = errors.New("not found")

// AnonymousUserID owns the sessions of callers that name no user. Their session ids are
// unguessable, so holding one is what lets a caller continue a conversation.
const AnonymousUserID = "anonymous"

// Roles of a Message.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
)

// User is a tenant: every session, message and event belongs to one.
type User struct {
	ID        string
	Plan      string
	CreatedAt time.Time
}

// Session is one conversation between a user and an agent.
type Session struct {
	ID        string
	UserID    string
	AgentID   string
	CreatedAt time.Time
	UpdatedAt time.Time
	Metadata  map[string]any
}

// Message is one utterance in a session.
type Message struct {
	ID        string
	SessionID string
	Role      string
	Content   string
	CreatedAt time.Time
	Metadata  map[string]any
}

// Event is an analytics record (a turn completed, a provider failed over, ...).
type Event struct {
	Type      string
	UserID    string
	SessionID string
	AgentID   string
	CreatedAt time.Time
	Data      map[string]any
}

// Store is the durable state: users, sessions, messages and analytics events. Every read is
// scoped to a user id.
type Store interface {
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// EnsureUser returns the user, creating it with the given plan if it does not exist.
	EnsureUser(ctx context.Context, id, plan string) (User, error)
	// CreateSession stores a new session; its user must exist.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session if it exists and belongs to userID, else ErrNotFound.
	GetSession(ctx context.Context, userID, sessionID string) (Session, error)
	// AppendMessage stores a message and marks its session as updated.
	AppendMessage(ctx context.Context, m Message) error
	// ListMessages returns the last limit messages of the user's session, oldest first;
	// limit <= 0 means all of them.
	ListMessages(ctx context.Context, userID, sessionID string, limit int) ([]Message, error)
	// TruncateMessage replaces the content of a message of the user's session with what was
	// actually delivered (a spoken reply the user interrupted), keeping the generated text in
	// its metadata under "generated"; ErrNotFound when the message is not theirs.
	TruncateMessage(ctx context.Context, userID, sessionID, messageID, content string) error
	// RecordEvent stores an analytics event.
	RecordEvent(ctx context.Context, e Event) error
	// Close releases the database.
	Close() error
}
