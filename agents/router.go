package agents

import (
	"context"
	"regexp"
	"strings"
)

// AutoAgentID asks the engine to pick the agent: a new conversation goes to the agent the
// router picks from the first message; a continued one stays with its session's agent.
const AutoAgentID = "auto"

// Agent ids the router knows. They are the ids the agents register under; an agent the
// registry lacks is never picked.
const (
	routeFAM     = "fam"
	routePA      = "pa"
	routeArtwork = "artwork"
	routeSupport = "support"
)

// Route is the router's choice for a message.
type Route struct {
	// AgentID is the agent picked.
	AgentID string `json:"agentId"`
	// Reason names the rule that matched ("reminder", "print size", "human"), or "default".
	Reason string `json:"reason"`
}

// routeRules are tried in order; the first match wins. Personal organisation comes first
// ("remind me to ask support about my order" is a reminder), then artwork, then support.
var routeRules = []struct {
	agentID, reason string
	re              *regexp.Regexp
}{
	{routePA, "reminder", regexp.MustCompile(`\b(remind me|reminders?|alarm)\b`)},
	{routePA, "task", regexp.MustCompile(`\b(to-?do|tasks?|shopping list|(add|put) .{1,40} (to|on) my .{0,20}list)\b`)},
	{routePA, "calendar", regexp.MustCompile(`\b(calendar|schedule|appointments?|meetings?|events? on)\b`)},
	{routePA, "note", regexp.MustCompile(`\b(take a note|make a note|add a note|notes?|jot down)\b`)},
	{routePA, "contact", regexp.MustCompile(`\b(contacts?|phone number of|email address of|address book)\b`)},
	{routeArtwork, "print size", regexp.MustCompile(`\b(dpi|ppi|print size|print (?:it )?at|resolution|megapixels?|\d+\s*[x×]\s*\d+\s*(?:px|pixels)?|pixels?|px|artwork|image|photo|picture|dtf|uv dtf)\b`)},
	{routeSupport, "human", regexp.MustCompile(`\b((talk|speak|chat) (to|with) (a |an |some |your )?(real |actual |live )?(human|person|agent|representative|someone)|human|representative|escalate)\b`)},
	{routeSupport, "order", regexp.MustCompile(`\b(orders?|refunds?|returns?|ticket|tkt-\d+|delivery|shipping|parcel|package|invoice|charged|warranty|complaint)\b`)},
}

// RouteByRules picks the agent for a message by the router's rules: reminders, tasks,
// calendar, notes and contacts go to pa; DPI, print sizes and images to artwork; orders,
// refunds, tickets and requests for a person to support; everything else to fam. It does not
// check which agents are registered.
func RouteByRules(message string) Route {
	m := strings.ToLower(message)
	for _, r := range routeRules {
		if r.re.MatchString(m) {
			return Route{AgentID: r.agentID, Reason: r.reason}
		}
	}
	return Route{AgentID: routeFAM, Reason: "default"}
}

// Route picks a registered agent for a message: the rules' choice when it is registered, else
// fam, else ErrAgentNotFound.
func (r *Registry) Route(message string) (Route, error) {
	route := RouteByRules(message)
	if _, ok := r.Get(route.AgentID); ok {
		return route, nil
	}
	if _, ok := r.Get(routeFAM); ok {
		return Route{AgentID: routeFAM, Reason: "default"}, nil
	}
	return Route{}, ErrAgentNotFound
}

// Handoff is an agent's wish to pass the conversation to another agent, carried on its
// Reply. The engine then lets that agent answer the same message with the same history, and
// the session continues with it.
type Handoff struct {
	// AgentID is the agent taking over.
	AgentID string `json:"agentId"`
	// Reason says why ("human", "reminder").
	Reason string `json:"reason"`
}

// SessionAgentUpdater moves a session to another agent; session.SQLStore implements it. The
// engine persists hand-offs through it when its Store has it.
type SessionAgentUpdater interface {
	UpdateSessionAgent(ctx context.Context, userID, sessionID, agentID string) error
}
