// Package memory is FAM's short-term memory of the user: the facts a user states about
// themselves in a conversation ("my name is John", "I live in New York", "I'm allergic to
// peanuts") and the questions that recall them ("what's my name?").
//
// Agents are shared by every session and keep nothing between turns, so memory is not stored:
// it is read again, every turn, from the conversation the engine hands the agent (the running
// summary, then the recent messages). That is also what keeps it to one session: another
// session has another history, and nothing of this one.
package memory

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Well-known fact keys. Other keys are the user's own words ("birthday", "dog's name",
// "favourite colour").
const (
	KeyName       = "name"
	KeyLocation   = "location"
	KeyHometown   = "hometown"
	KeyEmployer   = "employer"
	KeyOccupation = "occupation"
	KeyAge        = "age"
	KeyAllergies  = "allergies"
)

// Limits on what is remembered: a value is a few words, not a paragraph, so what the user says
// about themselves cannot smuggle instructions into the system prompt.
const (
	maxValueChars = 60
	maxValueWords = 6
	maxKeyWords   = 3
	// MaxFacts bounds how many facts are kept; the oldest go first.
	MaxFacts = 30
)

// Fact is one thing the user said about themselves.
type Fact struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Facts are what the user has told the assistant, in the order they were first stated. The
// zero value is empty and ready to use. Facts is not safe for concurrent use; build one per
// turn.
type Facts struct {
	keys   []string
	values map[string]string
}

// FromConversation reads the facts of a conversation: the running summary first (it is older),
// then the user's messages, oldest first, so later statements correct earlier ones.
func FromConversation(summary string, userMessages []string) *Facts {
	f := &Facts{}
	f.LearnSummary(summary)
	for _, m := range userMessages {
		f.Learn(m)
	}
	return f
}

// Len is how many facts are known.
func (f *Facts) Len() int { return len(f.keys) }

// Get returns the value of a fact.
func (f *Facts) Get(key string) (string, bool) {
	v, ok := f.values[CanonicalKey(key)]
	return v, ok
}

// All returns the facts in the order they were first stated.
func (f *Facts) All() []Fact {
	out := make([]Fact, 0, len(f.keys))
	for _, k := range f.keys {
		out = append(out, Fact{Key: k, Value: f.values[k]})
	}
	return out
}

func (f *Facts) set(key, value string) {
	key = CanonicalKey(key)
	if f.values == nil {
		f.values = map[string]string{}
	}
	if _, ok := f.values[key]; !ok {
		f.keys = append(f.keys, key)
		if len(f.keys) > MaxFacts {
			delete(f.values, f.keys[0])
			f.keys = f.keys[1:]
		}
	}
	f.values[key] = value
}

func (f *Facts) forget(key string) {
	key = CanonicalKey(key)
	if _, ok := f.values[key]; !ok {
		return
	}
	delete(f.values, key)
	f.keys = slices.DeleteFunc(f.keys, func(k string) bool { return k == key })
}

func (f *Facts) forgetAll() {
	f.keys, f.values = nil, nil
}

var (
	quotes    = strings.NewReplacer("’", "'", "‘", "'")
	spellings = strings.NewReplacer("’", "'", "favorite", "favourite", "fave", "favourite", "fav ", "favourite ", "color", "colour")
)

// CanonicalKey folds spelling variants: "Favorite Color" and "favourite colour" are one key.
func CanonicalKey(key string) string {
	key = strings.ToLower(strings.Join(strings.Fields(key), " "))
	key = spellings.Replace(key)
	if strings.HasSuffix(key, " fav") {
		key = strings.TrimSuffix(key, " fav") + " favourite"
	}
	return key
}

// value captures a fact's value up to the next punctuation; cutClause then ends it where
// another clause starts. (Doing the second step in the pattern, with a lazy match and an
// alternation, made every sentence of a long history cost a backtracking search.)
const value = `([^,.;!?]+)`

// clauseStart is where a value ends inside its sentence: a word that starts another clause.
var clauseStart = regexp.MustCompile(`(?i)\s+(?:and|but|so|because|since|though|although|while|who|which|where|with|as|for|from|now|at the moment|right now|these days|nowadays|currently|after all|any ?more|last (?:year|month|week)|this (?:year|month|week)|recently|yesterday|a (?:year|month|week|while) ago|\d+ (?:years?|months?|weeks?|days?) ago|in \d{4})\b`)

