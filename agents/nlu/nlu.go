// Package nlu reads what a message is about without a model: intent, sentiment, frustration and
// repetition, by rules. FAM and the offline engine share it, so both classify a message the same
// way. Everything here is a pure function of its arguments: safe for concurrent use, and
// agents stay stateless by passing the conversation in.
package nlu

import (
	"regexp"
	"strings"
)

// Intents. The names are part of the public API (they appear in chat replies and select cache
// lifetimes): keep them stable.
const (
	IntentGreeting        = "greeting"
	IntentFarewell        = "farewell"
	IntentGratitude       = "gratitude"
	IntentComplaint       = "complaint"
	IntentFeedback        = "feedback"
	IntentCalculation     = "calculation"
	IntentFollowUp        = "followup"
	IntentHowTo           = "howto"
	IntentFrustration     = "frustration"
	IntentTroubleshooting = "troubleshooting"
	IntentRepeat          = "repeat"
	IntentTime            = "time"
	IntentSmallTalk       = "smalltalk"
	IntentInformation     = "information"
	IntentUnknown         = "unknown"
)

// Intents lists every intent name, for classifiers that choose among them.
func Intents() []string {
	return []string{
		IntentGreeting, IntentFarewell, IntentGratitude, IntentComplaint, IntentFeedback,
		IntentCalculation, IntentFollowUp, IntentHowTo, IntentFrustration, IntentTroubleshooting,
		IntentRepeat, IntentTime, IntentSmallTalk, IntentInformation, IntentUnknown,
	}
}

// Confidences of the fallbacks, below any rule's.
const (
	// FallbackConfidence is the confidence of a message no rule matched, read as information.
	FallbackConfidence = 0.6
	// UnknownConfidence is the confidence of a message that reads as noise.
	UnknownConfidence = 0.3
)

// Intent is a classification with the rules' confidence in it.
type Intent struct {
	Name       string  `json:"name"`
	Confidence float64 `json:"confidence"`
}

type intentRule struct {
	name       string
	confidence float64
	re         *regexp.Regexp
	// whole: the rule only fires when the pattern is most of the message, so "hi, how do I
	// reset my key" is a question, not a greeting.
	whole bool
	// raw: match the lowercased text rather than the normalized one (operators are punctuation).
	raw bool
}

// intentRules are tried in order; the first match wins. The order is the earlier system's
// (greeting, gratitude, farewell, complaint, feedback, calculation, follow-up, how-to,
// frustration, troubleshooting, repeat, information), with small talk and time added where
// they cannot shadow the others.
// The first three (greeting, gratitude, farewell) are the courtesies FindRepeat skips.
var intentRules = []intentRule{
	{name: IntentGreeting, confidence: 0.95, whole: true, re: regexp.MustCompile(`^(hello|hi|hey|hiya|howdy|greetings|good (morning|afternoon|evening)|g'?day|yo)( there| everyone| all)?\b`)},
	{name: IntentGratitude, confidence: 0.95, whole: true, re: regexp.MustCompile(`\b(thanks|thank you|thx|ty|cheers|much appreciated|appreciate it)\b`)},
	{name: IntentFarewell, confidence: 0.95, whole: true, re: regexp.MustCompile(`^(bye|goodbye|good bye|see you|see ya|farewell|good night|take care|that'?s all|talk (to you )?later)\b`)},
	{name: IntentSmallTalk, confidence: 0.85, re: regexp.MustCompile(`^(how are you|how'?s it going|how are things|what'?s up|who are you|what are you|what can you do|are you (a )?(bot|human|real))\b`)},
	{name: IntentComplaint, confidence: 0.85, re: regexp.MustCompile(`\b(refund|wrong|broken|missing|late|complain|complaint|where is my order|not working|doesn'?t work|useless|overcharged|charged twice|damaged|never arrived|hasn'?t arrived|unacceptable|poor service)\b`)},
	{name: IntentFeedback, confidence: 0.8, re: regexp.MustCompile(`\b(feedback|suggestion|i suggest|feature request|you should (add|make|improve|consider|have|let)|it would be (nice|great|better|good) if|would be (nice|great|better) to have|i (really )?(like|love|liked|loved|enjoy|enjoyed|dislike|hate) (the|this|your|how|that)|(great|nice|good|excellent|awesome) (job|work|app|service|assistant))\b`)},
	{name: IntentTime, confidence: 0.9, re: regexp.MustCompile(`\b(what time is it|what('?s| is) the time|current time|what day is (it|today)|today'?s date|what'?s the date|what is the date)\b`)},
	{name: IntentCalculation, confidence: 0.9, raw: true, re: regexp.MustCompile(`(\d\s*[-+*/x×÷^%]\s*[\d(])|\d\s*% of\b|\b(calculate|compute|plus|minus|times|multiplied by|divided by|percent of)\b`)},
	{name: IntentFollowUp, confidence: 0.7, re: regexp.MustCompile(`^(and|also|what about|how about|and what about|what else|tell me more|more about that|more on that|go on|continue|why is that|why not|what do you mean|what does that mean|can you elaborate|elaborate|explain that|such as|for example|like what)\b`)},
	{name: IntentHowTo, confidence: 0.8, re: regexp.MustCompile(`^(how (do|can|should|would) (i|we|you)|how to|steps to|guide me|help me (to )?)\b`)},
	{name: IntentFrustration, confidence: 0.85, re: regexp.MustCompile(`\b(i'?m (so |really |very |getting )?(frustrated|annoyed|irritated|fed up|sick of|tired of)|i am (so |really |very |getting )?(frustrated|annoyed|irritated|fed up)|this is (so |really )?(frustrating|annoying|ridiculous|infuriating|a joke|pointless|hopeless)|i give up|giving up|forget it|waste of (my )?time|drives? me (crazy|mad|nuts))\b`)},
	// A sigh alone is frustration; a sigh before a question is still the question.
	{name: IntentFrustration, confidence: 0.8, re: regexp.MustCompile(`^(u+gh+|a+rgh+|u+rgh+|grr+|sigh)( (u+gh+|a+rgh+|u+rgh+|grr+|sigh))*$`)},
	{name: IntentTroubleshooting, confidence: 0.75, re: regexp.MustCompile(`\b(error|errors|crash|crashes|crashed|crashing|bug|bugs|fails? to|failed to|won'?t (start|load|open|connect|work|run)|can'?t (connect|log ?in|sign ?in|load|open|start)|isn'?t (loading|working|responding|connecting)|keeps? (crashing|failing|freezing|disconnecting)|froze|freezes|freezing|timed out|timeout|times out|troubleshoot|debug|stopped working|not loading|not responding)\b`)},
	{name: IntentRepeat, confidence: 0.9, re: regexp.MustCompile(`\b(i (already|just) (asked|said|told you)|(as|like) i (said|asked)|you (didn'?t|did not|still haven'?t|haven'?t) answer|answer (my|the) question|same question|i asked you|asked (you )?(this|that) (before|already))\b`)},
	{name: IntentInformation, confidence: 0.75, re: regexp.MustCompile(`\?$|^(what|who|where|when|why|which|how|is|are|does|do|can|could|tell me|explain|describe)\b`)},
}

