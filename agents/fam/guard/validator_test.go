package guard_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/fam/guard"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// source streams pieces as chunks, then usage (unless noUsage), then err; it records how far
// the consumer read.
type source struct {
	pieces  []string
	model   string
	noUsage bool
	err     error
	// stoppedAt is how many pieces were taken before the consumer stopped; -1 if it read all.
	stoppedAt int
}

func (s *source) stream() iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		s.stoppedAt = -1
		for i, p := range s.pieces {
			if !yield(llm.Chunk{Text: p, Provider: "fake", Model: s.model}, nil) {
				s.stoppedAt = i + 1
				return
			}
		}
		if !s.noUsage {
			if !yield(llm.Chunk{Provider: "fake", Model: s.model, Usage: &llm.Usage{InputTokens: 10, OutputTokens: 5}}, nil) {
				return
			}
		}
		if s.err != nil {
			yield(llm.Chunk{}, s.err)
		}
	}
}

type result struct {
	deltas []string // non-empty texts, in order
	text   string
	usage  *llm.Usage
	err    error
	model  string
}

func run(stream iter.Seq2[llm.Chunk, error]) result {
	var r result
	for c, err := range stream {
		if err != nil {
			r.err = err
			break
		}
		if c.Usage != nil {
			r.usage = c.Usage
		}
		if c.Model != "" {
			r.model = c.Model
		}
		if c.Text != "" {
			r.deltas = append(r.deltas, c.Text)
			r.text += c.Text
		}
	}
	return r
}

func check(t *testing.T, mod func(*guard.Check)) guard.Check {
	t.Helper()
	c := guard.Check{Constraints: mustConstraints(t, guard.Config{})}
	if mod != nil {
		mod(&c)
	}
	return c
}

// Plain prose streams through untouched, chunk for chunk.
func TestPlainTextStreamsAsGenerated(t *testing.T) {
	src := &source{pieces: []string{"Once ", "upon ", "a ", "time. ", "The ", "end."}, model: "m"}
	r := run(check(t, nil).Stream(src.stream()))
	if !slices.Equal(r.deltas, src.pieces) {
		t.Errorf("deltas = %q, want the source's %q", r.deltas, src.pieces)
	}
	if r.usage == nil || r.usage.OutputTokens != 5 || r.model != "m" || r.err != nil {
		t.Errorf("usage/model/err = %+v/%q/%v", r.usage, r.model, r.err)
	}
}

// From a risk marker on, the sentence is held until it ends, then released whole if clean.
func TestRiskySentenceIsHeldUntilItEnds(t *testing.T) {
	src := &source{pieces: []string{"You can ", "ship ", "it ", "yourself. ", "Bye."}}
	c := check(t, nil)
	var seen []string
	for ch := range c.Stream(src.stream()) {
		seen = append(seen, ch.Text)
	}
	want := []string{"You can ", "", "", "ship it yourself. ", "Bye.", ""}
	if !slices.Equal(seen, want) {
		t.Errorf("chunks = %q, want %q", seen, want)
	}
}

