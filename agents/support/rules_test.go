package support

import (
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/session"
)

func TestPriority(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"This is urgent!", session.PriorityUrgent},
		{"please fix it ASAP", session.PriorityUrgent},
		{"a.s.a.p. please", session.PriorityUrgent},
		{"it's critical for our launch", session.PriorityUrgent},
		{"Urgently need help", session.PriorityUrgent},
		{"I'm a VIP customer", session.PriorityHigh},
		{"this is important", session.PriorityHigh},
		{"I have a problem with my order", session.PriorityHigh},
		{"several problems", session.PriorityHigh},
		{"I have a question about invoices", session.PriorityLow},
		{"just questions", session.PriorityLow},
		{"my parcel has not arrived", session.PriorityMedium},
		{"", session.PriorityMedium},
		// First rule wins: urgent over high over low.
		{"urgent problem, quick question", session.PriorityUrgent},
		{"a question about a problem", session.PriorityHigh},
		// Whole words only.
		{"problematic questionnaire from a vipassana retreat", session.PriorityMedium},
	}
	for _, tt := range tests {
		if got := Priority(tt.text); got != tt.want {
			t.Errorf("Priority(%q) = %s, want %s", tt.text, got, tt.want)
		}
	}
}

func TestSLA(t *testing.T) {
	tests := []struct {
		priority          string
		first, resolution time.Duration
		spoken            string
	}{
		{session.PriorityUrgent, 15 * time.Minute, 4 * time.Hour, "15 minutes"},
		{session.PriorityHigh, time.Hour, 24 * time.Hour, "1 hour"},
		{session.PriorityMedium, 4 * time.Hour, 72 * time.Hour, "4 hours"},
		{session.PriorityLow, 24 * time.Hour, 7 * 24 * time.Hour, "24 hours"},
		{"unknown", 4 * time.Hour, 72 * time.Hour, "4 hours"},
	}
	for _, tt := range tests {
		if got := FirstResponseSLA(tt.priority); got != tt.first {
			t.Errorf("FirstResponseSLA(%s) = %v, want %v", tt.priority, got, tt.first)
		}
		if got := ResolutionSLA(tt.priority); got != tt.resolution {
			t.Errorf("ResolutionSLA(%s) = %v, want %v", tt.priority, got, tt.resolution)
		}
		if got := spokenDuration(FirstResponseSLA(tt.priority)); got != tt.spoken {
			t.Errorf("spoken %s = %q, want %q", tt.priority, got, tt.spoken)
		}
	}
	if got := spokenDuration(time.Minute); got != "1 minute" {
		t.Errorf("one minute: %q", got)
	}
}

func TestMeasureFrustration(t *testing.T) {
	tests := []struct {
		text  string
		level string
	}{
		{"How do I reset my password?", FrustrationNone},
		{"my app is not working", FrustrationMild},
		{"ugh, where is it", FrustrationMild},
		{"the tracking page is terrible", FrustrationModerate},
		{"I'm a bit frustrated", FrustrationModerate},
		{"I'm furious", FrustrationHigh},
		{"I am fed up with this", FrustrationHigh},
		{"This is useless, I'm so frustrated", FrustrationHigh},
		{"what the fuck", FrustrationHigh},
		{"I've asked three times and it's STILL NOT WORKING!!", FrustrationCritical},
		{"This is ridiculous, a total waste of my time, I'm angry", FrustrationCritical},
		// Acronyms are not shouting.
		{"Can I get the PDF invoice ASAP for my VIP account?", FrustrationNone},
	}
	for _, tt := range tests {
		if got := MeasureFrustration(tt.text); got.Level != tt.level {
			t.Errorf("MeasureFrustration(%q) = %d %s %v, want %s", tt.text, got.Score, got.Level, got.Signals, tt.level)
		}
	}
}

func TestWantsHuman(t *testing.T) {
	yes := []string{
		"speak to a human", "Can I talk to a person?", "agent please", "Agent!", "human",
		"I want to speak to someone real", "please connect me to an agent", "get me a manager",
		"I need a real person", "transfer me to your support team", "Is there a human I can talk to?",
		"I'd like to talk to someone about my refund", "representative please", "open a ticket",
		"can you escalate this", "I want to file a complaint",
	}
	no := []string{
		"How do I reset my password?", "I don't want to talk to a human, just answer", "what does the agent do?",
		"is the person who delivers my parcel insured?", "my ticket number is 5", "",
	}
	for _, s := range yes {
		if !WantsHuman(s) {
			t.Errorf("WantsHuman(%q) = false", s)
		}
	}
	for _, s := range no {
		if WantsHuman(s) {
			t.Errorf("WantsHuman(%q) = true", s)
		}
	}
}

func TestExtractQuotesTheRelevantSentences(t *testing.T) {
	hit := rag.Hit{Doc: "returns.md", Section: "Refund window", Text: "You can return most items within 30 days of delivery. " +
		"Items must be unused. Sale items cannot be returned. **Refunds** go back to the original payment method within 5 to 7 business days."}
	got := Extract("when do I get my refund back on my payment card?", hit)
	if !strings.HasSuffix(got, "(source: returns.md › Refund window)") {
		t.Fatalf("no citation: %q", got)
	}
	if !strings.Contains(got, "Refunds go back to the original payment method within 5 to 7 business days.") {
		t.Fatalf("the sentence that answers is missing, or markup was kept: %q", got)
	}
	if strings.Contains(got, "unused") {
		t.Fatalf("an unrelated sentence was quoted: %q", got)
	}
	// Every quoted sentence is the article's own.
	for _, s := range splitSentences(strings.TrimSuffix(got, Citation(hit))) {
		if !strings.Contains(strings.ReplaceAll(hit.Text, "**", ""), s) {
			t.Fatalf("%q is not in the article", s)
		}
	}
	// Nothing in common: the first sentence, still cited.
	got = Extract("zzz", rag.Hit{Doc: "a.md", Text: "First point here. Second point here."})
	if got != "First point here. (source: a.md)" {
		t.Fatalf("fallback %q", got)
	}
	// Markdown lists, sub-headings and code are handled.
	got = Extract("install the app", rag.Hit{Doc: "b.md", Section: "Setup", Text: "Install\n- Download and install the app from the store\n```\ncode here\n```"})
	if got != "Download and install the app from the store. (source: b.md › Setup)" {
		t.Fatalf("markdown %q", got)
	}
	if got := Extract("x", rag.Hit{Doc: "c.md", Text: "```\nonly code\n```"}); got != "(source: c.md)" {
		t.Fatalf("no sentences: %q", got)
	}
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("want an error without retriever and tickets")
	}
}
