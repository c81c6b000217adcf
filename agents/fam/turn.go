package fam

import (
	"regexp"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam/memory"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/agents/rag"
)

// Frustration ranks, as nlu.FrustrationRank gives them.
var (
	rankModerate = nlu.FrustrationRank(nlu.FrustrationModerate)
	rankHigh     = nlu.FrustrationRank(nlu.FrustrationHigh)
)

// turn is what FAM understood of one message in its conversation.
type turn struct {
	message string
	conv    conversation
	u       nlu.Understanding
	// frustration is the rank of u.Sentiment.Frustration.
	frustration int
	// facts are the user's facts, this message included; stated are this message's.
	facts  *memory.Facts
	stated []memory.Fact
	// question is set when the message asks about the user's own facts.
	question   memory.Question
	isQuestion bool
	// previous is FAM's answer to the question now asked again (empty when unknown).
	previous string
	// asked is how many times the question was asked before.
	asked int
	// sensitive: the conversation touches a constrained topic, so the validator holds whole
	// sentences.
	sensitive bool
	rulesOnly bool
	// knowledge are the knowledge base's passages answering the message, best first.
	knowledge []rag.Hit
}

// figuresAreComputed reports turns whose answer is new figures by nature: arithmetic and the
// time.
func (t *turn) figuresAreComputed() bool {
	for _, name := range []string{t.u.Intent.Name, t.u.Rules.Name} {
		if name == nlu.IntentCalculation || name == nlu.IntentTime {
			return true
		}
	}
	return false
}

// conversation is the part of the history FAM reads: what came after the user's last request
// to start over.
type conversation struct {
	history []llm.Message
	summary string
	// users are the user's messages in history, oldest first; userAt their indices.
	users  []string
	userAt []int
	// assistantTurns counts FAM's replies, to vary wordings from turn to turn.
	assistantTurns int
	// lastAssistant is FAM's latest reply.
	lastAssistant string
}

func readConversation(history []llm.Message, summary string) conversation {
	start := 0
	restarted := false
	for i, m := range history {
		if m.Role == "user" && isRestart(m.Content) {
			start, restarted = i+1, true
		}
	}
	if restarted {
		// The reply to the restart belongs to the old conversation too.
		if start < len(history) && history[start].Role == "assistant" {
			start++
		}
		summary = ""
	} else {
		summary = afterRestart(summary)
	}
	c := conversation{history: history[start:], summary: summary}
	for i, m := range c.history {
		switch m.Role {
		case "user":
			c.users = append(c.users, m.Content)
			c.userAt = append(c.userAt, i)
		case "assistant":
			c.assistantTurns++
			c.lastAssistant = m.Content
		}
	}
	return c
}

// afterRestart keeps the lines of an extractive summary after the user's last restart.
func afterRestart(summary string) string {
	lines := strings.Split(summary, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "User:"); ok && isRestart(rest) {
			return strings.TrimSpace(strings.Join(lines[i+1:], "\n"))
		}
	}
	return summary
}

// sensitiveTopic marks conversations about orders, money, law or health, where a model is
// most tempted to promise, quote or advise.
var sensitiveTopic = regexp.MustCompile(`(?i)\b(orders?|package|parcel|deliver\w*|shipping|ship|shipped|price\w*|costs?|pay|payment|paid|invoice|bill|billing|charged?|refund\w*|discount\w*|coupon|subscription|warranty|legal|law|lawyer|contract|sue|doctor|medicine|medication|medical|symptoms?|pain|ache|aches|headache|fever|cough|rash|injury|injured|health|sick|ill|allergic|allergy|dose|pregnan\w*)\b`)

// read understands a message in its conversation.
func (a *Agent) read(in agents.Input) *turn {
	t := &turn{message: in.Message, conv: readConversation(in.History, in.Summary)}
	t.u = nlu.Understand(in.Message, t.conv.users)
	t.frustration = nlu.FrustrationRank(t.u.Sentiment.Frustration)
	t.facts = memory.FromConversation(t.conv.summary, t.conv.users)
	t.stated = t.facts.Learn(in.Message)
	t.question, t.isQuestion = memory.ParseQuestion(in.Message)
	if t.u.Repeat != nil {
		// Quote the answer to the first time the question was asked: later answers were
		// already rewordings.
		for i, q := range t.conv.users {
			if nlu.Similarity(q, in.Message) <= nlu.RepeatThreshold {
				continue
			}
			t.asked++
			if at := t.conv.userAt[i] + 1; t.previous == "" && at < len(t.conv.history) && t.conv.history[at].Role == "assistant" {
				t.previous = t.conv.history[at].Content
			}
		}
	}
	t.sensitive = sensitiveTopic.MatchString(in.Message)
	for i := max(0, len(t.conv.users)-3); i < len(t.conv.users) && !t.sensitive; i++ {
		t.sensitive = sensitiveTopic.MatchString(t.conv.users[i])
	}
	return t
}
