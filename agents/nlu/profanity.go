package nlu

import (
	"regexp"
	"strings"
)

// The earlier system matched swearing with patterns such as `\bfuck\b`, which missed
// "fucking". Here a word is compared with a lexicon of stems in every inflection, after
// undoing the usual disguises: masking characters (f*ck, f**k, sh#t), look-alike digits and
// symbols (sh1t, @ss, $hit), dots and dashes (f.u.c.k) and stretched letters (fuuuck).

// strongStems swear in any word that contains them: no English word does, bar those in
// containsAllowed.
var strongStems = []string{"fuck", "shit"}

// containsAllowed are ordinary words that contain a strong stem.
var containsAllowed = wordSet("shiitake shitake mishit mishits mishitting")

// strongForms and mildForms are whole words; inflections are generated from the stems.
var (
	strongForms = buildForms(map[string][]string{
		"fuck":     {"", "s", "ed", "er", "ers", "in", "ing", "ings", "face", "head", "wit", "up", "ups"},
		"fuk":      {"", "s", "ed", "in", "ing", "er"},
		"fck":      {"", "s", "ed", "in", "ing", "er"},
		"fk":       {"", "in", "ing", "n"},
		"phuck":    {"", "ing", "ed"},
		"fuq":      {"", "ing"},
		"shit":     {"", "s", "ty", "tier", "ting", "ted", "e", "ter", "head", "hole", "show", "face"},
		"bitch":    {"", "es", "ing", "y", "ed"},
		"bastard":  {"", "s"},
		"asshole":  {"", "s"},
		"arsehole": {"", "s"},
		"cunt":     {"", "s"},
		"dickhead": {"", "s"},
		"twat":     {"", "s"},
		"wanker":   {"", "s"},
		"bollocks": {""},
		"wtf":      {""},
		"stfu":     {""},
		"ffs":      {""},
		"omfg":     {""},
	}, "ass", "arse", "jackass", "dumbass", "smartass", "bullshit", "horseshit", "dipshit", "batshit", "apeshit", "clusterfuck", "mindfuck", "sonofabitch")
	mildForms = buildForms(map[string][]string{
		"damn":     {"", "ed", "it", "s", "n"},
		"dammit":   {""},
		"goddamn":  {"", "ed", "it"},
		"crap":     {"", "s", "py", "pier", "piest", "ped"},
		"piss":     {"", "ed", "es", "ing"},
		"effing":   {""},
		"frigging": {""},
		"friggin":  {""},
	})
)

// mildPhrases are mild oaths of more than one word, over the normalized text.
var mildPhrases = regexp.MustCompile(`\b(what the hell|the hell|bloody hell|hell no|go to hell|for crying out loud)\b`)

func buildForms(stems map[string][]string, extra ...string) map[string]bool {
	out := map[string]bool{}
	for stem, suffixes := range stems {
		for _, s := range suffixes {
			out[stem+s] = true
		}
	}
	for _, w := range extra {
		out[w] = true
	}
	return out
}

// symbolSwaps and digitSwaps undo look-alike characters inside a word. Digits are undone only
// in words that are mostly letters, so a model name such as "A55" stays a model name.
var (
	symbolSwaps = strings.NewReplacer("@", "a", "$", "s", "!", "i", "€", "e")
	digitSwaps  = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t")
	separators  = strings.NewReplacer(".", "", "-", "", "'", "", "’", "")
)

func mostlyLetters(w string) bool {
	letters, digits := 0, 0
	for _, r := range w {
		switch {
		case r >= 'a' && r <= 'z':
			letters++
		case r >= '0' && r <= '9':
			digits++
		}
	}
	return letters >= 2 && digits <= letters
}

// masks stand for hidden letters.
const masks = "*#%_"

var tokenSplit = regexp.MustCompile(`[\s,;:?"()\[\]{}<>/\\]+`)

// findProfanity reports strong and mild swearing in text, and the words found as written.
func findProfanity(text string) (strong, mild bool, found []string) {
	raw := tokenSplit.Split(strings.ToLower(text), -1)
	for i, tok := range raw {
		word := strings.Trim(tok, ".!'’-")
		if word == "" {
			continue
		}
		isStrong, isMild := classifySwear(word)
		if !isStrong && !isMild {
			continue
		}
		if i+1 < len(raw) && positiveWords[strings.Trim(raw[i+1], ".!'’-")] {
			// Swearing as praise ("fucking brilliant", "damn good") is not frustration.
			continue
		}
		strong = strong || isStrong
		mild = mild || isMild
		found = append(found, word)
	}
	if mildPhrases.MatchString(Normalize(text)) {
		mild = true
	}
	return strong, mild, found
}

// classifySwear reports whether one lowercase word is a strong or mild swear word.
func classifySwear(word string) (strong, mild bool) {
	if !strings.ContainsAny(word, "abcdefghijklmnopqrstuvwxyz") && !strings.ContainsAny(word, "@$") {
		return false, false
	}
	candidates := []string{word}
	// Dots and dashes between letters: f.u.c.k, s-h-i-t.
	if spaced := separators.Replace(word); spaced != word {
		candidates = append(candidates, spaced)
	}
	for _, c := range append([]string(nil), candidates...) {
		swapped := symbolSwaps.Replace(c)
		if mostlyLetters(swapped) {
			swapped = digitSwaps.Replace(swapped)
		}
		if swapped != c {
			candidates = append(candidates, swapped)
		}
	}
	for _, c := range append([]string(nil), candidates...) {
		if squeezed := squeeze(c); squeezed != c {
			candidates = append(candidates, squeezed)
		}
	}
	for _, c := range candidates {
		if s, m := matchSwear(c); s || m {
			return s, m
		}
	}
	return false, false
}

func matchSwear(w string) (strong, mild bool) {
	if strings.ContainsAny(w, masks) {
		return matchMasked(w, strongForms), matchMasked(w, mildForms)
	}
	if strongForms[w] {
		return true, false
	}
	if mildForms[w] {
		return false, true
	}
	if !containsAllowed[w] {
		for _, stem := range strongStems {
			if strings.Contains(w, stem) {
				return true, false
			}
		}
	}
	return false, false
}

// matchMasked matches a word with masking characters against forms of the same length: the
// first letter must be shown and every shown letter must agree.
func matchMasked(w string, forms map[string]bool) bool {
	if strings.ContainsRune(masks, rune(w[0])) {
		return false
	}
	for form := range forms {
		if len(form) != len(w) || len(form) < 3 {
			continue
		}
		ok := true
		for i := 0; i < len(w) && ok; i++ {
			ok = w[i] == form[i] || strings.IndexByte(masks, w[i]) >= 0
		}
		if ok {
			return true
		}
	}
	return false
}

// squeeze shortens runs of three or more of a letter to one: "fuuuuck" to "fuck".
func squeeze(w string) string {
	var b strings.Builder
	for i := 0; i < len(w); {
		j := i
		for j < len(w) && w[j] == w[i] {
			j++
		}
		if j-i >= 3 {
			b.WriteByte(w[i])
		} else {
			b.WriteString(w[i:j])
		}
		i = j
	}
	return b.String()
}
