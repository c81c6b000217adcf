package nlu_test

import (
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

func TestSimilarity(t *testing.T) {
	tests := []struct {
		a, b string
		min  float64
		max  float64
	}{
		{"What are the voice tiers?", "what are the voice tiers", 1, 1},
		{"What are the voice tiers?", "What are the voice tiers again?", 1, 1}, // fillers do not count
		{"what's my name?", "what is my name", 1, 1},                           // contractions expanded
		{"what are the voice tiers?", "what are the rate limits?", 0, 0.5},
		{"", "", 0, 0},
	}
	for _, tt := range tests {
		got := nlu.Similarity(tt.a, tt.b)
		if got < tt.min || got > tt.max {
			t.Errorf("Similarity(%q, %q) = %v, want in [%v, %v]", tt.a, tt.b, got, tt.min, tt.max)
		}
	}
}

func TestFindRepeat(t *testing.T) {
	earlier := []string{
		"how do I configure an OpenAI key?", // 0: outside the window below
		"what are the voice tiers?",         // 1
		"hello",                             // 2: a greeting, not a question
		"thanks",                            // 3
		"what is the rate limit?",           // 4
		"how does the fallback work?",       // 5
		"what is 6 * 7",                     // 6
		"where is the data stored?",         // 7
	}
	tests := []struct {
		message   string
		wantIndex int // -1: no repeat
	}{
		{"what are the voice tiers again?", 1},
		{"What are the voice tiers", 1},
		{"where is the data stored", 7},
		{"how does the fallback work", 5},
		// Only the last five questions count: greetings and thanks are skipped, the OpenAI
		// question is the sixth back.
		{"how do I configure an OpenAI key?", -1},
		{"what are the rate limits for paid plans?", -1},
		{"hello", -1}, // too short to be a repeated question
	}
	for _, tt := range tests {
		got, ok := nlu.FindRepeat(tt.message, earlier)
		if tt.wantIndex < 0 {
			if ok {
				t.Errorf("FindRepeat(%q) = %+v, want none", tt.message, got)
			}
			continue
		}
		if !ok || got.Index != tt.wantIndex || got.Question != earlier[tt.wantIndex] || got.Similarity <= nlu.RepeatThreshold {
			t.Errorf("FindRepeat(%q) = %+v %v, want index %d", tt.message, got, ok, tt.wantIndex)
		}
	}
}

func TestUnderstand(t *testing.T) {
	history := []string{"what are the voice tiers?", "ok"}
	tests := []struct {
		name    string
		message string
		earlier []string
		intent  string
		repeat  bool
	}{
		{"plain question", "what are the rate limits?", history, nlu.IntentInformation, false},
		{"asked again", "what are the voice tiers again?", history, nlu.IntentRepeat, true},
		{"same greeting twice is not a repeat", "hello there", []string{"hello there"}, nlu.IntentGreeting, false},
		{"the time asked twice is not a repeat", "what time is it?", []string{"what time is it?"}, nlu.IntentTime, false},
		{"leans on the last turn", "is it free?", history, nlu.IntentFollowUp, false},
		{"no last turn to lean on", "is it free?", nil, nlu.IntentInformation, false},
		{"frustration wins over the rules", "this is useless, how do I set up voice?", history, nlu.IntentFrustration, false},
		{"frustration wins over a repeat", "ugh, I give up, what are the voice tiers?", history, nlu.IntentFrustration, false},
		{"mild frustration keeps the intent", "ugh, what are the rate limits?", history, nlu.IntentInformation, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := nlu.Understand(tt.message, tt.earlier)
			if u.Intent.Name != tt.intent {
				t.Errorf("Understand(%q).Intent = %+v, want %s", tt.message, u.Intent, tt.intent)
			}
			if (u.Repeat != nil) != tt.repeat {
				t.Errorf("Understand(%q).Repeat = %+v, want repeat=%v", tt.message, u.Repeat, tt.repeat)
			}
			if u.Rules != nlu.DetectIntent(tt.message) || u.Sentiment != nlu.AnalyzeSentiment(tt.message) {
				t.Errorf("Rules/Sentiment must be the message's own: %+v %+v", u.Rules, u.Sentiment)
			}
			if u.Intent.Confidence <= 0 || u.Intent.Confidence > 1 {
				t.Errorf("confidence %v out of range", u.Intent.Confidence)
			}
		})
	}
}
