package rag

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// ChunkConfig sizes chunks. Sizes are estimated tokens (four characters a token).
type ChunkConfig struct {
	// MinTokens: a smaller subsection joins the chunk before it when both sit under the same
	// top-level heading. Default 100.
	MinTokens int
	// MaxTokens: a longer section is split on paragraphs (then sentences, then words).
	// Default 500.
	MaxTokens int
}

func (c ChunkConfig) withDefaults() ChunkConfig {
	if c.MinTokens <= 0 {
		c.MinTokens = 100
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = 500
	}
	if c.MinTokens > c.MaxTokens {
		c.MinTokens = c.MaxTokens
	}
	return c
}

// Chunk is a piece of a document.
type Chunk struct {
	// Section is the heading path ("Refunds › Refund window"); empty for text before the
	// first heading.
	Section string
	Text    string
	Tokens  int
}

// Parsed is a document cut into chunks.
type Parsed struct {
	// Title is the document's only "# " heading, if it has exactly one.
	Title  string
	Chunks []Chunk
}

// EstimateTokens approximates a text's size in tokens at four characters a token.
func EstimateTokens(text string) int { return (utf8.RuneCountInString(text) + 3) / 4 }

var (
	headingLine = regexp.MustCompile(`^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$`)
	fenceLine   = regexp.MustCompile("^[ \t]{0,3}(```|~~~)")
	blankLines  = regexp.MustCompile(`\n[ \t]*\n\s*`)
)

// part is a section's text with its heading path.
type part struct {
	path []string
	text string
}

