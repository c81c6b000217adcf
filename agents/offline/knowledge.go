package offline

import (
	_ "embed"
	"math"
	"sort"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/nlu"
)

//go:embed knowledge.md
var builtinKnowledge string

// Section is one entry of a knowledge base.
type Section struct {
	Title string
	Body  string
}

// ParseKnowledge splits markdown into sections at "# " headings.
func ParseKnowledge(md string) []Section {
	var out []Section
	for _, block := range strings.Split("\n"+md, "\n# ") {
		block = strings.TrimSpace(block)
		if block == "" {
			continue
		}
		title, body, _ := strings.Cut(block, "\n")
		out = append(out, Section{Title: strings.TrimSpace(strings.TrimPrefix(title, "# ")), Body: strings.TrimSpace(body)})
	}
	return out
}

// Index ranks sections for a query with BM25 over their words.
type Index struct {
	sections []Section
	docs     []map[string]int
	lengths  []int
	avgLen   float64
	df       map[string]int
}

// NewIndex indexes sections; titles count twice, since they say what a section is about.
func NewIndex(sections []Section) *Index {
	ix := &Index{sections: sections, df: map[string]int{}}
	total := 0
	for _, s := range sections {
		counts := map[string]int{}
		words := terms(s.Title + " " + s.Title + " " + s.Body)
		for _, w := range words {
			counts[w]++
		}
		for w := range counts {
			ix.df[w]++
		}
		ix.docs = append(ix.docs, counts)
		ix.lengths = append(ix.lengths, len(words))
		total += len(words)
	}
	if len(sections) > 0 {
		ix.avgLen = float64(total) / float64(len(sections))
	}
	return ix
}

// Hit is a ranked section.
type Hit struct {
	Section Section
	Score   float64
	// Matched is how many distinct query terms the section contains.
	Matched int
}

// Search returns sections ranked by BM25, best first, skipping those that match nothing.
func (ix *Index) Search(query string, limit int) []Hit {
	const k1, b = 1.2, 0.75
	qterms := uniq(terms(query))
	var hits []Hit
	n := float64(len(ix.sections))
	for i, doc := range ix.docs {
		score, matched := 0.0, 0
		for _, t := range qterms {
			tf := float64(doc[t])
			if tf == 0 {
				continue
			}
			matched++
			df := float64(ix.df[t])
			idf := math.Log(1 + (n-df+0.5)/(df+0.5))
			score += idf * tf * (k1 + 1) / (tf + k1*(1-b+b*float64(ix.lengths[i])/ix.avgLen))
		}
		if matched > 0 {
			hits = append(hits, Hit{Section: ix.sections[i], Score: score, Matched: matched})
		}
	}
	sort.SliceStable(hits, func(a, b int) bool { return hits[a].Score > hits[b].Score })
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	return hits
}

var stopwords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an the and or but if of to in on at by for with about from into as is are was were be been being
		do does did doing have has had i me my we our you your he she it its they them their this that these those what which who whom
		how why when where can could would should will shall may might must there here not no yes so than then too very just also any
		some all more most other such only own same s t don't can't tell please know want need get give let make like use using one
		dartmouth gateway`) {
		stopwords[w] = true
	}
}

// terms lowercases, drops stopwords and strips a plural or verb "s" so "keys" finds "key".
func terms(text string) []string {
	var out []string
	for _, w := range strings.Fields(strings.ReplaceAll(nlu.Normalize(text), "?", " ")) {
		w = strings.Trim(w, "'")
		if len(w) < 2 || stopwords[w] {
			continue
		}
		if len(w) > 4 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = strings.TrimSuffix(w, "s")
		}
		out = append(out, w)
	}
	return out
}

func uniq(ws []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range ws {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}
