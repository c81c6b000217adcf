package memory_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/fam/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLearnStatements(t *testing.T) {
	tests := []struct {
		message string
		want    []memory.Fact
	}{
		{"my name is John", []memory.Fact{{"name", "John"}}},
		{"My name's john smith.", []memory.Fact{{"name", "John Smith"}}},
		{"Hi, I'm John.", []memory.Fact{{"name", "John"}}},
		{"Hello! I am Maria, nice to meet you", []memory.Fact{{"name", "Maria"}}},
		{"just call me Bob", []memory.Fact{{"name", "Bob"}}},
		{"I live in New York", []memory.Fact{{"location", "New York"}}},
		{"I live in New York with my wife and kids", []memory.Fact{{"location", "New York"}}},
		{"I'm based in Berlin at the moment", []memory.Fact{{"location", "Berlin"}}},
		{"I just moved to Lisbon!", []memory.Fact{{"location", "Lisbon"}}},
		{"I'm originally from Dublin", []memory.Fact{{"hometown", "Dublin"}}},
		{"I work at Acme", []memory.Fact{{"employer", "Acme"}}},
		{"I work for Acme Corp as an engineer", []memory.Fact{{"employer", "Acme Corp"}, {"occupation", "engineer"}}},
		{"I work as a nurse", []memory.Fact{{"occupation", "nurse"}}},
		{"my job is teacher", []memory.Fact{{"occupation", "teacher"}}},
		{"I'm 34 years old", []memory.Fact{{"age", "34"}}},
		{"I am 61.", []memory.Fact{{"age", "61"}}},
		{"my favourite colour is blue", []memory.Fact{{"favourite colour", "blue"}}},
		{"My favorite color is Blue!", []memory.Fact{{"favourite colour", "Blue"}}},
		{"my favourite food is sushi and my favourite band is Queen", []memory.Fact{{"favourite food", "sushi"}}},
		{"I'm allergic to peanuts", []memory.Fact{{"allergies", "peanuts"}}},
		{"I'm allergic to peanuts, shellfish and cats.", []memory.Fact{{"allergies", "peanuts, shellfish and cats"}}},
		{"I'm allergic to peanuts, what can I eat?", []memory.Fact{{"allergies", "peanuts"}}},
		{"I have a peanut allergy", []memory.Fact{{"allergies", "peanut"}}},
		{"I have a dog named Rex", []memory.Fact{{"dog's name", "Rex"}}},
		{"my cat is called Tom", []memory.Fact{{"cat's name", "Tom"}}},
		{"my birthday is May 3rd", []memory.Fact{{"birthday", "May 3rd"}}},
		{"my wife is Sarah", []memory.Fact{{"wife", "Sarah"}}},
		{"My name is Anna. I live in Oslo.", []memory.Fact{{"name", "Anna"}, {"location", "Oslo"}}},
		// Not facts about the user.
		{"What are the voice tiers?", nil},
		{"I'm fine, thanks", nil},
		{"I'm Going home now", nil},
		{"my order is late", nil},
		{"my internet is down again", nil},
		{"my question is about the tiers", nil},
		{"my name is not important", nil},
		{"can you call me tomorrow?", nil},
		{"I'm 5 minutes away", nil},
		// Secrets are never remembered.
		{"my password is hunter2", nil},
		{"My account number is 777, can you check it?", nil},
		{"my credit card number is 4111 1111 1111 1111", nil},
		{"my PIN is 1234", nil},
		{"my API key is sk-123", nil},
		// Nonsense and oversize values.
		{"", nil},
		{"my name is " + strings.Repeat("very long name ", 10), nil},
		{"my name is <script>", nil},
		{"\xff\xfe my name is Bob", nil},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			f := &memory.Facts{}
			got := f.Learn(tt.message)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Learn(%q) = %v, want %v", tt.message, got, tt.want)
			}
			if len(tt.want) != f.Len() {
				t.Errorf("Learn(%q) kept %d facts (%v), want %d", tt.message, f.Len(), f.All(), len(tt.want))
			}
		})
	}
}