// cutClause ends a captured value where another clause starts.
func cutClause(v string) string {
	if loc := clauseStart.FindStringIndex(v); loc != nil {
		v = v[:loc[0]]
	}
	return v
}

type statement struct {
	key string // fixed key, or "" when the pattern captures it first
	// hints: the pattern can only match a sentence that contains one of them (lowercase);
	// checking them first keeps a long history cheap to read every turn.
	hints []string
	re    *regexp.Regexp
	// list: the value accumulates items ("peanuts", then "shellfish").
	list bool
	// keyFormat turns a captured key into the fact key ("dog" to "dog's name").
	keyFormat string
}

func stmt(key, hints, pattern string) statement {
	return statement{key: key, hints: strings.Split(hints, "|"), re: regexp.MustCompile(`(?i)` + pattern)}
}

// statements are tried in order on each sentence; several may match one sentence.
var statements = []statement{
	stmt(KeyName, "name", `\bmy name(?:'s| is)\s+`+value),
	stmt(KeyName, "call me", `(?:^|\b(?:please|just|you can|you may)\s+)call me\s+`+value),
	stmt(KeyName, "called", `\b(?:i'm|i am|people call me) called\s+`+value),
	stmt(KeyName, "introduced", `\bintroduced (?:himself|herself|themselves|themself) as\s+`+value),
	stmt(KeyLocation, "live|reside|stay", `\bi (?:live|reside|stay) in\s+`+value),
	stmt(KeyLocation, "based|living|located", `\bi(?:'m| am) (?:based|living|located) in\s+`+value),
	stmt(KeyLocation, "moved|relocated", `\bi (?:just |recently )?(?:moved|relocated) to\s+`+value),
	stmt(KeyHometown, "from", `\bi(?:'m| am) (?:originally )?from\s+`+value),
	stmt(KeyHometown, "come from", `\bi (?:originally )?come from\s+`+value),
	stmt(KeyEmployer, "work", `\bi(?: work|'m working| am working) (?:at|for)\s+`+value),
	stmt(KeyEmployer, "employ", `\bi(?:'m| am) employed (?:at|by)\s+`+value),
	stmt(KeyEmployer, "employer|company", `\bmy (?:employer|company) is\s+`+value),
	stmt(KeyOccupation, "work as", `\bi work as (?:an? )?`+value),
	stmt(KeyOccupation, " as ", `\bi work (?:at|for) [^,.;!?]+? as (?:an? )?`+value),
	stmt(KeyOccupation, "job|occupation|profession", `\bmy (?:job|occupation|profession|job title) is (?:an? )?`+value),
	stmt(KeyOccupation, "by profession|by trade", `\bi(?:'m| am) an? ([a-z ]+?) by (?:profession|trade)\b`),
	stmt(KeyAge, "i'm|i am", `\bi(?:'m| am) (\d{1,3})(?: years? old| yrs? old| yo)?\s*(?:[,.!;]|$)`),
	stmt(KeyAge, " old", `\bi(?:'m| am) (\d{1,3}) years? old\b`),
	stmt(KeyAge, "my age", `\bmy age is (\d{1,3})\b`),
	{key: KeyAllergies, list: true, hints: []string{"allergic"}, re: regexp.MustCompile(`(?i)\bi(?:'m| am)(?: also| very| severely| really| quite| badly)? allergic to\s+([^,.;!?]+?(?:,\s*[^,.;!?]+?)*)` + `(?:\s+(?:but|so|because|since|though|which|who)\b|\s*[.;!?]|\s*$)`)},
	{key: KeyAllergies, list: true, hints: []string{"allergy"}, re: regexp.MustCompile(`(?i)\bi have an? ([a-z ]+?) allergy\b`)},
	{keyFormat: "favourite %s", hints: []string{"fav"}, re: regexp.MustCompile(`(?i)\bmy (?:favou?rite|fave|fav)\s+([a-z]+(?:\s+[a-z]+)?)\s+(?:is|are)\s+` + value)},
	{keyFormat: "%s's name", hints: []string{"named", "called"}, re: regexp.MustCompile(`(?i)\bi have an? ([a-z]+) (?:named|called)\s+` + value)},
	{keyFormat: "%s's name", hints: []string{"name", "called"}, re: regexp.MustCompile(`(?i)\bmy ([a-z]+)(?:'s name is| is (?:named|called))\s+` + value)},
}

