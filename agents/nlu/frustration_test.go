package nlu_test

import (
	"slices"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

func TestFrustrationLevel(t *testing.T) {
	// The earlier system's thresholds: 0 none, <=2 mild, <=5 moderate, <=8 high, else critical.
	want := []string{"none", "mild", "mild", "moderate", "moderate", "moderate", "high", "high", "high", "critical", "critical", "critical"}
	for score, level := range want {
		if got := nlu.FrustrationLevel(score); got != level {
			t.Errorf("FrustrationLevel(%d) = %q, want %q", score, got, level)
		}
	}
	if got := nlu.FrustrationLevel(-3); got != nlu.FrustrationNone {
		t.Errorf("FrustrationLevel(-3) = %q, want none", got)
	}
	ranks := []string{"", "none", "mild", "moderate", "high", "critical"}
	for i := 2; i < len(ranks); i++ {
		if nlu.FrustrationRank(ranks[i]) <= nlu.FrustrationRank(ranks[i-1]) {
			t.Errorf("rank of %q is not above %q", ranks[i], ranks[i-1])
		}
	}
	if nlu.FrustrationRank("") != 0 || nlu.FrustrationRank("nonsense") != 0 {
		t.Error("unknown levels must rank as none")
	}
}

func TestScoreFrustration(t *testing.T) {
	tests := []struct {
		text    string
		score   int
		level   string
		signals []string
	}{
		{"What are the voice tiers?", 0, "none", nil},
		{"", 0, "none", nil},
		// One signal each, with the earlier system's weights.
		{"ugh", 2, "mild", []string{"ugh"}},
		{"Ughhh, again?", 2, "mild", []string{"ugh"}},
		{"I'm frustrated", 3, "moderate", []string{"explicit"}},
		{"this is so annoying", 3, "moderate", []string{"explicit"}},
		{"I give up", 4, "moderate", []string{"give-up"}},
		{"what a waste of time", 4, "moderate", []string{"give-up"}},
		{"this is useless", 3, "moderate", []string{"terrible"}},
		{"terrible answer", 3, "moderate", []string{"terrible"}},
		{"it's not working", 3, "moderate", []string{"not-working"}},
		{"the page doesn't work", 3, "moderate", []string{"not-working"}},
		{"you're an idiot", 3, "moderate", []string{"insult"}},
		{"stupid bot", 3, "moderate", []string{"insult"}},
		{"fuck", 9, "critical", []string{"profanity"}},
		{"damn it", 5, "moderate", []string{"mild-profanity"}},
		{"what the hell", 5, "moderate", []string{"mild-profanity"}},
		// Signals add up, each counted once.
		{"ugh, I give up", 6, "high", []string{"give-up", "ugh"}},
		{"I'm so frustrated, nothing works", 6, "high", []string{"explicit", "not-working"}},
		{"useless, useless, useless", 3, "moderate", []string{"terrible"}},
		{"I'm frustrated, this is useless and I give up", 10, "critical", []string{"explicit", "give-up", "terrible"}},
		{"damn, this is useless", 8, "high", []string{"terrible", "mild-profanity"}},
		{"this fucking thing is useless", 12, "critical", []string{"terrible", "profanity"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := nlu.ScoreFrustration(tt.text)
			if got.Score != tt.score || got.Level != tt.level {
				t.Errorf("ScoreFrustration(%q) = %d %s, want %d %s (signals %v)", tt.text, got.Score, got.Level, tt.score, tt.level, got.Signals)
			}
			gotSignals := slices.Clone(got.Signals)
			slices.Sort(gotSignals)
			want := slices.Clone(tt.signals)
			slices.Sort(want)
			if !slices.Equal(gotSignals, want) {
				t.Errorf("ScoreFrustration(%q) signals = %v, want %v", tt.text, got.Signals, tt.signals)
			}
		})
	}
}

// The earlier system matched `\bfuck\b`, so "fucking" went unnoticed. Every inflection and the
// usual disguises must count as profanity, and ordinary words that contain the letters must
// not.
func TestProfanityInflectionsAndDisguises(t *testing.T) {
	strong := []string{
		"fuck", "fucks", "fucked", "fucking", "fuckin", "fucker", "FUCKING", "Fucking hell",
		"motherfucker", "clusterfuck", "unfuckingbelievable", "f*ck", "f**k", "f***", "f***ing",
		"f#cking", "fuuuuck", "f.u.c.k", "fck", "fcking", "fkn", "fuk", "phuck",
		"shit", "shits", "shitty", "bullshit", "sh*t", "sh1t", "$hit", "shiiit",
		"bitch", "bitching", "asshole", "a**hole", "bastards", "wtf", "stfu", "ffs",
	}
	for _, w := range strong {
		t.Run(w, func(t *testing.T) {
			msg := "this " + w + " app"
			got := nlu.ScoreFrustration(msg)
			if !slices.Contains(got.Signals, nlu.SignalProfanity) || got.Level != nlu.FrustrationCritical {
				t.Errorf("ScoreFrustration(%q) = %+v, want strong profanity (critical)", msg, got)
			}
			if len(got.Profanity) == 0 {
				t.Errorf("ScoreFrustration(%q) names no profane word", msg)
			}
		})
	}
	mild := []string{"damn", "damned", "dammit", "goddamn", "crap", "crappy", "pissed", "bloody hell"}
	for _, w := range mild {
		t.Run(w, func(t *testing.T) {
			got := nlu.ScoreFrustration("oh " + w + " this again")
			if !slices.Contains(got.Signals, nlu.SignalMildSwear) || slices.Contains(got.Signals, nlu.SignalProfanity) {
				t.Errorf("ScoreFrustration(%q) = %+v, want mild profanity only", w, got)
			}
		})
	}
	clean := []string{
		"I took a class on Scunthorpe history", "my assistant will assess the cocktail",
		"shiitake mushrooms", "the Samsung A55 screen", "hello", "a damning report",
		"she passed the dam", "Dickens", "grass", "brass", "crapaud", "therapist", "hello 12345",
	}
	for _, msg := range clean {
		t.Run(msg, func(t *testing.T) {
			if got := nlu.ScoreFrustration(msg); len(got.Profanity) > 0 || got.Score != 0 {
				t.Errorf("ScoreFrustration(%q) = %+v, want nothing", msg, got)
			}
		})
	}
	// Swearing as praise is not frustration.
	for _, msg := range []string{"fucking brilliant", "damn good answer", "that's fucking awesome!"} {
		if got := nlu.ScoreFrustration(msg); got.Score != 0 {
			t.Errorf("ScoreFrustration(%q) = %+v, want 0: it is praise", msg, got)
		}
	}
}

func TestSentimentCarriesFrustration(t *testing.T) {
	tests := []struct {
		text  string
		level string
		label string
	}{
		{"thanks, that was great", "none", "positive"},
		{"ugh", "mild", "negative"},
		{"I give up", "moderate", "negative"},
		{"ugh, I give up", "high", "negative"},
		{"this f*cking thing", "critical", "negative"},
	}
	for _, tt := range tests {
		got := nlu.AnalyzeSentiment(tt.text)
		if got.Frustration != tt.level || got.Label != tt.label {
			t.Errorf("AnalyzeSentiment(%q) = %+v, want frustration %s and %s", tt.text, got, tt.level, tt.label)
		}
		if got.FrustrationScore != nlu.ScoreFrustration(tt.text).Score {
			t.Errorf("AnalyzeSentiment(%q) score %d differs from ScoreFrustration", tt.text, got.FrustrationScore)
		}
	}
	// Comparable with ==, so agents and tests can compare sentiments whole.
	if nlu.AnalyzeSentiment("ugh") != nlu.AnalyzeSentiment("ugh") {
		t.Error("equal messages give unequal sentiments")
	}
}
