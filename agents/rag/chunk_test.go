package rag

import (
	"strings"
	"testing"
)

// words returns n distinct-enough words (about 5 characters, so ~1.5 tokens each).
func words(prefix string, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = prefix + string(rune('a'+i%26))
	}
	return strings.Join(w, " ")
}

func TestChunkMarkdown(t *testing.T) {
	small := ChunkConfig{MinTokens: 10, MaxTokens: 40}
	type want struct {
		section  string
		contains string
	}
	tests := []struct {
		name      string
		md        string
		cfg       ChunkConfig
		wantTitle string
		want      []want
	}{
		{
			name:      "title and two sections",
			md:        "# Returns\n\n## Refund window\n" + words("refu", 12) + "\n\n## Exchanges\n" + words("exch", 12),
			cfg:       small,
			wantTitle: "Returns",
			want:      []want{{"Refund window", "refua"}, {"Exchanges", "excha"}},
		},
		{
			name: "subsections carry their parent's heading",
			md:   "## Refunds\n" + words("intr", 10) + "\n### Window\n" + words("wind", 10) + "\n### Method\n" + words("meth", 10),
			cfg:  small,
			want: []want{{"Refunds", "intra"}, {"Refunds › Window", "winda"}, {"Refunds › Method", "metha"}},
		},
		{
			name: "small subsections join the chunk before them and keep their headings",
			md:   "## Refunds\n### Window\n30 days.\n### Method\nOriginal card.\n## Exchanges\n" + words("exch", 12),
			cfg:  small,
			want: []want{{"Refunds", "Window\n30 days.\n\nMethod\nOriginal card."}, {"Exchanges", "excha"}},
		},
		{
			name: "small top-level sections are not merged: they are different topics",
			md:   "## Hours\nNine to five.\n## Phone\nCall us.",
			cfg:  small,
			want: []want{{"Hours", "Nine to five."}, {"Phone", "Call us."}},
		},
		{
			name: "a long section is split on paragraphs and every piece keeps the section",
			md:   "## Long\n" + words("para", 20) + "\n\n" + words("parb", 20) + "\n\n" + words("parc", 20),
			cfg:  small,
			want: []want{{"Long", "paraa"}, {"Long", "parba"}, {"Long", "parca"}},
		},
		{
			name: "a paragraph too long for one chunk is split on sentences",
			md:   "## Long\n" + words("sena", 18) + ". " + words("senb", 18) + ". " + words("senc", 18) + ".",
			cfg:  small,
			want: []want{{"Long", "senaa"}, {"Long", "senba"}, {"Long", "senca"}},
		},
		{
			name: "headings inside code fences are text",
			md:   "## Setup\n```sh\n## not a heading\necho hi\n```\nDone.",
			cfg:  small,
			want: []want{{"Setup", "## not a heading"}},
		},
		{
			name: "text before the first heading has no section",
			md:   "Welcome to the help centre.\n\n## Contact\nWrite to us.",
			cfg:  small,
			want: []want{{"", "Welcome"}, {"Contact", "Write to us."}},
		},
		{
			name: "plain text without headings is one chunk",
			md:   "Invoices are PDF files.\n\nWe accept cards.",
			want: []want{{"", "Invoices are PDF files.\n\nWe accept cards."}},
		},
		{
			name:      "headings with nothing under them are dropped",
			md:        "# Guide\n## Empty\n\n## Also empty\n## Full\nSomething.",
			cfg:       small,
			wantTitle: "Guide",
			want:      []want{{"Full", "Something."}},
		},
		{
			name: "several # headings are sections, not titles",
			md:   "# Voice\nTiers.\n# Costs\nCheap.",
			cfg:  small,
			want: []want{{"Voice", "Tiers."}, {"Costs", "Cheap."}},
		},
		{
			name: "#### and deeper stay in the text; closing hashes are trimmed",
			md:   "## Fees ##\n#### Small print\nNone.",
			cfg:  small,
			want: []want{{"Fees", "#### Small print\nNone."}},
		},
		{
			name: "CRLF line endings",
			md:   "## A\r\nOne.\r\n## B\r\nTwo.\r\n",
			cfg:  small,
			want: []want{{"A", "One."}, {"B", "Two."}},
		},
		{name: "empty", md: "", want: nil},
		{name: "only headings", md: "# T\n## A\n### B", wantTitle: "T", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChunkMarkdown(tt.md, tt.cfg)
			if got.Title != tt.wantTitle {
				t.Errorf("title %q, want %q", got.Title, tt.wantTitle)
			}
			if len(got.Chunks) != len(tt.want) {
				t.Fatalf("%d chunks, want %d: %+v", len(got.Chunks), len(tt.want), got.Chunks)
			}
			maxTokens := tt.cfg.withDefaults().MaxTokens
			for i, w := range tt.want {
				c := got.Chunks[i]
				if c.Section != w.section || !strings.Contains(c.Text, w.contains) {
					t.Errorf("chunk %d = {%q, %q}, want section %q containing %q", i, c.Section, c.Text, w.section, w.contains)
				}
				if c.Tokens != EstimateTokens(c.Text) || c.Tokens > maxTokens {
					t.Errorf("chunk %d has %d tokens (estimate %d, max %d)", i, c.Tokens, EstimateTokens(c.Text), maxTokens)
				}
			}
		})
	}
}

// Splitting loses no words and respects the size limit, even for one endless word.
func TestChunkSplitKeepsEveryWord(t *testing.T) {
	cfg := ChunkConfig{MinTokens: 5, MaxTokens: 20}
	body := words("alph", 30) + ". " + strings.Repeat("x", 300) + "\n\n" + words("beta", 40)
	got := ChunkMarkdown("## S\n"+body, cfg)
	var joined []string
	for _, c := range got.Chunks {
		if c.Tokens > cfg.MaxTokens {
			t.Errorf("chunk of %d tokens over %d", c.Tokens, cfg.MaxTokens)
		}
		joined = append(joined, strings.Fields(c.Text)...)
	}
	want := strings.Fields(body)
	if strings.Join(joined, "") != strings.Join(want, "") {
		t.Fatalf("text changed by splitting:\n got %q\nwant %q", strings.Join(joined, " "), strings.Join(want, " "))
	}
}

func TestChunkConfigDefaults(t *testing.T) {
	got := ChunkConfig{}.withDefaults()
	if got.MinTokens != 100 || got.MaxTokens != 500 {
		t.Fatalf("defaults %+v", got)
	}
	if got := (ChunkConfig{MinTokens: 900, MaxTokens: 50}).withDefaults(); got.MinTokens != 50 {
		t.Fatalf("min above max: %+v", got)
	}
}
