package rag

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// HashConfig configures the local embedder.
type HashConfig struct {
	// Dims is the vector size. Default 1024.
	Dims int
}

// HashEmbedder is the offline embedder: a hashed bag of word stems, word pairs and
// character trigrams, with sublinear term weights, L2-normalized. It needs no model and no
// network, is deterministic, and its cosine similarity tracks keyword overlap: "refunds" finds
// "refund" and "refunded". It knows nothing of synonyms.
type HashEmbedder struct {
	dims int
}

var _ Embedder = (*HashEmbedder)(nil)

// hashModelVersion changes whenever the features change, so stale cached vectors are never
// compared with new ones.
const hashModelVersion = "local-hash-v1"

// NewHashEmbedder builds the local embedder.
func NewHashEmbedder(cfg HashConfig) *HashEmbedder {
	if cfg.Dims <= 0 {
		cfg.Dims = 1024
	}
	return &HashEmbedder{dims: cfg.Dims}
}

// Model implements Embedder.
func (e *HashEmbedder) Model() string { return fmt.Sprintf("%s-%d", hashModelVersion, e.dims) }

// DefaultThreshold is the cosine a chunk needs to count as relevant: bag-of-words vectors of
// a short question and a long section overlap far less than a model's embeddings do.
func (e *HashEmbedder) DefaultThreshold() float64 { return 0.15 }

// Embed implements Embedder.
func (e *HashEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = e.vector(t)
	}
	return out, nil
}

// Feature weights: a stem counts most, a pair of neighbouring stems a little (phrases), and
// trigrams a little (spelling variants the stemmer misses).
const (
	wordWeight    = 1.0
	pairWeight    = 0.5
	trigramWeight = 0.25
)

func (e *HashEmbedder) vector(text string) []float32 {
	type feature struct {
		weight float64
		count  int
	}
	features := map[string]*feature{}
	add := func(key string, weight float64) {
		if f, ok := features[key]; ok {
			f.count++
			return
		}
		features[key] = &feature{weight: weight, count: 1}
	}
	stems := Terms(text)
	for i, s := range stems {
		add("w:"+s, wordWeight)
		if i > 0 {
			add("p:"+stems[i-1]+" "+s, pairWeight)
		}
		r := []rune(" " + s + " ")
		for j := 0; j+3 <= len(r); j++ {
			add("t:"+string(r[j:j+3]), trigramWeight)
		}
	}
	v := make([]float64, e.dims)
	for key, f := range features {
		h := fnv.New64a()
		h.Write([]byte(key))
		sum := h.Sum64()
		idx := int(sum % uint64(e.dims))
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1 // signed hashing: collisions cancel out on average instead of piling up
		}
		// Sublinear: a word said ten times is not ten times as relevant.
		v[idx] += sign * f.weight * (1 + math.Log(float64(f.count)))
	}
	return normalize(v)
}

func normalize(v []float64) []float32 {
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, len(v))
	if norm == 0 {
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// Cosine is the cosine similarity of two vectors; 0 when either is zero or their sizes differ.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

var stopwords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an the and or but if of to in on at by for with about from into as is are was were be been being
		do does did doing done have has had having i i'm i've me my mine we our ours you you're your yours he him his she her it it's its
		they them their this that these those what which who whom whose how why when where can could would should will shall may might
		must there here not no nor yes so than then too very just also any some all more most other such only own same s t don't
		can't won't isn't aren't doesn't didn't please tell know want need get got let like one ok okay hi hello hey thanks thank
		am up out over again further once under while each few both off something anything everything nothing
		someone anyone thing things long much many take takes taking took i'd i'll we're we've you've you'll
		it'll that's there's what's really actually quite`) {
		stopwords[w] = true
	}
}

// Terms lowercases text, drops stopwords and reduces each word to a rough stem, so
// "Refunds were refunded" gives [refund refund]. Numbers are kept.
func Terms(text string) []string {
	var out []string
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' && r != '’'
	})
	for _, w := range words {
		w = strings.Trim(strings.ReplaceAll(w, "’", "'"), "'")
		if w == "" || stopwords[w] {
			continue
		}
		w = strings.TrimSuffix(w, "'s")
		if stopwords[w] {
			continue
		}
		if s := stem(w); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// stem strips the commonest English suffixes; a light stemmer, not Porter's.
func stem(w string) string {
	if len([]rune(w)) <= 3 {
		return w
	}
	for _, suf := range []string{"ational", "fulness", "iveness", "ization", "ations", "ation", "ments", "ment", "ness", "ingly", "ings", "ing", "edly", "ies", "ied", "ed", "ly", "es", "s"} {
		base, ok := strings.CutSuffix(w, suf)
		if !ok || len([]rune(base)) < 3 || (suf == "ly" && len([]rune(base)) < 5) {
			continue
		}
		switch suf {
		case "ies", "ied":
			base += "y"
		case "s":
			if strings.HasSuffix(base, "s") || strings.HasSuffix(base, "u") || strings.HasSuffix(base, "i") {
				continue // "address", "status", "analysis"
			}
		case "es":
			// "boxes", "matches", "wishes" drop "es"; "prices", "charges" drop only "s".
			if !strings.HasSuffix(base, "x") && !strings.HasSuffix(base, "ch") && !strings.HasSuffix(base, "sh") && !strings.HasSuffix(base, "ss") {
				base += "e"
			}
		}
		// "shipped" -> "shipp" -> "ship"; "billing" -> "bill" stays.
		if n := len(base); (suf == "ed" || suf == "ing") && n >= 2 && base[n-1] == base[n-2] && !strings.ContainsRune("lsz", rune(base[n-1])) {
			base = base[:n-1]
		}
		return trimE(base)
	}
	return trimE(w)
}

// trimE drops a final silent "e" so "charge", "charged" and "charging" meet at "charg".
func trimE(w string) string {
	if len(w) > 3 && strings.HasSuffix(w, "e") {
		return w[:len(w)-1]
	}
	return w
}
