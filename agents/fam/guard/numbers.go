package guard

import (
	"regexp"
	"strings"
)

// Numbers is the set of figures a reply may use without suspicion: those in the question,
// the conversation and the agent's knowledge. Build it with NewNumbers; it is read-only after.
type Numbers struct {
	known map[string]bool
}

var (
	figure = regexp.MustCompile(`\d+(?:[.,]\d+)*`)
	// wordNumbers are number words a user may write where a reply uses digits.
	wordNumbers = map[string]string{
		"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
		"seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
		"thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
		"eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
		"fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
		"hundred": "100", "thousand": "1000", "million": "1000000", "dozen": "12",
	}
)

// NewNumbers collects the figures of sources.
func NewNumbers(sources ...string) *Numbers {
	n := &Numbers{known: map[string]bool{}}
	for _, s := range sources {
		for _, f := range Figures(s) {
			n.known[f] = true
		}
		for _, w := range strings.FieldsFunc(s, notLetter) {
			if len(w) < 3 || len(w) > 9 {
				continue // no number word is shorter or longer
			}
			if d, ok := wordNumbers[strings.ToLower(w)]; ok {
				n.known[d] = true
			}
		}
	}
	return n
}

func notLetter(r rune) bool { return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') }

// Figures returns the numbers written in text, canonical: thousands separators dropped,
// trailing decimal zeros and leading zeros trimmed ("1,200.50" is "1200.5", "05" is "5").
func Figures(text string) []string {
	var out []string
	for _, raw := range figure.FindAllString(text, -1) {
		out = append(out, canonicalFigure(raw))
	}
	return out
}

func canonicalFigure(raw string) string {
	// A comma followed by exactly three digits separates thousands; any other comma is a
	// decimal point (1,5 in much of Europe).
	parts := strings.Split(raw, ",")
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1:] {
		digits := p
		if i := strings.IndexByte(p, '.'); i >= 0 {
			digits = p[:i]
		}
		if len(digits) == 3 {
			b.WriteString(p)
		} else {
			b.WriteString("." + p)
		}
	}
	s := b.String()
	if i := strings.IndexByte(s, '.'); i >= 0 {
		// Only the first point is decimal; a second one ("1.2.3", a version) keeps its digits.
		intPart, frac := s[:i], strings.ReplaceAll(s[i+1:], ".", "")
		frac = strings.TrimRight(frac, "0")
		s = intPart
		if frac != "" {
			s += "." + frac
		}
	}
	s = strings.TrimLeft(s, "0")
	if s == "" || s[0] == '.' {
		s = "0" + s
	}
	return s
}

// Unverified returns the figures of text that are not known. Whole numbers below 10 are
// never suspicious: "2 steps", "option 3".
func (n *Numbers) Unverified(text string) []string {
	var out []string
	for _, f := range Figures(text) {
		if n.known[f] || small(f) {
			continue
		}
		if !containsString(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func small(f string) bool { return len(f) == 1 }

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
