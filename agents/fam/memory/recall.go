package memory

import (
	"fmt"
	"regexp"
	"strings"
)

// Question is a question about what the user said about themselves.
type Question struct {
	// Key is the fact asked about; empty when All is set.
	Key string
	// All asks for everything ("what do you know about me?").
	All bool
	// Item asks whether a list fact holds one item ("am I allergic to cats?").
	Item string
	// Personal is set for the well-known keys (name, where the user lives, ...): asked about
	// and unknown, the honest answer is "you haven't told me". A question about any other
	// "my X" is only a memory question when X is known; otherwise it is left to the assistant
	// ("what's my order status?" is not something the user told us).
	Personal bool
}

type recallRule struct {
	key string
	re  *regexp.Regexp
}

// recallRules match the normalized question: lowercase, apostrophes kept, "?" dropped.
var recallRules = []recallRule{
	{KeyName, regexp.MustCompile(`\b(what(?:'s| is| was) my name|do you (?:know|remember) my name|do you (?:know|remember) who i am|who am i$|what am i called|what did i (?:say|tell you) my name (?:is|was)|what do you call me|what should you call me|what my name is$)\b`)},
	{KeyLocation, regexp.MustCompile(`\b(where do i live|where am i (?:based|living|located)|where(?:'s| is) my home|what (?:city|town|country) do i live in|do you (?:know|remember) where i live|where i live$)\b`)},
	{KeyHometown, regexp.MustCompile(`\b(where am i (?:originally )?from|where do i (?:originally )?come from|do you (?:know|remember) where i(?:'m| am) from|where i(?:'m| am) from$)\b`)},
	{KeyEmployer, regexp.MustCompile(`\b(where do i work|who do i work for|what company do i work (?:at|for)|who(?:'s| is) my employer|do you (?:know|remember) where i work|where i work$)\b`)},
	{KeyOccupation, regexp.MustCompile(`(^what do i do(?: for (?:a living|work))?$|\bwhat do i do for (?:a living|work)\b|\bwhat(?:'s| is) my (?:job|occupation|profession|job title)\b|\bwhat do i work as\b|\bwhat(?:'s| is) my line of work\b)`)},
	{KeyAge, regexp.MustCompile(`\b(how old am i|what(?:'s| is) my age|do you (?:know|remember) how old i am|how old i am$)\b`)},
	{KeyAllergies, regexp.MustCompile(`\b(what am i allergic to|what are my allergies|do i have (?:any )?allergies|do you (?:know|remember) what i(?:'m| am) allergic to|what i(?:'m| am) allergic to$)\b`)},
}

var (
	recallAll      = regexp.MustCompile(`\b(what do you (?:know|remember) about me|what have i told you(?: about (?:me|myself))?|what(?:'s| is) my (?:info|information|profile|details)|do you remember (?:me|anything about me)|what do you know of me)\b`)
	recallAllergic = regexp.MustCompile(`\bam i allergic to ([a-z' ]+)$`)
	recallFav      = regexp.MustCompile(`\bwhat(?:'s| is| are| was| were) my (?:favou?rite|fave|fav) ([a-z ]+?)$`)
	recallNamed    = regexp.MustCompile(`\bwhat(?:'s| is| was) my ([a-z]+)(?:'s| s) name$`)
	recallGeneric  = regexp.MustCompile(`\b(?:what(?:'s| is| are| was| were)|do you (?:know|remember)) my ([a-z]+(?: [a-z]+){0,2})$|^what my ([a-z]+(?: [a-z]+){0,2}) (?:is|are|was|were)$`)
)

// ParseQuestion recognizes a question about the user's own facts.
func ParseQuestion(message string) (Question, bool) {
	norm := normalize(message)
	if norm == "" {
		return Question{}, false
	}
	if recallAll.MatchString(norm) {
		return Question{All: true, Personal: true}, true
	}
	if m := recallAllergic.FindStringSubmatch(norm); m != nil {
		return Question{Key: KeyAllergies, Item: strings.TrimSpace(m[1]), Personal: true}, true
	}
	for _, r := range recallRules {
		if r.re.MatchString(norm) {
			return Question{Key: r.key, Personal: true}, true
		}
	}
	if m := recallFav.FindStringSubmatch(norm); m != nil {
		return Question{Key: CanonicalKey("favourite " + strings.TrimSpace(m[1])), Personal: true}, true
	}
	if m := recallNamed.FindStringSubmatch(norm); m != nil {
		return Question{Key: m[1] + "'s name", Personal: true}, true
	}
	if m := recallGeneric.FindStringSubmatch(norm); m != nil {
		key := recallKey(m[1] + m[2])
		_, personal := personalKeys[key]
		return Question{Key: key, Personal: personal}, true
	}
	return Question{}, false
}

// personalKeys are the keys a recall question may ask about before they are known.
var personalKeys = map[string]bool{
	KeyName: true, KeyLocation: true, KeyHometown: true, KeyEmployer: true, KeyOccupation: true,
	KeyAge: true, KeyAllergies: true, "birthday": true,
}

