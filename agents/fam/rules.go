package fam

import (
	"regexp"
	"slices"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam/memory"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

// Replies FAM writes itself.
const (
	humanOrRestartOffer = `Would you like to talk to a person, or shall we start over? Just say "person" or "start over".`
	restartReply        = "Okay, let's start fresh. I've set aside everything from before, including anything you told me about yourself. What would you like help with?"
	defaultHandoff      = "I can't transfer this chat to a person myself, but the app's help or contact options will reach someone on the team, and this conversation is saved, so you won't have to explain it all again. In the meantime I'm happy to keep trying, or we can start over."
	rememberTail        = "I'll remember that for the rest of this conversation."
)

var (
	// offersHelp spots a reply that already offers a person or a restart.
	offersHelp = regexp.MustCompile(`\b(person|human|someone on the team|start over|start again|restart|fresh start|start fresh)\b`)
	restartRe  = regexp.MustCompile(`^(?:(?:ok|okay|so|please|can we|could we|let's|let us|i want to|i'd like to|i would like to|we should|just|actually|fine) )*(?:start (?:over|again|afresh|fresh|from scratch)|restart(?: (?:the|this|our) (?:conversation|chat))?|begin again|reset (?:the|this|our) (?:conversation|chat)|(?:a )?new (?:conversation|chat)|clear (?:the|this|our) (?:conversation|chat|history))(?: please)?$`)
	humanRe    = regexp.MustCompile(`\b((?:talk|speak|chat)(?:ing)? (?:to|with) (?:a |an |some |your )?(?:real |actual |live )?(?:human|person|people|someone|somebody|agent|representative|rep|operator|staff|manager|team)|(?:connect|transfer|put) me (?:to|with|through to) (?:a |an |your )?(?:human|person|agent|representative|someone|somebody|team|support|staff|manager)|(?:i want|i need|get me|give me) (?:a |an )?(?:human|real person|person|agent|representative|manager)|escalate (?:this|it|my)|^(?:a )?(?:human|real person|live agent|person)(?: please)?$)\b`)
	acceptRe   = regexp.MustCompile(`^(?:yes|yeah|yep|yes please|sure|ok|okay|please|person|a person|the person|human|a human|talk to a person|the first|first)\b`)
	requestRe  = regexp.MustCompile(`^(?:can|could|would|will|should|how|what|when|where|why|who|which|is|are|do|does|did|please|i want|i need|i'd like|give me|tell me|help|show me|explain)\b`)
)

// handoff decides whether another agent should take this message: a request for a person
// goes to Handoffs.Human, a request the router's rules give to an agent in Handoffs.Agents
// goes there. Statements about the user ("I have a meeting on Friday" is not asked of
// anyone) and restarts stay with FAM.
func (a *Agent) handoff(t *turn) (*agents.Handoff, bool) {
	if isRestart(t.message) {
		return nil, false
	}
	if a.cfg.Handoffs.Human != "" && wantsHuman(t.message, t.conv.lastAssistant) {
		return &agents.Handoff{AgentID: a.cfg.Handoffs.Human, Reason: "human"}, true
	}
	if len(a.cfg.Handoffs.Agents) == 0 || (len(t.stated) > 0 && !looksLikeRequest(t.message)) {
		return nil, false
	}
	route := agents.RouteByRules(t.message)
	if route.AgentID == ID || !slices.Contains(a.cfg.Handoffs.Agents, route.AgentID) {
		return nil, false
	}
	return &agents.Handoff{AgentID: route.AgentID, Reason: route.Reason}, true
}

// isRestart reports a request to start the conversation over.
func isRestart(message string) bool {
	if len(message) > 80 {
		return false // a request to start over is short
	}
	norm := strings.TrimSpace(strings.ReplaceAll(nlu.Normalize(message), "?", ""))
	return restartRe.MatchString(norm)
}

// wantsHuman reports a request for a person, or a yes to FAM's offer of one.
func wantsHuman(message, lastReply string) bool {
	norm := strings.TrimSpace(strings.ReplaceAll(nlu.Normalize(message), "?", ""))
	if humanRe.MatchString(norm) {
		return true
	}
	return strings.Contains(lastReply, humanOrRestartOffer) && acceptRe.MatchString(norm)
}

// looksLikeRequest tells a question or a request from a statement.
func looksLikeRequest(message string) bool {
	return strings.Contains(message, "?") || requestRe.MatchString(nlu.Normalize(message))
}

// alwaysRules answers what FAM answers by rules with or without a model: restarts, requests
// for a person, and requests a constraint forbids.
func (a *Agent) alwaysRules(t *turn) (string, bool) {
	switch {
	case isRestart(t.message):
		return restartReply, true
	case wantsHuman(t.message, t.conv.lastAssistant):
		return a.cfg.HumanHandoff, true
	}
	if len(t.stated) > 0 && !looksLikeRequest(t.message) {
		// "I'm a lawyer" tells us something; it asks for nothing.
		return "", false
	}
	kind, ok := a.constraints.CheckRequest(t.message)
	if !ok {
		return "", false
	}
	redirect := a.constraints.Redirect(kind, t.conv.assistantTurns)
	if t.frustration >= rankHigh {
		// The offer replaces the redirect's closing question: one question is enough.
		return "I'm sorry this has been so frustrating. " + withoutClosingQuestion(redirect) + " " + humanOrRestartOffer, true
	}
	return redirect, true
}

// offlineRules answers what FAM answers by rules when there is no model: high frustration,
// memory, statements of fact, repeated questions and feedback.
func (a *Agent) offlineRules(t *turn) (string, bool) {
	if t.frustration >= rankHigh {
		return frustrationReply(t), true
	}
	if t.isQuestion {
		if answer, ok := t.facts.Answer(t.question, t.u.Repeat != nil); ok {
			return answer, true
		}
	}
	if len(t.stated) > 0 && !looksLikeRequest(t.message) && !t.figuresAreComputed() {
		return acknowledge(t.stated), true
	}
	if t.u.Repeat != nil && t.previous != "" {
		return repeatReply(t), true
	}
	if t.u.Intent.Name == nlu.IntentFeedback {
		if t.u.Sentiment.Label == nlu.SentimentNegative {
			return "Thanks for telling me, and I'm sorry it fell short. Your feedback is saved with this conversation. Is there anything I can help you with right now?", true
		}
		return "Thank you for the feedback! It's saved with this conversation. Is there anything I can help you with right now?", true
	}
	return "", false
}

// empathy opens an offline answer to an unhappy message.
func (a *Agent) empathy(t *turn) string {
	switch {
	case t.frustration >= rankModerate:
		return "I'm sorry this has been frustrating. "
	case t.u.Rules.Name == nlu.IntentComplaint:
		return "I'm sorry to hear that. "
	}
	return ""
}

func frustrationReply(t *turn) string {
	var b strings.Builder
	if t.frustration > rankHigh {
		b.WriteString("I'm really sorry. This clearly hasn't gone well, and I don't want to waste any more of your time.")
	} else {
		b.WriteString("I'm sorry this has been so frustrating.")
	}
	if t.u.Repeat != nil {
		b.WriteString(" I know you've had to ask more than once.")
	}
	b.WriteString(" " + humanOrRestartOffer)
	return b.String()
}

// acknowledge confirms facts the user just stated.
func acknowledge(stated []memory.Fact) string {
	var b strings.Builder
	var clauses []string
	for _, f := range stated {
		if f.Key == memory.KeyName {
			b.WriteString("Nice to meet you, " + f.Value + "! ")
			continue
		}
		clauses = append(clauses, memory.Clause(f))
	}
	switch {
	case len(clauses) > 0 && b.Len() > 0:
		b.WriteString("I've noted that " + memory.JoinList(clauses) + ". ")
	case len(clauses) > 0:
		b.WriteString("Got it: " + memory.JoinList(clauses) + ". ")
	}
	b.WriteString(rememberTail)
	return b.String()
}

// repeatReply answers a question asked again: never the same words as before.
func repeatReply(t *turn) string {
	opener := "You asked me that a moment ago, so let me put it another way."
	if !looksLikeRequest(t.message) {
		opener = "You mentioned that a moment ago, so let me put it another way."
	}
	closer := "If that doesn't answer it, tell me which part is unclear, or ask to talk to a person."
	if t.asked >= 2 {
		opener = "We've come back to this a few times, so let me try a different angle."
		closer = `If it still doesn't help, you can ask for a person, or say "start over" and we'll take it from the top.`
	}
	return opener + " In short: " + firstSentence(t.previous) + " " + closer
}

// withoutClosingQuestion drops a closing question ("Anything else?") from a reply of more
// than one sentence.
func withoutClosingQuestion(text string) string {
	parts := sentences(text)
	if len(parts) > 1 && strings.HasSuffix(strings.TrimSpace(parts[len(parts)-1]), "?") {
		return strings.TrimSpace(strings.Join(parts[:len(parts)-1], ""))
	}
	return text
}

// firstSentence is the first sentence of text, ending in punctuation.
func firstSentence(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if loc := sentenceEnd.FindStringIndex(text); loc != nil {
		text = text[:loc[0]+1]
	}
	if !strings.HasSuffix(text, ".") && !strings.HasSuffix(text, "!") && !strings.HasSuffix(text, "?") {
		text += "."
	}
	return text
}

var sentenceEnd = regexp.MustCompile(`[.!?](\s|$)`)
