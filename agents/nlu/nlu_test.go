package nlu_test

import (
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDetectIntent(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		// Greetings, alone or with a short tail.
		{"Hello!", nlu.IntentGreeting},
		{"hi there", nlu.IntentGreeting},
		{"Good morning", nlu.IntentGreeting},
		{"Hey", nlu.IntentGreeting},
		{"Howdy everyone", nlu.IntentGreeting},
		// A greeting wrapped around a real question is about the question.
		{"Hello! Can you tell me how the rate limits on the free plan work?", nlu.IntentInformation},
		{"hi, how do I reset the key I configured yesterday", nlu.IntentInformation},
		// Words that merely start like a greeting are not greetings.
		{"history of the gateway?", nlu.IntentInformation},

		{"thanks", nlu.IntentGratitude},
		{"Thank you so much!", nlu.IntentGratitude},
		{"much appreciated", nlu.IntentGratitude},

		{"bye", nlu.IntentFarewell},
		{"Goodbye!", nlu.IntentFarewell},
		{"see you later", nlu.IntentFarewell},
		{"good night", nlu.IntentFarewell},

		{"how are you?", nlu.IntentSmallTalk},
		{"are you a bot?", nlu.IntentSmallTalk},

		{"my order is missing and the app is broken", nlu.IntentComplaint},

		{"what is 12 * 7", nlu.IntentCalculation},
		{"15% of 200", nlu.IntentCalculation},
		{"what's 15 percent of 80?", nlu.IntentCalculation},
		{"3x4", nlu.IntentCalculation},
		{"calculate the square of 9", nlu.IntentCalculation},
		{"what is 7 divided by 2?", nlu.IntentCalculation},

		{"What time is it?", nlu.IntentTime},
		{"what is the time?", nlu.IntentTime},
		{"What's the date today?", nlu.IntentTime},
		{"what day is it", nlu.IntentTime},

		{"How do I configure an OpenAI key?", nlu.IntentHowTo},
		{"how to start the gateway", nlu.IntentHowTo},
		{"help me set up voice", nlu.IntentHowTo},

		{"What are the voice tiers?", nlu.IntentInformation},
		{"tell me about rate limits", nlu.IntentInformation},
		{"the websocket endpoint?", nlu.IntentInformation},

		{"zxcvbnm", nlu.IntentUnknown},
		{"", nlu.IntentUnknown},
		{"?!?", nlu.IntentUnknown},
		// Runs of neighbouring keys are noise, even with a question mark.
		{"asdf?", nlu.IntentUnknown},
		{"qwerty", nlu.IntentUnknown},
		{"lkjh", nlu.IntentUnknown},
		// Words that happen to use one keyboard row are not runs.
		{"were you there?", nlu.IntentInformation},

		{"I have some feedback about the widget", nlu.IntentFeedback},
		{"It would be nice if the widget had a dark mode", nlu.IntentFeedback},
		{"You should add more voices", nlu.IntentFeedback},
		{"great job on the new release", nlu.IntentFeedback},

		{"and what about the rate limits?", nlu.IntentFollowUp},
		{"What about WebRTC?", nlu.IntentFollowUp},
		{"tell me more", nlu.IntentFollowUp},
		{"why is that?", nlu.IntentFollowUp},

		{"I'm so frustrated with this", nlu.IntentFrustration},
		{"I give up", nlu.IntentFrustration},
		{"ugh", nlu.IntentFrustration},

		{"I get an error when I start the gateway", nlu.IntentTroubleshooting},
		{"the widget won't load on my site", nlu.IntentTroubleshooting},
		{"it keeps crashing", nlu.IntentTroubleshooting},
		{"my connection timed out", nlu.IntentTroubleshooting},

		{"I already asked you this", nlu.IntentRepeat},
		{"you didn't answer my question", nlu.IntentRepeat},
		{"like I said, the tiers", nlu.IntentRepeat},

		{"the package arrived damaged", nlu.IntentComplaint},
		{"I want a refund", nlu.IntentComplaint},

		// Longer openings that only start like a rule are about what follows.
		{"thanks, but how do I configure the OpenAI key for the gateway?", nlu.IntentInformation},
		{"Who won the world cup in 2018?", nlu.IntentInformation},
		{"Write me a poem about the sea", nlu.IntentInformation},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := nlu.DetectIntent(tt.text)
			if got.Name != tt.want {
				t.Errorf("DetectIntent(%q) = %q, want %q", tt.text, got.Name, tt.want)
			}
			if got.Confidence <= 0 || got.Confidence > 1 {
				t.Errorf("DetectIntent(%q) confidence = %v, want in (0, 1]", tt.text, got.Confidence)
			}
		})
	}
}

// A rule that fires is surer than the fallback guess.
func TestDetectIntentMatchedRuleOutranksFallback(t *testing.T) {
	rule := nlu.DetectIntent("What are the voice tiers?")
	fallback := nlu.DetectIntent("the voice tiers")
	if rule.Name != fallback.Name {
		t.Fatalf("intents differ: %q vs %q", rule.Name, fallback.Name)
	}
	if rule.Confidence <= fallback.Confidence {
		t.Errorf("a question's confidence %v should exceed the fallback's %v", rule.Confidence, fallback.Confidence)
	}
}

func TestIntentsListsEveryIntent(t *testing.T) {
	all := nlu.Intents()
	seen := map[string]bool{}
	for _, name := range all {
		if name == "" || seen[name] {
			t.Errorf("Intents() has an empty or duplicate name %q", name)
		}
		seen[name] = true
	}
	for _, want := range []string{"greeting", "farewell", "gratitude", "complaint", "feedback", "calculation", "followup", "howto", "frustration", "troubleshooting", "repeat", "information", "unknown", "time", "smalltalk"} {
		if !seen[want] {
			t.Errorf("Intents() lacks %q", want)
		}
	}
}

func TestAnalyzeSentiment(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"This is great, thanks!", "positive"},
		{"I love it", "positive"},
		{"This is terrible and slow", "negative"},
		{"I hate this broken app", "negative"},
		{"not good", "negative"},
		{"It isn’t helpful", "negative"}, // curly apostrophe
		{"not bad at all", "positive"},
		{"The sky is blue", "neutral"},
		{"", "neutral"},
		{"good but slow", "neutral"}, // mixed evenly
		// Frustration without a negative word is still negative.
		{"I give up", "negative"},
		{"what the fuck", "negative"},
		// Swearing as praise stays positive.
		{"fucking brilliant, thanks", "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := nlu.AnalyzeSentiment(tt.text)
			if got.Label != tt.want {
				t.Errorf("AnalyzeSentiment(%q) = %+v, want label %q", tt.text, got, tt.want)
			}
			if got.Score < -1 || got.Score > 1 {
				t.Errorf("AnalyzeSentiment(%q) score %v outside [-1, 1]", tt.text, got.Score)
			}
			switch got.Label {
			case "positive":
				if got.Score <= 0 {
					t.Errorf("positive label with score %v", got.Score)
				}
			case "negative":
				if got.Score >= 0 {
					t.Errorf("negative label with score %v", got.Score)
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Hello,   World!  ", "hello world"},
		{"What’s up?", "what's up?"},
		{"3 * 4 = 12", "3 4 12"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := nlu.Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