// ChunkMarkdown cuts Markdown (or plain text) into chunks at "##" and "###" headings. A lone
// "# " heading is the title; when there are several, each starts a section like "##".
// Deeper headings stay in the text, as does anything inside code fences. Sections without
// text are dropped; a section over MaxTokens is split on paragraphs; a subsection under
// MinTokens joins the previous chunk of the same top-level section when the result fits,
// and the chunk is then named by the heading they share.
func ChunkMarkdown(md string, cfg ChunkConfig) Parsed {
	cfg = cfg.withDefaults()
	md = strings.ReplaceAll(strings.ReplaceAll(md, "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(md, "\n")

	// First pass: how many "# " headings (outside fences) the document has.
	h1s, inFence := 0, false
	for _, l := range lines {
		if fenceLine.MatchString(l) {
			inFence = !inFence
			continue
		}
		if m := headingLine.FindStringSubmatch(l); !inFence && m != nil && len(m[1]) == 1 {
			h1s++
		}
	}

	var out Parsed
	var sections []part
	var path []string
	var body []string
	flush := func() {
		text := strings.TrimSpace(strings.Join(body, "\n"))
		if text != "" {
			sections = append(sections, part{path: slices.Clone(path), text: text})
		}
		body = body[:0]
	}
	inFence = false
	for _, l := range lines {
		if fenceLine.MatchString(l) {
			inFence = !inFence
			body = append(body, l)
			continue
		}
		m := headingLine.FindStringSubmatch(l)
		if inFence || m == nil || len(m[1]) > 3 {
			body = append(body, l)
			continue
		}
		level, title := len(m[1]), strings.TrimSpace(m[2])
		if level == 1 && h1s == 1 {
			flush()
			out.Title = title
			continue
		}
		flush()
		// With several "# " headings they are the top level; otherwise "##" is.
		depth := level - 1
		if h1s > 1 {
			depth = level
		}
		depth = max(depth, 1)
		for len(path) >= depth {
			path = path[:len(path)-1]
		}
		for len(path) < depth-1 {
			path = append(path, "") // "###" with no "##" above it
		}
		path = append(path, title)
	}
	flush()

	// Split what is too long, then join what is too small.
	var pieces []part
	for _, s := range sections {
		for _, text := range splitLong(s.text, cfg.MaxTokens) {
			pieces = append(pieces, part{path: s.path, text: text})
		}
	}
	var groups [][]part
	for _, p := range pieces {
		if n := len(groups); n > 0 && EstimateTokens(p.text) < cfg.MinTokens {
			prev := groups[n-1]
			if len(p.path) > 0 && len(prev[0].path) > 0 && p.path[0] == prev[0].path[0] && p.path[0] != "" &&
				EstimateTokens(render(append(slices.Clone(prev), p))) <= cfg.MaxTokens {
				groups[n-1] = append(prev, p)
				continue
			}
		}
		groups = append(groups, []part{p})
	}
	for _, g := range groups {
		text := render(g)
		out.Chunks = append(out.Chunks, Chunk{Section: joinPath(commonPath(g)), Text: text, Tokens: EstimateTokens(text)})
	}
	return out
}

// render joins a group's texts; each part below the group's shared heading keeps its own
// heading as a first line, so the text still says what it is about.
func render(g []part) string {
	if len(g) == 1 {
		return g[0].text
	}
	common := len(commonPath(g))
	var b strings.Builder
	for i, p := range g {
		if i > 0 {
			b.WriteString("\n\n")
		}
		if len(p.path) > common {
			if h := joinPath(p.path[common:]); h != "" {
				b.WriteString(h)
				b.WriteString("\n")
			}
		}
		b.WriteString(p.text)
	}
	return b.String()
}

func commonPath(g []part) []string {
	common := g[0].path
	for _, p := range g[1:] {
		n := 0
		for n < len(common) && n < len(p.path) && common[n] == p.path[n] {
			n++
		}
		common = common[:n]
	}
	return common
}

func joinPath(path []string) string {
	var parts []string
	for _, p := range path {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " › ")
}

// splitLong cuts text into pieces of at most maxTokens: on paragraphs, then sentences, then
// words. Text that fits is returned whole.
func splitLong(text string, maxTokens int) []string {
	if EstimateTokens(text) <= maxTokens {
		return []string{text}
	}
	var units []string
	for _, para := range blankLines.Split(text, -1) {
		para = strings.TrimSpace(para)
		if para == "" {
			continue
		}
		if EstimateTokens(para) <= maxTokens {
			units = append(units, para)
			continue
		}
		for _, s := range sentences(para) {
			if EstimateTokens(s) <= maxTokens {
				units = append(units, s)
				continue
			}
			units = append(units, splitWords(s, maxTokens)...)
		}
	}
	return pack(units, maxTokens)
}

// pack joins consecutive units into pieces of at most maxTokens.
func pack(units []string, maxTokens int) []string {
	var out []string
	var cur string
	for _, u := range units {
		if cur == "" {
			cur = u
			continue
		}
		if joined := cur + "\n\n" + u; EstimateTokens(joined) <= maxTokens {
			cur = joined
			continue
		}
		out = append(out, cur)
		cur = u
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// sentences splits a paragraph after ".", "!" or "?" followed by a space.
func sentences(para string) []string {
	var out []string
	start := 0
	for i := 0; i < len(para)-1; i++ {
		if strings.ContainsRune(".!?", rune(para[i])) && (para[i+1] == ' ' || para[i+1] == '\n') {
			if s := strings.TrimSpace(para[start : i+1]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(para[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// splitWords cuts a run of text with no sentence breaks into pieces of at most maxTokens;
// a single word longer than that is cut too.
func splitWords(s string, maxTokens int) []string {
	maxRunes := maxTokens * 4
	var out []string
	var cur []rune
	for _, w := range strings.Fields(s) {
		rw := []rune(w)
		for len(rw) > maxRunes {
			if len(cur) > 0 {
				out = append(out, string(cur))
				cur = nil
			}
			out = append(out, string(rw[:maxRunes]))
			rw = rw[maxRunes:]
		}
		if len(cur) > 0 && len(cur)+1+len(rw) > maxRunes {
			out = append(out, string(cur))
			cur = nil
		}
		if len(cur) > 0 {
			cur = append(cur, ' ')
		}
		cur = append(cur, rw...)
	}
	if len(cur) > 0 {
		out = append(out, string(cur))
	}
	return out
}
