// Package nlu reads what a message is about without a model: intent and sentiment by rules.
// FAM and the offline engine share it, so both classify a message the same way.
package nlu

import (
	"regexp"
	"strings"
)

// Intents.
const (
	IntentGreeting    = "greeting"
	IntentFarewell    = "farewell"
	IntentGratitude   = "gratitude"
	IntentComplaint   = "complaint"
	IntentCalculation = "calculation"
	IntentHowTo       = "howto"
	IntentTime        = "time"
	IntentSmallTalk   = "smalltalk"
	IntentInformation = "information"
	IntentUnknown     = "unknown"
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
}

var intentRules = []intentRule{
	{IntentGreeting, 0.95, regexp.MustCompile(`^(hello|hi|hey|hiya|howdy|greetings|good (morning|afternoon|evening)|g'?day|yo)( there| everyone| all)?\b`), true},
	{IntentGratitude, 0.95, regexp.MustCompile(`\b(thanks|thank you|thx|cheers|much appreciated|appreciate it)\b`), true},
	{IntentFarewell, 0.95, regexp.MustCompile(`^(bye|goodbye|good bye|see you|see ya|farewell|good night|take care|that'?s all|talk (to you )?later)\b`), true},
	{IntentSmallTalk, 0.85, regexp.MustCompile(`^(how are you|how'?s it going|how are things|what'?s up|who are you|what are you|what can you do|are you (a )?(bot|human|real))\b`), false},
	{IntentComplaint, 0.85, regexp.MustCompile(`\b(refund|wrong|broken|missing|late|complain|where is my order|not working|doesn'?t work|useless)\b`), false},
	{IntentTime, 0.9, regexp.MustCompile(`\b(what time is it|what('?s| is) the time|current time|what day is (it|today)|today'?s date|what'?s the date|what is the date)\b`), false},
	{IntentCalculation, 0.9, regexp.MustCompile(`(\d\s*[-+*/x×÷^%]\s*[\d(])|\d\s*% of\b|\b(calculate|compute|plus|minus|times|multiplied by|divided by|percent of)\b`), false},
	{IntentHowTo, 0.8, regexp.MustCompile(`^(how (do|can|should|would) (i|we|you)|how to|steps to|guide me|help me (to )?)\b`), false},
	{IntentInformation, 0.75, regexp.MustCompile(`\?$|^(what|who|where|when|why|which|how|is|are|does|do|can|could|tell me|explain|describe)\b`), false},
}

var nonWord = regexp.MustCompile(`[^a-z0-9'\s?]+`)

// Normalize lowercases and strips punctuation (keeping apostrophes and question marks).
func Normalize(text string) string {
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.NewReplacer("’", "'", "‘", "'").Replace(t)
	t = nonWord.ReplaceAllString(t, " ")
	return strings.Join(strings.Fields(t), " ")
}

// DetectIntent classifies a message by rules, first match wins.
func DetectIntent(text string) Intent {
	norm := Normalize(text)
	if norm == "" || strings.Trim(norm, "? ") == "" {
		return Intent{IntentUnknown, 0.3}
	}
	words := len(strings.Fields(norm))
	for _, r := range intentRules {
		target := norm
		if r.name == IntentCalculation {
			target = strings.ToLower(text) // operators are punctuation
		}
		loc := r.re.FindStringIndex(target)
		if loc == nil {
			continue
		}
		if r.whole && words > 6 {
			// A greeting or thanks wrapped around a longer question is about the question.
			continue
		}
		return Intent{r.name, r.confidence}
	}
	if words <= 3 && gibberish(norm) {
		return Intent{IntentUnknown, 0.3}
	}
	return Intent{IntentInformation, 0.6}
}

// gibberish spots keyboard mashing: words with almost no vowels, or almost nothing else.
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

// Sentiment is the tone of a message, Score in [-1, 1].
type Sentiment struct {
	Label string  `json:"label"` // positive, negative or neutral
	Score float64 `json:"score"`
}

var (
	positiveWords = wordSet("good great awesome amazing excellent love loved lovely thanks thank perfect nice happy glad wonderful fantastic helpful brilliant cool")
	negativeWords = wordSet("bad terrible awful hate hated useless broken wrong angry annoyed annoying frustrated frustrating disappointed horrible worst stupid slow fail failed failing ugh sad")
	negators      = wordSet("not no never don't doesn't isn't wasn't can't cannot won't")
)

func wordSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// AnalyzeSentiment scores a message with a small lexicon; a negator flips the next word.
func AnalyzeSentiment(text string) Sentiment {
	words := strings.Fields(strings.ReplaceAll(Normalize(text), "?", ""))
	score, hits := 0.0, 0
	for i, w := range words {
		v := 0.0
		switch {
		case positiveWords[w]:
			v = 1
		case negativeWords[w]:
			v = -1
		default:
			continue
		}
		if i > 0 && negators[words[i-1]] {
			v = -v
		}
		score += v
		hits++
	}
	if hits == 0 {
		return Sentiment{Label: "neutral", Score: 0}
	}
	score /= float64(hits)
	switch {
	case score > 0.2:
		return Sentiment{Label: "positive", Score: score}
	case score < -0.2:
		return Sentiment{Label: "negative", Score: score}
	}
	return Sentiment{Label: "neutral", Score: score}
}
