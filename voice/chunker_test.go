package voice

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// chunkLog feeds deltas to a chunker and records each chunk with when it came out: "i:" after
// delta i, "F:" from Flush.
func chunkLog(cfg ChunkerConfig, deltas ...string) []string {
	c := NewChunker(cfg)
	var out []string
	for i, d := range deltas {
		for _, s := range c.Push(d) {
			out = append(out, fmt.Sprintf("%d:%s", i, s))
		}
	}
	for _, s := range c.Flush() {
		out = append(out, "F:"+s)
	}
	return out
}

func TestChunker(t *testing.T) {
	noClause := ChunkerConfig{FirstClauseWords: -1}
	for _, tc := range []struct {
		name   string
		cfg    ChunkerConfig
		deltas []string
		want   []string
	}{
		{"sentences as they end", noClause,
			[]string{"Hello there. How", " are you? I'm", " fine!"},
			[]string{"0:Hello there.", "1:How are you?", "F:I'm fine!"}},
		{"a period waits for the next character", noClause,
			[]string{"Hello there.", " How are you?", " Good."},
			[]string{"1:Hello there.", "2:How are you?", "F:Good."}},
		{"decimal split across deltas", noClause,
			[]string{"It costs 3.", "14 dollars. OK"},
			[]string{"1:It costs 3.14 dollars.", "F:OK"}},
		{"versions and times", noClause,
			[]string{"Use v1.2.3 at 10:30 today. Bye"},
			[]string{"0:Use v1.2.3 at 10:30 today.", "F:Bye"}},
		{"titles and Latin abbreviations", noClause,
			[]string{"Dr. Smith said e.g. this. Then", " Mr.", " Jones left."},
			[]string{"0:Dr. Smith said e.g. this.", "F:Then Mr. Jones left."}},
		{"abbreviation decided by the next word", noClause,
			[]string{"Buy apples, pears etc. ", "and more. X"},
			[]string{"1:Buy apples, pears etc. and more.", "F:X"}},
		{"etc. before a capital ends the sentence", noClause,
			[]string{"Buy apples etc. ", "Then go home. "},
			[]string{"1:Buy apples etc.", "1:Then go home."}},
		{"No. before a number", noClause,
			[]string{"Take No. ", "5 please. Thanks"},
			[]string{"1:Take No. 5 please.", "F:Thanks"}},
		{"initials", noClause,
			[]string{"I read J. R. R. Tolkien today. Yes"},
			[]string{"0:I read J. R. R. Tolkien today.", "F:Yes"}},
		{"ellipsis and repeated marks", noClause,
			[]string{"Well... I think so… Really?! Yes"},
			[]string{"0:Well...", "0:I think so…", "0:Really?!", "F:Yes"}},
		{"closing quote stays with the sentence", noClause,
			[]string{`He said "Stop!" Then`, " left."},
			[]string{`0:He said "Stop!"`, "F:Then left."}},
		{"newlines", noClause,
			[]string{"Title\nFirst line. Se", "cond\r\n\nThird"},
			[]string{"0:Title", "0:First line.", "1:Second", "F:Third"}},
		{"CJK", noClause,
			[]string{"你好。今天", "很好！"},
			[]string{"0:你好。", "F:今天很好！"}},
		{"first clause shortcut", ChunkerConfig{},
			[]string{"Sure, I can help with that, and then", " we will see. Next, more words here, ok"},
			[]string{"0:Sure, I can help with that,", "1:and then we will see.", "F:Next, more words here, ok"}},
		{"first clause needs its words", ChunkerConfig{FirstClauseWords: 8},
			[]string{"Sure, I can help with that, and then we will see. Ok"},
			[]string{"0:Sure, I can help with that, and then we will see.", "F:Ok"}},
		{"first clause off", noClause,
			[]string{"Sure, I can help with that, and then we will see."},
			[]string{"F:Sure, I can help with that, and then we will see."}},
		{"a comma in a number is not a clause", ChunkerConfig{FirstClauseWords: 2},
			[]string{"We have 1,", "000 apples in total; and more."},
			[]string{"1:We have 1,000 apples in total;", "F:and more."}},
		{"long sentence is cut", ChunkerConfig{FirstClauseWords: -1, MaxRunes: 20},
			[]string{"one two three four five six seven eight nine"},
			[]string{"0:one two three four", "0:five six seven eight", "F:nine"}},
		{"empty and blank deltas", noClause,
			[]string{"", "  ", "Hi. ", "", "\n"},
			[]string{"2:Hi."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chunkLog(tc.cfg, tc.deltas...); !slices.Equal(got, tc.want) {
				t.Errorf("chunks\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestChunkerMatchesSplitSentences: whatever the deltas, the chunks are the sentences
// SplitSentencesMax finds in the whole text (without the first-clause shortcut).
func TestChunkerMatchesSplitSentences(t *testing.T) {
	text := "Dr. Jones paid $3.50 at 9 a.m. Then he left, e.g. to Paris. Really?! \"Yes.\" (Fine.) " +
		"No. 5 is next… The U.S. Army won. etc. is short for et cetera.\nNew line here. 是的。好"
	want := SplitSentencesMax(text, DefaultMaxSentenceRunes)
	for _, size := range []int{1, 2, 3, 5, 7, 11, 1000} {
		c := NewChunker(ChunkerConfig{FirstClauseWords: -1})
		var got []string
		rs := []rune(text)
		for i := 0; i < len(rs); i += size {
			got = append(got, c.Push(string(rs[i:min(i+size, len(rs))]))...)
		}
		got = append(got, c.Flush()...)
		if !slices.Equal(got, want) {
			t.Errorf("deltas of %d runes:\n got %q\nwant %q", size, got, want)
		}
	}
}

// TestChunkerFlushStartsANewReply: after Flush the first-clause shortcut applies again.
func TestChunkerFlushStartsANewReply(t *testing.T) {
	c := NewChunker(ChunkerConfig{FirstClauseWords: 2})
	first := c.Push("Yes indeed, this works, and so on")
	if !slices.Equal(first, []string{"Yes indeed,"}) {
		t.Fatalf("first reply: %q", first)
	}
	if rest := c.Flush(); !slices.Equal(rest, []string{"this works, and so on"}) {
		t.Fatalf("flush: %q", rest)
	}
	if again := c.Push("Of course, here it is"); !slices.Equal(again, []string{"Of course,"}) {
		t.Errorf("second reply: %q, want the clause shortcut again", again)
	}
	if c.Pending() != " here it is" {
		t.Errorf("pending %q", c.Pending())
	}
	c.Reset()
	if c.Pending() != "" || c.Flush() != nil {
		t.Error("reset kept text")
	}
}

func TestSpeakable(t *testing.T) {
	for in, want := range map[string]string{
		"**Bold** and *soft* text.":   "Bold and soft text.",
		"- first item":                "first item",
		"* second item":               "second item",
		"## Heading":                  "Heading",
		"> quoted words":              "quoted words",
		"See [the docs](http://x.y).": "See the docs.",
		"Run `make test` now.":        "Run make test now.",
		"---":                         "",
		"•":                           "",
		"3.14":                        "3.14",
		"Plain sentence.":             "Plain sentence.",
	} {
		if got := speakable(in); got != want {
			t.Errorf("speakable(%q) = %q, want %q", in, got, want)
		}
	}
	if s := speakable(strings.Repeat("[", 3) + "](" + ")"); s != "" {
		t.Errorf("broken link markup: %q", s)
	}
}
