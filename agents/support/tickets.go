package support

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/session"
)

// escalate hands the conversation to a person: it opens a ticket (or points to the one this
// conversation already has) and returns the reply, which names the ticket and its SLA.
func (a *Agent) escalate(ctx context.Context, in agents.Input, reason string, f Frustration) (string, error) {
	userID := userOf(in)
	now := a.cfg.Clock.Now()
	// One open ticket per conversation: asking twice does not queue the customer twice.
	if in.SessionID != "" {
		existing, err := a.cfg.Tickets.ListTickets(ctx, userID, session.TicketFilter{SessionID: in.SessionID, Limit: 20})
		if err != nil {
			return "", fmt.Errorf("support: look for an open ticket: %w", err)
		}
		for _, t := range existing {
			if t.Status != session.TicketClosed {
				return fmt.Sprintf("Your ticket %s is already with our support team (priority: %s). %s", t.Ref(), t.Priority, dueSentence(t, now)), nil
			}
		}
	}
	said := customerMessages(in, 5)
	priority := Priority(strings.Join(said, "\n"))
	status := session.TicketOpen
	if reason == ReasonFrustration || priority == session.PriorityUrgent || vipWord.MatchString(strings.Join(said, "\n")) {
		status = session.TicketEscalated
	}
	var desc strings.Builder
	desc.WriteString("What the customer said, oldest first:\n")
	for _, m := range said {
		desc.WriteString("- ")
		desc.WriteString(m)
		desc.WriteString("\n")
	}
	fmt.Fprintf(&desc, "Opened by the support agent: %s.", reasonText(reason, f))
	t, err := a.cfg.Tickets.CreateTicket(ctx, session.Ticket{
		UserID: userID, AgentID: ID, SessionID: in.SessionID,
		Subject: subjectOf(in), Description: desc.String(),
		Status: status, Priority: priority, Reason: reason,
		FirstResponseDue: now.Add(FirstResponseSLA(priority)),
		ResolutionDue:    now.Add(ResolutionSLA(priority)),
		CreatedAt:        now,
		Metadata:         map[string]any{"frustration": f.Level, "signals": f.Signals},
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// The customer still deserves an honest answer; the failure is logged for the team.
		a.cfg.Logger.ErrorContext(ctx, "support: ticket not created", "user", userID, "session", in.SessionID, "err", err)
		return "I'm sorry, I couldn't open a ticket just now. Please try again in a moment.", nil
	}
	var lead string
	switch {
	case reason == ReasonFrustration:
		lead = "I'm sorry this has been so frustrating. I've opened ticket %s and handed it to a person on our team (priority: %s)."
	case reason == ReasonLowConfidence && yesReply.MatchString(in.Message):
		lead = "Done: I've opened ticket %s for our support team (priority: %s)."
	case reason == ReasonLowConfidence:
		lead = missReply + " I've opened ticket %s so a person on our team can help (priority: %s)."
	default:
		lead = "Of course. I've opened ticket %s and passed it to our support team (priority: %s)."
	}
	return fmt.Sprintf(lead, t.Ref(), t.Priority) + " " + dueSentence(t, now), nil
}

func reasonText(reason string, f Frustration) string {
	switch reason {
	case ReasonFrustration:
		return fmt.Sprintf("the customer is upset (frustration %s: %s)", f.Level, strings.Join(f.Signals, ", "))
	case ReasonLowConfidence:
		return "the help articles do not answer the question"
	}
	return "the customer asked for a person"
}

// dueSentence tells the customer when to expect a person.
func dueSentence(t session.Ticket, now time.Time) string {
	left := t.FirstResponseDue.Sub(now)
	if t.FirstResponseDue.IsZero() || left <= 0 {
		return "A person will get back to you as soon as possible."
	}
	return "A person will get back to you within " + spokenDuration(left.Round(time.Minute)) + "."
}

func userOf(in agents.Input) string {
	if in.UserID == "" {
		return session.AnonymousUserID
	}
	return in.UserID
}

// customerMessages returns up to n of the customer's messages, oldest first, ending with the
// current one.
func customerMessages(in agents.Input, n int) []string {
	out := []string{in.Message}
	for i := len(in.History) - 1; i >= 0 && len(out) < n; i-- {
		if in.History[i].Role == session.RoleUser {
			out = append(out, in.History[i].Content)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// subjectOf picks what the ticket is about: the latest message that says more than "I want a
// person".
func subjectOf(in agents.Input) string {
	said := customerMessages(in, 5)
	for i := len(said) - 1; i >= 0; i-- {
		s := said[i]
		if WantsHuman(s) {
			s = stripHumanRequest(s)
		}
		if yesReply.MatchString(s) && len(rag.Terms(s)) < 3 {
			continue
		}
		if len(rag.Terms(s)) >= 2 {
			return truncate(strings.Join(strings.Fields(said[i]), " "), 100)
		}
	}
	return "The customer asked to talk to a person"
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

var (
	// ticketRef finds "TKT-1001", "ticket 1001" or "ticket number #1001"; a bare "#1001" only
	// counts in a message that mentions a ticket, so "order #12345" is left alone.
	ticketRef   = regexp.MustCompile(`(?i)\b(?:tkt[-_ ]?|(?:ticket|case)\s*(?:number\s*|no\.?\s*)?#?\s*)(\d{1,12})\b`)
	hashRef     = regexp.MustCompile(`#(\d{1,12})\b`)
	ticketWord  = regexp.MustCompile(`(?i)\b(ticket|case)\b`)
	statusQuery = regexp.MustCompile(`(?i)\b(status|update|progress|news)\b.{0,40}\b(ticket|case)\b|\b(ticket|case)\b.{0,40}\b(status|update|progress|news)\b|\b(my|open) tickets\b|\bwhat(?:'s| is) happening with my (ticket|case)\b`)
)

// ticketStatus answers "what's the status of TKT-1001?" from the customer's own tickets. ok is
// false when the message is not such a question.
func (a *Agent) ticketStatus(ctx context.Context, in agents.Input) (text string, ok bool, err error) {
	m := ticketRef.FindStringSubmatch(in.Message)
	if m == nil && ticketWord.MatchString(in.Message) {
		m = hashRef.FindStringSubmatch(in.Message)
	}
	if m == nil && !statusQuery.MatchString(in.Message) {
		return "", false, nil
	}
	userID := userOf(in)
	now := a.cfg.Clock.Now()
	if m != nil {
		n, valid := session.ParseTicketRef(m[1])
		if !valid {
			return "", false, nil
		}
		t, err := a.cfg.Tickets.GetTicketByNumber(ctx, userID, n)
		// Anonymous callers share one user id: they may only see tickets of their own session.
		if err == nil && userID == session.AnonymousUserID && t.SessionID != in.SessionID {
			err = session.ErrNotFound
		}
		if errors.Is(err, session.ErrNotFound) {
			return fmt.Sprintf("I can't find ticket TKT-%d on your account. Please check the number, or I can open a new ticket if you say \"talk to a person\".", n), true, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("support: ticket status: %w", err)
		}
		return describeTicket(t, now), true, nil
	}
	filter := session.TicketFilter{Limit: 5}
	if userID == session.AnonymousUserID {
		filter.SessionID = in.SessionID
	}
	if userID == session.AnonymousUserID && in.SessionID == "" {
		return "I can't find any tickets from you yet. " + offerReply, true, nil
	}
	list, err := a.cfg.Tickets.ListTickets(ctx, userID, filter)
	if err != nil {
		return "", false, fmt.Errorf("support: ticket status: %w", err)
	}
	if len(list) == 0 {
		return "I can't find any tickets from you yet. " + offerReply, true, nil
	}
	return describeTicket(list[0], now), true, nil
}

func describeTicket(t session.Ticket, now time.Time) string {
	s := fmt.Sprintf("Ticket %s (%q) is %s, priority %s.", t.Ref(), t.Subject, t.Status, t.Priority)
	if t.Status == session.TicketClosed {
		return s + " It has been closed; say \"talk to a person\" if you need more help."
	}
	return s + " " + dueSentence(t, now)
}