func TestConstraintBreachIsRedirectedAndStopsTheModel(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		strict bool
		kind   guard.Kind
		want   string // what the client sees
	}{
		{"price quoted mid-reply", []string{"Happy to help. ", "The pro plan ", "costs ", "$20 ", "a month. ", "It also has more voices."}, false, guard.Prices,
			"Happy to help. The pro plan — actually, "},
		{"delivery promised", []string{"Good news! ", "Your order will arrive by Friday. ", "Anything else?"}, false, guard.Delivery,
			"Good news! Your order will — actually, "},
		{"strict turn shows nothing of the bad sentence", []string{"Good news! ", "Your order will arrive by Friday. ", "Anything else?"}, true, guard.Delivery,
			"Good news! "},
		{"medical dose", []string{"Take 400 mg ", "every six hours. ", "Then rest."}, false, guard.Medical, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &source{pieces: tt.pieces}
			var issues []guard.Issue
			c := check(t, func(c *guard.Check) {
				c.Strict = tt.strict
				c.Report = func(i guard.Issue) { issues = append(issues, i) }
				c.EstimateUsage = func(generated string) llm.Usage { return llm.Usage{OutputTokens: int64(len(generated))} }
				c.Finish = func(string) string { return "never added after a breach" }
			})
			r := run(c.Stream(src.stream()))
			redirect := c.Constraints.Redirect(tt.kind, 0)
			if !strings.HasPrefix(r.text, tt.want) || !strings.HasSuffix(r.text, redirect[1:]) {
				t.Errorf("text = %q, want %q then the %s redirect", r.text, tt.want, tt.kind)
			}
			for _, leaked := range []string{"$20", "Friday", "400", "more voices", "Anything else?", "never added", "rest"} {
				if strings.Contains(r.text, leaked) {
					t.Errorf("text %q leaks %q", r.text, leaked)
				}
			}
			if src.stoppedAt < 0 {
				t.Error("the model was not stopped after the breach")
			}
			if r.usage == nil || r.usage.OutputTokens == 0 {
				t.Errorf("usage = %+v, want the estimate of what was generated", r.usage)
			}
			if len(issues) == 0 || issues[0].Kind != "constraint" || issues[0].Constraint != tt.kind {
				t.Errorf("issues = %+v", issues)
			}
		})
	}
}

func TestFigures(t *testing.T) {
	reply := []string{"Dartmouth ", "supports ", "42 languages ", "and 3 tiers. ", "The free plan allows ", "20 requests an hour."}
	known := guard.NewNumbers("What does the free plan allow? It says twenty somewhere.")
	tests := []struct {
		policy guard.NumberPolicy
		want   string
	}{
		{guard.NumbersCaveat, "Dartmouth supports 42 languages and 3 tiers. The free plan allows 20 requests an hour. (Please double-check the figure 42: I couldn't verify it from our conversation.)"},
		{guard.NumbersWithhold, "Dartmouth supports — I don't have a figure I can vouch for there. The free plan allows 20 requests an hour."},
		{guard.NumbersReport, "Dartmouth supports 42 languages and 3 tiers. The free plan allows 20 requests an hour."},
	}
	for _, tt := range tests {
		var figures []string
		c := check(t, func(c *guard.Check) {
			c.Known = known
			c.Config.Numbers = tt.policy
			c.Report = func(i guard.Issue) { figures = append(figures, i.Figures...) }
		})
		r := run(c.Stream((&source{pieces: reply}).stream()))
		if r.text != tt.want {
			t.Errorf("policy %d: text = %q, want %q", tt.policy, r.text, tt.want)
		}
		if !slices.Equal(figures, []string{"42"}) {
			t.Errorf("policy %d: reported figures %v, want [42]", tt.policy, figures)
		}
	}
	// Without Known (a calculation), figures are not checked.
	r := run(check(t, nil).Stream((&source{pieces: []string{"6 * 7 = 42."}}).stream()))
	if r.text != "6 * 7 = 42." {
		t.Errorf("text = %q", r.text)
	}
}