func (st statement) mayMatch(lower string) bool {
	for _, h := range st.hints {
		if strings.Contains(lower, h) {
			return true
		}
	}
	return false
}

// generic is "my X is Y" for anything the statements above do not know.
var generic = regexp.MustCompile(`(?i)\bmy ([a-z]+(?:\s+[a-z]+){0,2}) (?:is|are)\s+` + value)

// secretWords mark keys that are never remembered: credentials and payment details stay in
// the transcript, not in a fact repeated back or put in a prompt.
var secretWords = regexp.MustCompile(`(?i)\b(password|passcode|passphrase|pin|ssn|social security|card|cvv|cvc|bank|account|iban|routing|secret|security|login|token|key|otp|code)\b`)

// notFacts are "my X" subjects that state a problem or an opinion, not a fact about the user.
var notFacts = map[string]bool{
	"question": true, "problem": true, "issue": true, "point": true, "concern": true, "guess": true,
	"bad": true, "pleasure": true, "mistake": true, "fault": true, "order": true, "internet": true,
	"wifi": true, "connection": true, "computer": true, "phone": true, "app": true, "screen": true,
	"request": true, "answer": true, "reply": true, "message": true, "turn": true, "bet": true,
	"favourite": true, "name": true, "age": true, "job": true, "occupation": true, "profession": true,
	"employer": true, "company": true, "home": true,
}

// problemValues are values that describe a problem ("my order is late"): not facts.
var problemValues = regexp.MustCompile(`(?i)^(not|no longer|never|broken|missing|late|wrong|down|slow|dead|stuck|gone|lost|damaged|empty|full|bad|terrible|awful|useless|fine|ok|okay|good|great|this|that|it|here|there)\b`)

var (
	forgetAll  = regexp.MustCompile(`(?i)\bforget (?:everything|all of (?:that|it)|all that|what i (?:said|told you)|everything i (?:said|told you))\b`)
	forgetKey  = regexp.MustCompile(`(?i)\bforget (?:about )?my ([a-z' ]+)`)
	notLiving  = regexp.MustCompile(`(?i)\bi (?:don't|do not|no longer) live in\b|\bi(?:'m| am) no longer (?:living|based) in\b`)
	notWorking = regexp.MustCompile(`(?i)\bi (?:don't|do not|no longer) work (?:at|for)\b|\bi(?:'m| am) no longer (?:working|employed) (?:at|for|by)\b|\bi (?:quit|left) my job\b`)
	notAllergy = regexp.MustCompile(`(?i)\bi(?:'m| am) not allergic to\s+` + value)
	notName    = regexp.MustCompile(`(?i)\bmy name is not\s+` + value)
	iAmName    = regexp.MustCompile(`\b(?:I'm|I am|Im|i'm|i am)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\s*(?:[,.!;]|$)`)
	sentences  = regexp.MustCompile(`[^.!?;\n]+[.!?;]*`)
	named      = regexp.MustCompile(`(?i)^(?:called|named)\b`)
)

// clauseStarts begin a new clause, not another item of a list.
var clauseStarts = map[string]bool{
	"what": true, "how": true, "can": true, "could": true, "should": true, "is": true, "are": true,
	"do": true, "does": true, "i": true, "you": true, "please": true, "which": true, "where": true,
	"when": true, "why": true, "who": true, "will": true, "would": true, "any": true, "so": true, "but": true,
}

// notNames are capitalised words after "I'm" that are not names.
var notNames = map[string]bool{
	"fine": true, "good": true, "ok": true, "okay": true, "here": true, "back": true, "sorry": true,
	"ready": true, "done": true, "new": true, "lost": true, "confused": true, "sure": true, "tired": true,
	"happy": true, "sad": true, "busy": true, "home": true, "late": true, "well": true, "great": true,
	"american": true, "british": true, "english": true, "french": true, "german": true, "spanish": true,
	"italian": true, "canadian": true, "australian": true, "chinese": true, "japanese": true, "indian": true,
	"irish": true, "scottish": true, "welsh": true, "mexican": true, "brazilian": true, "dutch": true,
	"not": true, "just": true, "still": true, "also": true, "so": true, "very": true, "really": true,
}