// recallKey maps the words of "what is my X" to a fact key.
func recallKey(phrase string) string {
	phrase = CanonicalKey(strings.TrimSpace(phrase))
	switch phrase {
	case "name", "first name", "full name":
		return KeyName
	case "job", "occupation", "profession", "job title", "work":
		return KeyOccupation
	case "employer", "company", "workplace":
		return KeyEmployer
	case "allergies", "allergy":
		return KeyAllergies
	case "city", "home", "home town", "address", "location":
		return KeyLocation
	case "hometown":
		return KeyHometown
	}
	return phrase
}

var questionNoise = regexp.MustCompile(`[^a-z0-9' ]+`)

func normalize(s string) string {
	s = strings.ToLower(quotes.Replace(s))
	s = questionNoise.ReplaceAllString(s, " ")
	s = strings.Join(strings.Fields(s), " ")
	// Politeness around the question does not change it.
	for _, p := range []string{"please ", "can you tell me ", "could you tell me ", "tell me ", "remind me ", "hey ", "so ", "ok ", "okay ", "and ", "fam "} {
		s = strings.TrimPrefix(s, p)
	}
	for _, p := range []string{" again", " please", " then"} {
		s = strings.TrimSuffix(s, p)
	}
	return s
}

// Answer answers a recall question from the facts; ok is false when the question is about a
// key that is neither known nor personal, so someone else should answer it. again words the
// answer for a question asked before.
func (f *Facts) Answer(q Question, again bool) (answer string, ok bool) {
	prefix := ""
	if again {
		prefix = "As you told me earlier, "
	}
	if q.All {
		facts := f.All()
		if len(facts) == 0 {
			return "You haven't told me anything about yourself in this conversation yet. I only remember what you tell me within one conversation.", true
		}
		clauses := make([]string, len(facts))
		for i, fact := range facts {
			clauses[i] = Clause(fact)
		}
		return "Here's what you've told me in this conversation: " + strings.Join(clauses, "; ") + ".", true
	}
	v, known := f.Get(q.Key)
	if !known {
		if !q.Personal {
			return "", false
		}
		return unknownAnswer(q.Key), true
	}
	if q.Item != "" {
		for _, it := range f.Items(q.Key) {
			if strings.EqualFold(it, q.Item) || strings.EqualFold(strings.TrimSuffix(it, "s"), strings.TrimSuffix(q.Item, "s")) {
				return "Yes. " + capitalize(prefix+toldMe(Clause(Fact{q.Key, v}), again)) + ".", true
			}
		}
		return fmt.Sprintf("You haven't mentioned being allergic to %s. %s.", q.Item, capitalize(toldMe(Clause(Fact{q.Key, v}), false))), true
	}
	return capitalize(prefix+toldMe(Clause(Fact{Key: q.Key, Value: v}), again)) + ".", true
}

// toldMe words a clause as something the user said: "your name is John" stands alone, "you
// live in New York" reads better as "you told me you live in New York".
func toldMe(clause string, again bool) string {
	if again || strings.HasPrefix(clause, "your ") {
		return clause
	}
	return "you told me " + clause
}

func unknownAnswer(key string) string {
	const tail = " I only remember what you tell me within this conversation."
	switch key {
	case KeyName:
		return "You haven't told me your name in this conversation yet. What should I call you?"
	case KeyLocation:
		return "You haven't told me where you live in this conversation." + tail
	case KeyHometown:
		return "You haven't told me where you're from in this conversation." + tail
	case KeyEmployer:
		return "You haven't told me where you work in this conversation." + tail
	case KeyOccupation:
		return "You haven't told me what you do for a living in this conversation." + tail
	case KeyAge:
		return "You haven't told me your age in this conversation." + tail
	case KeyAllergies:
		return "You haven't told me about any allergies in this conversation." + tail
	}
	return "You haven't told me your " + key + " in this conversation." + tail
}

// Clause says a fact back to the user in the second person: "your name is John", "you live in
// New York".
func Clause(f Fact) string {
	switch f.Key {
	case KeyName:
		return "your name is " + f.Value
	case KeyLocation:
		return "you live in " + f.Value
	case KeyHometown:
		return "you're from " + f.Value
	case KeyEmployer:
		return "you work at " + f.Value
	case KeyOccupation:
		return "you work as " + article(f.Value) + f.Value
	case KeyAge:
		return "you're " + f.Value
	case KeyAllergies:
		return "you're allergic to " + f.Value
	}
	verb := "is"
	if strings.HasSuffix(f.Key, "s") && !strings.HasSuffix(f.Key, "'s name") && !strings.HasSuffix(f.Key, "ss") {
		verb = "are"
	}
	return "your " + f.Key + " " + verb + " " + f.Value
}

// Label names a fact for a prompt: "Name", "Lives in", "Favourite colour".
func Label(key string) string {
	switch key {
	case KeyName:
		return "Name"
	case KeyLocation:
		return "Lives in"
	case KeyHometown:
		return "Is from"
	case KeyEmployer:
		return "Works at"
	case KeyOccupation:
		return "Works as"
	case KeyAge:
		return "Age"
	case KeyAllergies:
		return "Allergic to"
	}
	return capitalize(key)
}

func article(noun string) string {
	lower := strings.ToLower(noun)
	if strings.HasPrefix(lower, "a ") || strings.HasPrefix(lower, "an ") || strings.HasPrefix(lower, "the ") {
		return ""
	}
	if lower != "" && strings.ContainsRune("aeiou", rune(lower[0])) {
		return "an "
	}
	return "a "
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
