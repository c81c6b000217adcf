package rag

import (
	"math"
	"slices"
	"testing"
)

func TestHashEmbedderIsDeterministicAndNormalized(t *testing.T) {
	a, b := NewHashEmbedder(HashConfig{}), NewHashEmbedder(HashConfig{})
	texts := []string{"Refunds go back to the original card within 7 days.", "Ünïcödé ✓ works too", ""}
	va, err := a.Embed(t.Context(), texts)
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := b.Embed(t.Context(), texts)
	for i := range texts {
		if !slices.Equal(va[i], vb[i]) {
			t.Fatalf("text %d: two embedders disagree", i)
		}
		if len(va[i]) != 1024 {
			t.Fatalf("dims %d", len(va[i]))
		}
	}
	for i, v := range va[:2] {
		var norm float64
		for _, x := range v {
			norm += float64(x) * float64(x)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("text %d: norm² %f, want 1", i, norm)
		}
	}
	if Cosine(va[2], va[0]) != 0 {
		t.Error("an empty text must be similar to nothing")
	}
	if a.Model() == NewHashEmbedder(HashConfig{Dims: 256}).Model() {
		t.Error("the model name must change with the size, so vectors of two sizes never meet")
	}
}

func TestHashEmbedderSimilarity(t *testing.T) {
	e := NewHashEmbedder(HashConfig{})
	sim := func(x, y string) float64 {
		v, err := e.Embed(t.Context(), []string{x, y})
		if err != nil {
			t.Fatal(err)
		}
		return Cosine(v[0], v[1])
	}
	const refunds = "You can return items within 30 days for a full refund to your original payment method."
	const shipping = "Standard delivery takes 3 to 5 working days; express arrives the next day."
	tests := []struct {
		name            string
		query           string
		closer, farther string
	}{
		{"shared words", "how do I get a refund", refunds, shipping},
		{"plural and tense variants", "refunded returns", refunds, shipping},
		{"delivery question", "when will my delivery arrive", shipping, refunds},
		{"word order does not hide the words", "refund full", "full refund available", "free delivery"},
	}
	for _, tt := range tests {
		if c, f := sim(tt.query, tt.closer), sim(tt.query, tt.farther); c <= f || c <= 0.1 {
			t.Errorf("%s: %q should be closer to %q (%.3f) than to %q (%.3f)", tt.name, tt.query, tt.closer, c, tt.farther, f)
		}
	}
	if s := sim(refunds, refunds); math.Abs(s-1) > 1e-5 {
		t.Errorf("self-similarity %f", s)
	}
	if s := sim("tell me a joke", refunds); s > 0.1 {
		t.Errorf("unrelated texts score %.3f", s)
	}
}

func TestTerms(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Refunds were refunded", []string{"refund", "refund"}},
		{"shipping shipped ships", []string{"ship", "ship", "ship"}},
		{"billing bills", []string{"bill", "bill"}},
		{"charges charged charging charge", []string{"charg", "charg", "charg", "charg"}},
		{"boxes addresses status", []string{"box", "address", "status"}},
		{"deliveries delivery", []string{"delivery", "delivery"}},
		{"What's the customer's password?", []string{"customer", "password"}},
		{"I'd like 2 items, please!", []string{"2", "item"}},
		{"the and of", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := Terms(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Terms(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCosine(t *testing.T) {
	tests := []struct {
		name string
		a, b []float32
		want float64
	}{
		{"same direction", []float32{1, 2}, []float32{2, 4}, 1},
		{"opposite", []float32{1, 0}, []float32{-1, 0}, -1},
		{"orthogonal", []float32{1, 0}, []float32{0, 3}, 0},
		{"zero vector", []float32{0, 0}, []float32{1, 1}, 0},
		{"sizes differ", []float32{1}, []float32{1, 0}, 0},
		{"empty", nil, nil, 0},
	}
	for _, tt := range tests {
		if got := Cosine(tt.a, tt.b); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: %f, want %f", tt.name, got, tt.want)
		}
	}
}
