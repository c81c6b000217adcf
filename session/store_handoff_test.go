package session

import (
	"errors"
	"testing"
	"time"
)

func TestUpdateSessionAgent(t *testing.T) { forEachBackend(t, testUpdateSessionAgent) }

func testUpdateSessionAgent(t *testing.T) {
	ctx := t.Context()
	s, clock, _ := newTestStore(t)
	for _, u := range []string{"alice", "bob"} {
		if _, err := s.EnsureUser(ctx, u, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, Session{ID: "ses_a", UserID: "alice", AgentID: "fam"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendMessage(ctx, Message{ID: "msg_1", SessionID: "ses_a", Role: RoleUser, Content: "remind me to call mom"}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.GetSession(ctx, "alice", "ses_a")
	clock.Advance(time.Minute)

	// Another user cannot move alice's session, nor can anyone move a missing one.
	for _, tt := range []struct{ user, session string }{{"bob", "ses_a"}, {"alice", "ses_missing"}} {
		if err := s.UpdateSessionAgent(ctx, tt.user, tt.session, "pa"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s moving %s: %v, want ErrNotFound", tt.user, tt.session, err)
		}
	}
	if got, _ := s.GetSession(ctx, "alice", "ses_a"); got.AgentID != "fam" {
		t.Fatalf("agent %q after refused updates", got.AgentID)
	}
	if err := s.UpdateSessionAgent(ctx, "alice", "ses_a", ""); err == nil {
		t.Fatal("an empty agent id was accepted")
	}

	if err := s.UpdateSessionAgent(ctx, "alice", "ses_a", "pa"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx, "alice", "ses_a")
	if err != nil {
		t.Fatal(err)
	}
	if got.AgentID != "pa" || !got.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("session %+v, want agent pa and a later update than %v", got, before.UpdatedAt)
	}
	// The conversation is carried over whole.
	if msgs, err := s.ListMessages(ctx, "alice", "ses_a", 0); err != nil || len(msgs) != 1 || msgs[0].Content != "remind me to call mom" {
		t.Fatalf("messages after hand-off: %v %v", msgs, err)
	}
}
