package nlu

import "regexp"

// Frustration levels, from the sum of the signals' weights: 0 none, up to 2 mild, up to 5
// moderate, up to 8 high, above that critical.
const (
	FrustrationNone     = "none"
	FrustrationMild     = "mild"
	FrustrationModerate = "moderate"
	FrustrationHigh     = "high"
	FrustrationCritical = "critical"
)

// Frustration signals and their weights. Each signal counts once per message, however often it
// appears. The weights are the earlier system's (explicit 3, giving up 4, terrible/useless 3,
// ugh 2, "not working" 3, profanity 9), with two additions: insults at the assistant weigh 3,
// like "useless", and mild swearing ("damn", "crap", "bloody") weighs 5, so "damn, that's
// annoying" reads as high rather than as the critical a strong oath ("fucking useless") earns.
const (
	SignalExplicit   = "explicit"
	SignalGiveUp     = "give-up"
	SignalQuality    = "terrible"
	SignalInsult     = "insult"
	SignalUgh        = "ugh"
	SignalNotWorking = "not-working"
	SignalProfanity  = "profanity"
	SignalMildSwear  = "mild-profanity"
)

// SignalWeights are the weights of the signals.
var SignalWeights = map[string]int{
	SignalExplicit:   3,
	SignalGiveUp:     4,
	SignalQuality:    3,
	SignalInsult:     3,
	SignalUgh:        2,
	SignalNotWorking: 3,
	SignalProfanity:  9,
	SignalMildSwear:  5,
}

// Frustration is how frustrated a message sounds.
type Frustration struct {
	Score int
	Level string
	// Signals are the signals found, in the order of SignalWeights' documentation.
	Signals []string
	// Profanity lists the swear words found, as written.
	Profanity []string
}

type signalRule struct {
	signal string
	re     *regexp.Regexp
}

// signalRules match the normalized text (lowercase, apostrophes kept, punctuation dropped).
var signalRules = []signalRule{
	{SignalExplicit, regexp.MustCompile(`\b(frustrat\w*|annoy(ed|ing)|infuriat\w*|exasperat\w*|irritat(ed|ing)|fed up|sick (of|and tired)|tired of|ridiculous|absurd|unbelievable|(drives?|driving) me (crazy|mad|nuts|insane|up the wall)|for (god|heaven|heavens|pete|christ|goodness)'?s? sake|are you (kidding|serious|joking)|how many times|what'?s wrong with (you|this|it)|(i'?m|i am|im) (so |really |very |getting )?(angry|furious|mad|upset))\b`)},
	{SignalGiveUp, regexp.MustCompile(`\b(i give up|giving up|i quit|forget it|what'?s the point|no point|pointless|hopeless|waste of (my )?time|not worth it|i'?ll (go|look) elsewhere|lost cause)\b`)},
	{SignalQuality, regexp.MustCompile(`\b(terrible|useless|awful|horrible|horrendous|worst|rubbish|garbage|pathetic|dreadful|unhelpful|not helpful|no help|isn'?t helpful|(isn'?t|not|aren'?t) helping|(doesn'?t|don'?t|didn'?t) help)\b`)},
	{SignalInsult, regexp.MustCompile(`\b((you'?re|you are|ur|u r) (so |such |really |completely |totally |just )?(an? |the )?(stupid|dumb|idiot|moron|useless|incompetent|clueless|brainless|pathetic|joke|liar|worthless|idiotic)|(stupid|dumb|useless|worthless|idiotic|brainless) (bot|machine|ai|assistant|robot|computer|program|thing|app)|idiot|idiots|moron|morons|imbecile|shut up)\b`)},
	{SignalUgh, regexp.MustCompile(`\b(u+gh+|a+rgh+|grr+|sigh|u+rgh+|jeez|geez|smh)\b`)},
	{SignalNotWorking, regexp.MustCompile(`\b((not|never) (work|working|works)|(doesn'?t|don'?t|didn'?t) work|(isn'?t|is not|wasn'?t|aren'?t|still not) working|stopped working|nothing works|broken|won'?t (work|load|start|open|connect)|keeps? (failing|crashing|breaking)|still (broken|doesn'?t|isn'?t|won'?t|can'?t|failing))\b`)},
}

// ScoreFrustration scores how frustrated a message sounds. Swearing is found in every
// inflection and common disguise ("fucking", "f*ck", "fuuuck", "sh1t"), except as praise
// ("fucking brilliant").
func ScoreFrustration(text string) Frustration {
	norm := Normalize(text)
	var f Frustration
	add := func(signal string) {
		f.Signals = append(f.Signals, signal)
		f.Score += SignalWeights[signal]
	}
	for _, r := range signalRules {
		if r.re.MatchString(norm) {
			add(r.signal)
		}
	}
	strong, mild, words := findProfanity(text)
	f.Profanity = words
	if strong {
		add(SignalProfanity)
	} else if mild {
		add(SignalMildSwear)
	}
	f.Level = FrustrationLevel(f.Score)
	return f
}

// FrustrationLevel maps a score to its level.
func FrustrationLevel(score int) string {
	switch {
	case score <= 0:
		return FrustrationNone
	case score <= 2:
		return FrustrationMild
	case score <= 5:
		return FrustrationModerate
	case score <= 8:
		return FrustrationHigh
	}
	return FrustrationCritical
}

// FrustrationRank orders levels: none 0, mild 1, moderate 2, high 3, critical 4; an unknown
// level (or "") ranks 0.
func FrustrationRank(level string) int {
	switch level {
	case FrustrationMild:
		return 1
	case FrustrationModerate:
		return 2
	case FrustrationHigh:
		return 3
	case FrustrationCritical:
		return 4
	}
	return 0
}
