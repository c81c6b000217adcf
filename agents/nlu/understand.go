package nlu

import (
	"regexp"
	"strings"
)

// Repetition detection, as the earlier system had it: a message repeats an earlier question
// when the Jaccard similarity of their words is above RepeatThreshold, against the last
// RepeatWindow questions.
const (
	RepeatThreshold = 0.8
	RepeatWindow    = 5
	// repeatMinWords keeps "yes" after "yes" from counting as a repeated question.
	repeatMinWords = 3
)

// Repeat is an earlier question a message asks again.
type Repeat struct {
	// Index is the earlier question's position in the messages given to Understand.
	Index int
	// Question is the earlier question as it was asked.
	Question   string
	Similarity float64
}

// Understanding is a message read in its conversation.
type Understanding struct {
	// Intent is the message's intent in context: a repeated question reads as repeat, a
	// moderately or more frustrated message as frustration, a short message that leans on the
	// previous turn ("and that one?") as a follow-up.
	Intent Intent
	// Rules is the intent of the message on its own (DetectIntent).
	Rules     Intent
	Sentiment Sentiment
	// Repeat is set when the message asks one of the earlier questions again.
	Repeat *Repeat
}

// notQuestions are intents whose messages are never "the same question again": courtesies,
// feedback, and the time (which changes).
var notQuestions = map[string]bool{IntentGreeting: true, IntentFarewell: true, IntentGratitude: true, IntentFeedback: true, IntentTime: true}

var leansOnContext = regexp.MustCompile(`\b(it|this|that|they|them|those|these|there|one)\b`)

// Understand reads message in its conversation; earlier are the user's previous messages,
// oldest first.
func Understand(message string, earlier []string) Understanding {
	rules := DetectIntent(message)
	u := Understanding{Intent: rules, Rules: rules, Sentiment: AnalyzeSentiment(message)}
	if !notQuestions[rules.Name] {
		if rep, ok := FindRepeat(message, earlier); ok {
			u.Repeat = &rep
			u.Intent = Intent{IntentRepeat, 0.9}
		}
	}
	if u.Repeat == nil && len(earlier) > 0 && rules.Name == IntentInformation {
		norm := Normalize(message)
		if len(strings.Fields(norm)) <= 6 && leansOnContext.MatchString(norm) {
			u.Intent = Intent{IntentFollowUp, 0.7}
		}
	}
	if FrustrationRank(u.Sentiment.Frustration) >= FrustrationRank(FrustrationModerate) {
		u.Intent = Intent{IntentFrustration, 0.85}
	}
	return u
}

// FindRepeat finds the earlier question, among the last RepeatWindow, that message asks again;
// the most similar wins, the latest on a tie. Greetings, thanks and farewells are not questions.
func FindRepeat(message string, earlier []string) (Repeat, bool) {
	words := contentWords(message)
	if len(words) < repeatMinWords {
		return Repeat{}, false
	}
	best, seen := Repeat{Index: -1}, 0
	for i := len(earlier) - 1; i >= 0 && seen < RepeatWindow; i-- {
		if courtesy(earlier[i]) {
			continue
		}
		seen++
		sim := jaccard(words, contentWords(earlier[i]))
		// The full classification is costly: only for a message that is a candidate.
		if sim > RepeatThreshold && sim > best.Similarity && !notQuestions[DetectIntent(earlier[i]).Name] {
			best = Repeat{Index: i, Question: earlier[i], Similarity: sim}
		}
	}
	return best, best.Index >= 0
}

// courtesy reports a greeting, thanks or goodbye, which do not count as questions, with the
// three cheap rules that come first in DetectIntent.
func courtesy(text string) bool {
	norm := Normalize(text)
	if len(strings.Fields(norm)) > 6 {
		return false
	}
	for _, r := range intentRules[:3] {
		if r.re.MatchString(norm) {
			return true
		}
	}
	return false
}

// Similarity is the Jaccard similarity of two messages' words, contractions expanded and
// filler words ("please", "again") left out.
func Similarity(a, b string) float64 { return jaccard(contentWords(a), contentWords(b)) }

var contractions = strings.NewReplacer(
	"what's", "what is", "where's", "where is", "who's", "who is", "how's", "how is", "that's", "that is",
	"it's", "it is", "i'm", "i am", "you're", "you are", "don't", "do not", "doesn't", "does not",
	"can't", "can not", "cannot", "can not", "won't", "will not", "isn't", "is not", "aren't", "are not",
	"didn't", "did not", "i've", "i have", "i'd", "i would", "i'll", "i will", "let's", "let us",
)

var fillers = wordSet("please again so just um uh er hey ok okay well now still then actually really")

func contentWords(text string) map[string]bool {
	norm := contractions.Replace(strings.ReplaceAll(Normalize(text), "?", " "))
	out := map[string]bool{}
	for _, w := range strings.Fields(norm) {
		if !fillers[w] {
			out[w] = true
		}
	}
	return out
}

func jaccard(a, b map[string]bool) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 0
	}
	inter := 0
	for w := range a {
		if b[w] {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}