// Learn applies one user message: statements set facts (a later one replaces an earlier one),
// "I don't live in X any more" and "forget my name" remove them. It returns the facts the
// message stated.
func (f *Facts) Learn(message string) []Fact {
	message = quotes.Replace(message)
	if !utf8.ValidString(message) || strings.TrimSpace(message) == "" {
		return nil
	}
	var learned []Fact
	for _, sentence := range sentences.FindAllString(message, -1) {
		sentence = strings.TrimSpace(sentence)
		learned = append(learned, f.learnSentence(sentence)...)
	}
	return learned
}

func (f *Facts) learnSentence(s string) []Fact {
	lower := strings.ToLower(s)
	if strings.Contains(lower, "forget") {
		if forgetAll.MatchString(s) {
			f.forgetAll()
			return nil
		}
		if m := forgetKey.FindStringSubmatch(s); m != nil {
			f.forget(recallKey(cutClause(m[1])))
			return nil
		}
	}
	if strings.Contains(lower, "not") || strings.Contains(lower, "n't") || strings.Contains(lower, "no longer") ||
		strings.Contains(lower, "quit") || strings.Contains(lower, "left") {
		if notLiving.MatchString(s) {
			f.forget(KeyLocation)
		}
		if notWorking.MatchString(s) {
			f.forget(KeyEmployer)
			f.forget(KeyOccupation)
		}
		if m := notAllergy.FindStringSubmatch(s); m != nil {
			f.removeItem(KeyAllergies, cutClause(m[1]))
		}
		if m := notName.FindStringSubmatch(s); m != nil {
			if v, ok := f.values[KeyName]; ok && strings.EqualFold(v, cleanValue(cutClause(m[1]))) {
				f.forget(KeyName)
			}
		}
	}
	var learned []Fact
	seen := map[string]bool{}
	record := func(key, v string) {
		key = CanonicalKey(key)
		if seen[key] {
			return
		}
		seen[key] = true
		f.set(key, v)
		learned = append(learned, Fact{Key: key, Value: v})
	}
	for _, st := range statements {
		if !st.mayMatch(lower) {
			continue
		}
		m := st.re.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		key, raw := st.key, m[len(m)-1]
		if !st.list {
			raw = cutClause(raw)
		}
		if st.keyFormat != "" {
			subject := strings.ToLower(strings.TrimSpace(m[1]))
			if secretWords.MatchString(subject) || len(strings.Fields(subject)) > 2 {
				continue
			}
			key = strings.Replace(st.keyFormat, "%s", subject, 1)
		}
		if st.list {
			if v, ok := f.addItems(key, raw); ok {
				record(key, v)
			}
			continue
		}
		v, ok := validValue(key, raw)
		if !ok {
			continue
		}
		record(key, v)
	}
	if _, named := seen[KeyName]; !named && (strings.Contains(lower, "i'm ") || strings.Contains(lower, "i am ") || strings.Contains(lower, "im ")) {
		if m := iAmName.FindStringSubmatch(s); m != nil && !notNames[strings.ToLower(strings.Fields(m[1])[0])] && !strings.HasSuffix(strings.Fields(m[1])[0], "ing") {
			record(KeyName, m[1])
		}
	}
	if !strings.Contains(lower, "my ") {
		return learned
	}
	for _, m := range generic.FindAllStringSubmatch(s, -1) {
		subject := strings.ToLower(strings.Join(strings.Fields(m[1]), " "))
		first := strings.Fields(subject)[0]
		last := strings.Fields(subject)[len(strings.Fields(subject))-1]
		if notFacts[subject] || notFacts[first] || notFacts[last] || secretWords.MatchString(subject) ||
			strings.HasPrefix(first, "fav") || strings.HasSuffix(subject, "'s name") || strings.HasSuffix(subject, " name") {
			continue
		}
		if seen[CanonicalKey(subject)] {
			continue
		}
		if named.MatchString(m[2]) {
			continue
		}
		if v, ok := validValue(subject, cutClause(m[2])); ok {
			record(subject, v)
		}
	}
	return learned
}