func TestFiguresCanonical(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"1,200.50 and 05 and 3.0", []string{"1200.5", "5", "3"}},
		{"version 1.2.3", []string{"1.23"}},
		{"1,5 litres", []string{"1.5"}},
		{"0.25", []string{"0.25"}},
		{"no numbers", nil},
	}
	for _, tt := range tests {
		if got := guard.Figures(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("Figures(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
	n := guard.NewNumbers("I paid 1,200 for twelve seats")
	if got := n.Unverified("That's 1200 for 12 seats, 7 days, and 365 days a year."); !slices.Equal(got, []string{"365"}) {
		t.Errorf("Unverified = %v, want [365]", got)
	}
}

func TestLengthLimit(t *testing.T) {
	sentence := "This sentence is exactly fifty characters long ok. "
	var pieces []string
	for range 10 {
		pieces = append(pieces, sentence)
	}
	var issues []guard.Issue
	c := check(t, func(c *guard.Check) {
		c.Config.MaxChars = 120
		c.Report = func(i guard.Issue) { issues = append(issues, i) }
	})
	src := &source{pieces: pieces}
	r := run(c.Stream(src.stream()))
	if r.text != strings.Repeat(sentence, 3) {
		t.Errorf("text = %q, want it to end at the sentence that passes 120 characters", r.text)
	}
	if src.stoppedAt < 0 || len(issues) != 1 || issues[0].Kind != "length" {
		t.Errorf("stopped at %d, issues %+v", src.stoppedAt, issues)
	}

	// A sentence that never ends is cut at a word past the limit's slack.
	long := &source{pieces: []string{strings.Repeat("word ", 200)}}
	r = run(check(t, func(c *guard.Check) { c.Config.MaxChars = 100 }).Stream(long.stream()))
	if len(r.text) > 100+300+len("…") || !strings.HasSuffix(r.text, "…") {
		t.Errorf("runaway sentence not cut: %d chars, %q…", len(r.text), r.text[:40])
	}
}

// The offline engine's curated answers are not checked: they may quote the knowledge base.
func TestTrustedChunksPassUnchecked(t *testing.T) {
	src := &source{pieces: []string{"Cloud speech costs ", "$0.006 a minute."}, model: "offline-1"}
	c := check(t, func(c *guard.Check) {
		c.Trusted = func(ch llm.Chunk) bool { return ch.Model == "offline-1" }
		c.Known = guard.NewNumbers()
	})
	if r := run(c.Stream(src.stream())); r.text != "Cloud speech costs $0.006 a minute." {
		t.Errorf("text = %q", r.text)
	}
}

func TestFinishAddsToACompleteReply(t *testing.T) {
	c := check(t, func(c *guard.Check) {
		c.Finish = func(sent string) string {
			if strings.Contains(sent, "person") {
				return ""
			}
			return "Would you like a person?"
		}
	})
	if r := run(c.Stream((&source{pieces: []string{"Sorry about that."}}).stream())); r.text != "Sorry about that. Would you like a person?" {
		t.Errorf("text = %q", r.text)
	}
	if r := run(c.Stream((&source{pieces: []string{"A person can help."}}).stream())); r.text != "A person can help." {
		t.Errorf("text = %q", r.text)
	}
}

// A failure after text keeps what was checked, then reports the error; the usage seen before
// it is not lost.
func TestErrorsPassThrough(t *testing.T) {
	boom := errors.New("upstream down")
	src := &source{pieces: []string{"Half a ", "sentence about 42"}, err: boom}
	r := run(check(t, func(c *guard.Check) { c.Known = guard.NewNumbers("42") }).Stream(src.stream()))
	if !errors.Is(r.err, boom) || r.text != "Half a sentence about 42" || r.usage == nil {
		t.Errorf("text %q usage %+v err %v", r.text, r.usage, r.err)
	}
	// A cancelled consumer stops the source.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src = &source{pieces: []string{"a ", "b ", "c "}}
	for range check(t, nil).Stream(src.stream()) {
		if ctx.Err() != nil {
			break
		}
	}
	if src.stoppedAt != 1 {
		t.Errorf("source read %d pieces after the consumer stopped, want 1", src.stoppedAt)
	}
}

func TestHoldSentencesConfig(t *testing.T) {
	src := &source{pieces: []string{"Once ", "upon ", "a ", "time. ", "The end."}}
	c := check(t, func(c *guard.Check) { c.Config.HoldSentences = true })
	r := run(c.Stream(src.stream()))
	if !slices.Equal(r.deltas, []string{"Once upon a time. ", "The end."}) {
		t.Errorf("deltas = %q, want whole sentences", r.deltas)
	}
}
