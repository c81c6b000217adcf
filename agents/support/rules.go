package support

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

var (
	urgentWords = regexp.MustCompile(`(?i)\b(urgent|urgently|asap|a\.s\.a\.p\.?|critical|critically)\b`)
	highWords   = regexp.MustCompile(`(?i)\b(vip|important|problem|problems)\b`)
	lowWords    = regexp.MustCompile(`(?i)\b(question|questions)\b`)
	vipWord     = regexp.MustCompile(`(?i)\bvip\b`)
)

// Priority ranks a ticket from what the customer wrote: "urgent", "asap" or "critical" make
// it urgent; "VIP", "important" or "problem" high; "question" low; anything else medium. The
// first rule that matches wins.
func Priority(text string) string {
	switch {
	case urgentWords.MatchString(text):
		return session.PriorityUrgent
	case highWords.MatchString(text):
		return session.PriorityHigh
	case lowWords.MatchString(text):
		return session.PriorityLow
	}
	return session.PriorityMedium
}

// FirstResponseSLA is how soon a person must first answer a ticket of a priority: urgent 15
// minutes, high 1 hour, medium 4 hours, low 24 hours.
func FirstResponseSLA(priority string) time.Duration {
	switch priority {
	case session.PriorityUrgent:
		return 15 * time.Minute
	case session.PriorityHigh:
		return time.Hour
	case session.PriorityLow:
		return 24 * time.Hour
	}
	return 4 * time.Hour
}

// ResolutionSLA is how soon a ticket should be solved: urgent 4 hours, high 24 hours, medium
// 72 hours, low 7 days.
func ResolutionSLA(priority string) time.Duration {
	switch priority {
	case session.PriorityUrgent:
		return 4 * time.Hour
	case session.PriorityHigh:
		return 24 * time.Hour
	case session.PriorityLow:
		return 7 * 24 * time.Hour
	}
	return 72 * time.Hour
}