// validValue cleans a captured value and says whether it is worth remembering.
func validValue(key, raw string) (string, bool) {
	if strings.ContainsAny(raw, "<>{}[]`\\|") {
		// Markup or code is not something a person says about themselves.
		return "", false
	}
	v := cleanValue(raw)
	if v == "" || len(v) > maxValueChars || len(strings.Fields(v)) > maxValueWords || problemValues.MatchString(v) {
		return "", false
	}
	if key == KeyName {
		if len(strings.Fields(v)) > 4 || strings.ContainsAny(v, "0123456789@") {
			return "", false
		}
		v = titleCase(v)
	}
	return v, true
}

func cleanValue(raw string) string {
	v := strings.Join(strings.Fields(raw), " ")
	v = strings.Trim(v, ` "'.,;:!?-`)
	// A value is plain words: no markup or instructions.
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || strings.ContainsRune("<>{}[]`#*_|\\", r) {
			return -1
		}
		return r
	}, v)
	return strings.TrimSpace(v)
}

func titleCase(v string) string {
	words := strings.Fields(v)
	for i, w := range words {
		r, size := utf8.DecodeRuneInString(w)
		if unicode.IsLower(r) {
			words[i] = string(unicode.ToUpper(r)) + w[size:]
		}
	}
	return strings.Join(words, " ")
}

var itemSplit = regexp.MustCompile(`(?i)\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s+or\s+|\s+&\s+)\s*`)

// addItems adds the items of raw to a list fact, reporting the new value.
func (f *Facts) addItems(key, raw string) (string, bool) {
	items := f.items(key)
	added := false
	for _, it := range itemSplit.Split(raw, -1) {
		it = cleanValue(it)
		it = strings.TrimPrefix(strings.TrimPrefix(it, "also "), "all ")
		if fields := strings.Fields(strings.ToLower(it)); len(fields) > 0 && clauseStarts[fields[0]] {
			// "I'm allergic to peanuts, what can I eat?": the list ended at the comma.
			break
		}
		if it == "" || len(it) > maxValueChars || len(strings.Fields(it)) > 4 || problemValues.MatchString(it) {
			continue
		}
		if !slices.ContainsFunc(items, func(x string) bool { return strings.EqualFold(x, it) }) {
			items = append(items, it)
			added = true
		}
	}
	if !added {
		return "", false
	}
	return JoinList(items), true
}

func (f *Facts) removeItem(key, raw string) {
	gone := strings.ToLower(cleanValue(raw))
	items := slices.DeleteFunc(f.items(key), func(x string) bool {
		x = strings.ToLower(x)
		return x == gone || strings.HasPrefix(gone, x+" ")
	})
	if len(items) == 0 {
		f.forget(key)
		return
	}
	f.set(key, JoinList(items))
}

// items splits a list fact into its items.
func (f *Facts) items(key string) []string {
	v, ok := f.values[CanonicalKey(key)]
	if !ok || v == "" {
		return nil
	}
	return itemSplit.Split(v, -1)
}

// Items returns the items of a list fact such as allergies.
func (f *Facts) Items(key string) []string { return f.items(key) }

// JoinList writes items as English: "a", "a and b", "a, b and c".
func JoinList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// LearnSummary reads facts from a running summary: the extractive one quotes the user
// ("User: my name is John."), a model's is in the third person ("The user's name is John and
// they live in New York").
func (f *Facts) LearnSummary(summary string) {
	for _, line := range strings.Split(summary, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "User:"):
			f.Learn(strings.TrimSpace(strings.TrimPrefix(line, "User:")))
		case strings.HasPrefix(line, "Assistant:"):
		default:
			f.Learn(thirdToFirst(line))
		}
	}
}

var thirdPerson = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\bthe user's\b`), "my"},
	{regexp.MustCompile(`(?i)\b(?:the user|they|he|she) (?:is|are)\b`), "I am"},
	{regexp.MustCompile(`(?i)\b(?:the user|they|he|she) (live|work|reside|come)s?\b`), "I $1"},
	{regexp.MustCompile(`(?i)\b(?:the user|they|he|she) (moved|relocated|introduced)\b`), "I $1"},
	{regexp.MustCompile(`(?i)\b(?:their|his|her) (name|favou?rite|age|birthday)\b`), "my $1"},
}

func thirdToFirst(s string) string {
	for _, t := range thirdPerson {
		s = t.re.ReplaceAllString(s, t.with)
	}
	return s
}