var (
	nonWord = regexp.MustCompile(`[^a-z0-9'\s?]+`)
	quotes  = strings.NewReplacer("’", "'", "‘", "'")
)

// Normalize lowercases and strips punctuation (keeping apostrophes and question marks).
func Normalize(text string) string {
	t := strings.ToLower(strings.TrimSpace(text))
	t = quotes.Replace(t)
	t = nonWord.ReplaceAllString(t, " ")
	return strings.Join(strings.Fields(t), " ")
}

// DetectIntent classifies one message by rules, first match wins. It knows nothing of the
// conversation; Understand adds what the conversation says (repeats, follow-ups, frustration).
func DetectIntent(text string) Intent {
	norm := Normalize(text)
	if norm == "" || strings.Trim(norm, "? ") == "" {
		return Intent{IntentUnknown, UnknownConfidence}
	}
	words := len(strings.Fields(norm))
	lower := strings.ToLower(text)
	for _, r := range intentRules {
		target := norm
		if r.raw {
			target = lower
		}
		if !r.re.MatchString(target) {
			continue
		}
		if r.whole && words > 6 {
			// A greeting or thanks wrapped around a longer question is about the question.
			continue
		}
		if r.name == IntentInformation && noise(norm, words) {
			break
		}
		return Intent{r.name, r.confidence}
	}
	if noise(norm, words) {
		return Intent{IntentUnknown, UnknownConfidence}
	}
	return Intent{IntentInformation, FallbackConfidence}
}

// noise spots keyboard mashing in short messages: words with almost no vowels or almost nothing
// else, or runs of four or more neighbouring keys ("asdf", "1234").
func noise(norm string, words int) bool {
	if words > 3 {
		return false
	}
	bare := strings.ReplaceAll(norm, "?", "")
	if gibberish(bare) {
		return true
	}
	for _, w := range strings.Fields(bare) {
		if keyboardRun(w) {
			return true
		}
	}
	return false
}

// gibberish spots words with almost no vowels, or almost nothing else.
func gibberish(norm string) bool {
	letters, vowels := 0, 0
	for _, r := range norm {
		if r >= 'a' && r <= 'z' {
			letters++
			if strings.ContainsRune("aeiouy", r) {
				vowels++
			}
		}
	}
	if letters < 4 {
		return false
	}
	ratio := float64(vowels) / float64(letters)
	return ratio < 0.15 || ratio > 0.85
}

var keyboardRows = []string{"qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890"}

// keyboardRun reports a word of four or more neighbouring keys of one row, either way.
func keyboardRun(w string) bool {
	if len(w) < 4 {
		return false
	}
	for _, row := range keyboardRows {
		if strings.Contains(row, w) || strings.Contains(reverse(row), w) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