func TestLaterStatementsCorrectEarlierOnes(t *testing.T) {
	f := memory.FromConversation("", []string{
		"my name is John",
		"I live in New York",
		"I'm allergic to peanuts",
		"actually, my name is Jim",
		"I moved to Boston last year",
		"I'm also allergic to shellfish",
		"I'm not allergic to peanuts after all",
	})
	want := []memory.Fact{{"name", "Jim"}, {"location", "Boston"}, {"allergies", "shellfish"}}
	if got := f.All(); !reflect.DeepEqual(got, want) {
		t.Errorf("facts = %v, want %v", got, want)
	}
}

func TestForgetting(t *testing.T) {
	base := []string{"my name is John", "I live in Paris", "I work at Acme as a chef"}
	tests := []struct {
		then string
		want []memory.Fact
	}{
		{"forget my name", []memory.Fact{{"location", "Paris"}, {"employer", "Acme"}, {"occupation", "chef"}}},
		{"I don't live in Paris any more", []memory.Fact{{"name", "John"}, {"employer", "Acme"}, {"occupation", "chef"}}},
		{"I no longer work at Acme", []memory.Fact{{"name", "John"}, {"location", "Paris"}}},
		{"please forget everything I told you", []memory.Fact{}},
		{"my name is not John", []memory.Fact{{"location", "Paris"}, {"employer", "Acme"}, {"occupation", "chef"}}},
	}
	for _, tt := range tests {
		t.Run(tt.then, func(t *testing.T) {
			f := memory.FromConversation("", append(append([]string(nil), base...), tt.then))
			if got := f.All(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("facts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFactsFromSummary(t *testing.T) {
	tests := []struct {
		name    string
		summary string
		want    []memory.Fact
	}{
		{"extractive", "User: Hi, my name is John.\nAssistant: Nice to meet you, John!\nUser: I live in New York.", []memory.Fact{{"name", "John"}, {"location", "New York"}}},
		{"assistant lines ignored", "Assistant: my name is FAM.", nil},
		{"third person", "The user's name is John and they live in New York. The user is allergic to peanuts. Their favourite colour is blue.", []memory.Fact{{"name", "John"}, {"location", "New York"}, {"allergies", "peanuts"}, {"favourite colour", "blue"}}},
		{"works at", "The user works at Acme.", []memory.Fact{{"employer", "Acme"}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := memory.FromConversation(tt.summary, nil).All()
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("facts = %v, want %v", got, tt.want)
			}
		})
	}
	// The recent messages are newer than the summary and win.
	f := memory.FromConversation("User: my name is John.", []string{"my name is Jim"})
	if v, _ := f.Get("name"); v != "Jim" {
		t.Errorf("name = %q, want the newer Jim", v)
	}
}

func TestFactsAreBounded(t *testing.T) {
	var msgs []string
	key := func(i int) string { return "thing " + string(rune('a'+i/26)) + string(rune('a'+i%26)) }
	for i := range memory.MaxFacts + 10 {
		msgs = append(msgs, "my "+key(i)+" is blue")
	}
	f := memory.FromConversation("", msgs)
	if f.Len() != memory.MaxFacts {
		t.Fatalf("kept %d facts, want MaxFacts %d", f.Len(), memory.MaxFacts)
	}
	if _, ok := f.Get(key(0)); ok {
		t.Error("the oldest fact should have gone first")
	}
	if v, ok := f.Get(key(memory.MaxFacts + 9)); !ok || v != "blue" {
		t.Error("the newest fact is missing")
	}
}

func TestParseQuestion(t *testing.T) {
	tests := []struct {
		message string
		want    memory.Question
		ok      bool
	}{
		{"what's my name?", memory.Question{Key: "name", Personal: true}, true},
		{"What is my name", memory.Question{Key: "name", Personal: true}, true},
		{"do you remember my name?", memory.Question{Key: "name", Personal: true}, true},
		{"Who am I?", memory.Question{Key: "name", Personal: true}, true},
		{"can you tell me what my name is?", memory.Question{Key: "name", Personal: true}, true},
		{"where do I live?", memory.Question{Key: "location", Personal: true}, true},
		{"Do you know where I live?", memory.Question{Key: "location", Personal: true}, true},
		{"where am I from?", memory.Question{Key: "hometown", Personal: true}, true},
		{"where do I work?", memory.Question{Key: "employer", Personal: true}, true},
		{"who do I work for?", memory.Question{Key: "employer", Personal: true}, true},
		{"what do I do for a living?", memory.Question{Key: "occupation", Personal: true}, true},
		{"what's my job?", memory.Question{Key: "occupation", Personal: true}, true},
		{"how old am I?", memory.Question{Key: "age", Personal: true}, true},
		{"what am I allergic to?", memory.Question{Key: "allergies", Personal: true}, true},
		{"am I allergic to peanuts?", memory.Question{Key: "allergies", Item: "peanuts", Personal: true}, true},
		{"what's my favourite colour?", memory.Question{Key: "favourite colour", Personal: true}, true},
		{"What is my favorite color?", memory.Question{Key: "favourite colour", Personal: true}, true},
		{"what's my dog's name?", memory.Question{Key: "dog's name", Personal: true}, true},
		{"what is my birthday?", memory.Question{Key: "birthday", Personal: true}, true},
		{"what do you know about me?", memory.Question{All: true, Personal: true}, true},
		{"what have I told you?", memory.Question{All: true, Personal: true}, true},
		// A "my X" the user may not have told us: only answered from memory when known.
		{"what's my order status?", memory.Question{Key: "order status"}, true},
		// Not questions about the user.
		{"who am I talking to?", memory.Question{}, false},
		{"what do I do next?", memory.Question{}, false},
		{"the weather where I live is bad", memory.Question{}, false},
		{"what are the voice tiers?", memory.Question{}, false},
		{"", memory.Question{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.message, func(t *testing.T) {
			got, ok := memory.ParseQuestion(tt.message)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ParseQuestion(%q) = %+v %v, want %+v %v", tt.message, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	f := memory.FromConversation("", []string{
		"Hi, I'm John.", "I live in New York", "I work at Acme", "my favourite colour is blue",
		"I'm allergic to peanuts", "I have a dog named Rex",
	})
	empty := &memory.Facts{}
	tests := []struct {
		facts    *memory.Facts
		question string
		again    bool
		want     string // the whole answer, or a part of it with contains
		contains bool
		ok       bool
	}{
		{f, "what's my name?", false, "Your name is John.", false, true},
		{f, "what's my name?", true, "As you told me earlier, your name is John.", false, true},
		{f, "where do I live?", false, "You told me you live in New York.", false, true},
		{f, "where do I work?", false, "You told me you work at Acme.", false, true},
		{f, "what's my favorite color?", false, "Your favourite colour is blue.", false, true},
		{f, "what am I allergic to?", false, "You told me you're allergic to peanuts.", false, true},
		{f, "am I allergic to peanuts?", false, "Yes. You told me you're allergic to peanuts.", false, true},
		{f, "am I allergic to cats?", false, "You haven't mentioned being allergic to cats.", true, true},
		{f, "what's my dog's name?", false, "Your dog's name is Rex.", false, true},
		{f, "what do you know about me?", false, "your name is John; you live in New York; you work at Acme; your favourite colour is blue; you're allergic to peanuts; your dog's name is Rex", true, true},
		{f, "how old am I?", false, "You haven't told me your age in this conversation.", true, true},
		{empty, "what's my name?", false, "You haven't told me your name in this conversation yet.", true, true},
		{empty, "what do you know about me?", false, "You haven't told me anything about yourself", true, true},
		{empty, "what's my order status?", false, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.question, func(t *testing.T) {
			q, isQ := memory.ParseQuestion(tt.question)
			if !isQ {
				t.Fatalf("%q is not a recall question", tt.question)
			}
			got, ok := tt.facts.Answer(q, tt.again)
			if ok != tt.ok || (!tt.contains && got != tt.want) || (tt.contains && !strings.Contains(got, tt.want)) {
				t.Errorf("Answer(%q) = %q %v, want %q %v", tt.question, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCanonicalKey(t *testing.T) {
	for _, k := range []string{"Favorite Color", "favourite colour", "fave color", " favourite   color "} {
		if got := memory.CanonicalKey(k); got != "favourite colour" {
			t.Errorf("CanonicalKey(%q) = %q", k, got)
		}
	}
}