// spokenDuration says a duration the way a person would: "15 minutes", "1 hour", "24 hours".
func spokenDuration(d time.Duration) string {
	if d < time.Hour {
		m := int(d.Minutes())
		if m == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours())
	if h == 1 {
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", h)
}

// Frustration levels.
const (
	FrustrationNone     = "none"
	FrustrationMild     = "mild"
	FrustrationModerate = "moderate"
	FrustrationHigh     = "high"
	FrustrationCritical = "critical"
)

// Frustration is how upset a message reads.
type Frustration struct {
	Score int
	Level string
	// Signals names what was found, for the ticket and the logs.
	Signals []string
}

// escalateAt is the score from which a message alone hands the conversation to a person;
// two moderate messages in a row (3 or more each) do too.
const (
	escalateAt = 6
	moderateAt = 3
)

type signal struct {
	name   string
	weight int
	re     *regexp.Regexp
}

// frustrationSignals: each counts once per message. Anger and swearing are enough on their
// own; frustration, judgement and "still broken" add up.
var frustrationSignals = []signal{
	{"profanity", 6, regexp.MustCompile(`(?i)\b(f+u+c+k\w*|shit\w*|bullshit|crap|crappy|damn|wtf|bloody hell|piss(ed)? off)\b`)},
	{"anger", 6, regexp.MustCompile(`(?i)\b(furious|livid|outraged|fuming|angry|so mad|fed up|sick of|sick and tired|had enough|enough is enough|infuriat\w+)\b`)},
	{"giving up", 4, regexp.MustCompile(`(?i)\b(give up|giving up|waste of (my )?time|wasting my time|never again|going elsewhere|cancel my account|close my account|chargeback|lawyer|trading standards|scam|rip[- ]?off|bad review)\b`)},
	{"frustrated", 3, regexp.MustCompile(`(?i)\b(frustrat\w*|annoy\w*|irritat\w*|upset|disappointed|unhappy|exasperat\w*)\b`)},
	{"judgement", 3, regexp.MustCompile(`(?i)\b(terrible|awful|useless|ridiculous|unacceptable|pathetic|worst|horrible|incompetent|a joke|disgrace\w*|appalling|hopeless|rubbish)\b`)},
	{"repeated", 3, regexp.MustCompile(`(?i)\b(how many (more )?times|for the (second|third|fourth|fifth|\d+(st|nd|rd|th)) time|(three|four|five|several|many|\d+) times( now)?|again and again|keep (asking|telling|saying))\b`)},
	{"still broken", 2, regexp.MustCompile(`(?i)\b(still (not|isn't|doesn't|hasn't|haven't|won't|can't|broken|waiting|no)|not working|doesn't work|don't work|won't work)\b`)},
	{"exasperation", 2, regexp.MustCompile(`(?i)(\b(ugh+|argh+|grr+|come on|seriously)\b|\?!|!!)`)},
}

var capsWord = regexp.MustCompile(`\b[A-Z]{3,}\b`)

// commonAcronyms are capitals that are not shouting.
var commonAcronyms = map[string]bool{"VIP": true, "ASAP": true, "PDF": true, "USA": true, "FAQ": true, "API": true, "URL": true, "SMS": true, "UPS": true, "DHL": true, "TKT": true, "PIN": true, "CEO": true}

// MeasureFrustration scores a message: swearing or anger 6 each, giving up 4, frustration,
// judgement ("useless") or being asked again and again 3, "still not working" and
// exasperation ("ugh", "!!") 2, and shouting (two or more words in capitals) 2. The sum maps
// to none (0), mild (1-2), moderate (3-5), high (6-8) or critical (9+).
func MeasureFrustration(text string) Frustration {
	var f Frustration
	for _, s := range frustrationSignals {
		if s.re.MatchString(text) {
			f.Score += s.weight
			f.Signals = append(f.Signals, s.name)
		}
	}
	shouted := 0
	for _, w := range capsWord.FindAllString(text, -1) {
		if !commonAcronyms[w] {
			shouted++
		}
	}
	if shouted >= 2 {
		f.Score += 2
		f.Signals = append(f.Signals, "shouting")
	}
	switch {
	case f.Score == 0:
		f.Level = FrustrationNone
	case f.Score < moderateAt:
		f.Level = FrustrationMild
	case f.Score < escalateAt:
		f.Level = FrustrationModerate
	case f.Score < 9:
		f.Level = FrustrationHigh
	default:
		f.Level = FrustrationCritical
	}
	return f
}

var (
	// humanRequest matches asking for a person: "speak to a human", "talk to someone real",
	// "agent please", "get me a manager", "open a ticket".
	humanRequest = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(speak|talk|chat|connect me|put me through|transfer me|pass me|get me through)\b.{0,25}\b(human|humans|person|people|agent|representative|rep|someone|somebody|staff|operator|manager|supervisor|team|team member|real one)\b`),
		regexp.MustCompile(`(?i)\b(want|need|like|have|get me|give me|is there)\b.{0,15}\b(a human|a real person|a person|an agent|a live agent|a representative|an operator|a manager|a supervisor|someone real|a real human|human help)\b`),
		regexp.MustCompile(`(?i)^\W*(a )?(human|agent|person|representative|operator|real person|live agent)\W*(please|now|pls|plz)?\W*$`),
		regexp.MustCompile(`(?i)\b(human|agent|person|representative|operator) (please|pls|plz|now)\b`),
		regexp.MustCompile(`(?i)\b(escalate( this| it| my \w+)?|(open|raise|create|log|file|start) (a |an )?(support )?(ticket|case|complaint))\b`),
	}
	humanRefusal = regexp.MustCompile(`(?i)\b(don'?t|do not|no need to|never|without)\b.{0,20}\b(speak|talk|human|person|agent|ticket)\b`)
)

// WantsHuman reports whether the customer asks for a person (or a ticket).
func WantsHuman(text string) bool {
	if humanRefusal.MatchString(text) {
		return false
	}
	for _, re := range humanRequest {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}

// stripHumanRequest removes the request for a person, to see whether the message also says
// what it is about ("talk to someone about my refund" is about a refund).
func stripHumanRequest(text string) string {
	for _, re := range humanRequest {
		text = re.ReplaceAllString(text, " ")
	}
	return strings.TrimSpace(text)
}

var (
	yesReply = regexp.MustCompile(`(?i)^\W*(yes|yeah|yep|yup|sure|ok|okay|please|please do|do it|go ahead|yes please|that would be (great|good|nice)|sounds good|open (a |the |one )?ticket)\b`)
	noReply  = regexp.MustCompile(`(?i)^\W*(no|nope|nah|no thanks|no thank you|not now|never ?mind|it'?s fine|that'?s ok(ay)?)\W*$`)
)
