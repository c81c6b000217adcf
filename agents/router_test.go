package agents_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
)

func TestRouteByRules(t *testing.T) {
	tests := []struct{ message, agent, reason string }{
		{"Remind me to call mom at 5pm tomorrow", "pa", "reminder"},
		{"add milk to my shopping list", "pa", "task"},
		{"put bread on my groceries list", "pa", "task"},
		{"what's on my calendar on Friday", "pa", "calendar"},
		{"take a note: the wifi password is on the fridge", "pa", "note"},
		{"what is the phone number of Sam in my contacts?", "pa", "contact"},
		{"what DPI is 4000 x 3000 at 30 cm?", "artwork", "print size"},
		{"how big can I print my image?", "artwork", "print size"},
		{"I want a refund", "support", "order"},
		{"what's the status of TKT-12?", "support", "order"},
		{"can I talk to a real person", "support", "human"},
		{"remind me to ask support about my refund", "pa", "reminder"},
		{"what's the capital of France?", "fam", "default"},
		{"", "fam", "default"},
	}
	for _, tt := range tests {
		if got := agents.RouteByRules(tt.message); got.AgentID != tt.agent || got.Reason != tt.reason {
			t.Errorf("RouteByRules(%q) = %+v, want %s (%s)", tt.message, got, tt.agent, tt.reason)
		}
	}
}

// stub is an agent with an id.
type stub string

func (s stub) Info() agents.Info { return agents.Info{ID: string(s)} }
func (s stub) Respond(context.Context, agents.Input) (agents.Reply, error) {
	return agents.Reply{}, errors.New("not used")
}

// The registry never routes to an agent it lacks: fam stands in, and without fam there is
// nowhere to go.
func TestRegistryRouteFallsBackToFAM(t *testing.T) {
	reg, err := agents.NewRegistry(stub("fam"), stub("artwork"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := reg.Route("remind me to stretch"); err != nil || r.AgentID != "fam" {
		t.Fatalf("pa missing: %+v %v", r, err)
	}
	if r, err := reg.Route("what DPI at 20 cm?"); err != nil || r.AgentID != "artwork" {
		t.Fatalf("artwork: %+v %v", r, err)
	}
	lonely, _ := agents.NewRegistry(stub("pa"))
	if _, err := lonely.Route("hello"); !errors.Is(err, agents.ErrAgentNotFound) {
		t.Fatalf("no fam: %v", err)
	}
}
