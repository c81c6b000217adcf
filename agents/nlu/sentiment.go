package nlu

import "strings"

// Sentiment labels.
const (
	SentimentPositive = "positive"
	SentimentNegative = "negative"
	SentimentNeutral  = "neutral"
)

// Sentiment is the tone of a message: a label with a score in [-1, 1], and how frustrated the
// user sounds (see ScoreFrustration). It is comparable with ==.
type Sentiment struct {
	Label string  `json:"label"` // positive, negative or neutral
	Score float64 `json:"score"`
	// Frustration is the frustration level: none, mild, moderate, high or critical.
	Frustration string `json:"frustration"`
	// FrustrationScore is the sum of the frustration signals' weights.
	FrustrationScore int `json:"frustrationScore"`
}

var (
	positiveWords = wordSet("good great awesome amazing excellent love loved lovely thanks thank perfect nice happy glad wonderful fantastic helpful brilliant cool superb")
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

// AnalyzeSentiment scores a message with a small lexicon (a negator flips the next word) and
// scores its frustration. A moderate or worse frustration makes the message negative whatever
// the lexicon says: "I give up" has no negative word, but it is not neutral.
func AnalyzeSentiment(text string) Sentiment {
	f := ScoreFrustration(text)
	s := lexiconSentiment(text)
	s.Frustration, s.FrustrationScore = f.Level, f.Score
	if floor, ok := frustrationFloor[f.Level]; ok && s.Score > floor {
		s.Label, s.Score = SentimentNegative, floor
	}
	return s
}

// frustrationFloor is the highest score a message of a frustration level may have.
var frustrationFloor = map[string]float64{
	FrustrationModerate: -0.4,
	FrustrationHigh:     -0.6,
	FrustrationCritical: -0.8,
}

func lexiconSentiment(text string) Sentiment {
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
		return Sentiment{Label: SentimentNeutral, Score: 0}
	}
	score /= float64(hits)
	switch {
	case score > 0.2:
		return Sentiment{Label: SentimentPositive, Score: score}
	case score < -0.2:
		return Sentiment{Label: SentimentNegative, Score: score}
	}
	return Sentiment{Label: SentimentNeutral, Score: score}
}
