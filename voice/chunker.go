package voice

import (
	"strings"
	"unicode"
)

// The chunker turns a reply streamed by the LLM, delta by delta, into the pieces it is spoken
// in: whole sentences as soon as they end, so the first sentence is being synthesized (and
// heard) while the rest is still being generated, and each sentence is a TTS cache key on its
// own.
//
// It applies the same rules as SplitSentencesMax (and uses its helpers from ttscache.go, which
// is in this package): a sentence ends at ".", "?", "!", "…", "..." followed by a space
// (closing quotes and brackets stay with it), at "。？！", and at every line break; "3.14",
// "Dr. Smith", "e.g. this", "No. 5", "J. R. R. Tolkien" do not end one. Because text arrives
// in pieces, a period is only judged once the character after it is known (and, for
// abbreviations whose meaning depends on it, the next word's first letter): "3." followed by
// the delta "14" is one number. Flush at the end of the reply says the rest.
//
// For a fast first sound, the first chunk of a reply may also end at a clause mark (",", ";",
// ":", a dash) followed by a space once it holds FirstClauseWords words: "Sure, I can help
// with that, and" is spoken while the sentence is still being written.

// ChunkerConfig configures a Chunker. Every zero field takes its default.
type ChunkerConfig struct {
	// FirstClauseWords is how many words the first chunk of a reply needs before it may end
	// at a clause mark instead of a sentence end. Negative turns the shortcut off. Default 4.
	FirstClauseWords int
	// MaxRunes cuts a sentence that goes on longer (at its last clause mark or space, as
	// SplitSentencesMax does). Default DefaultMaxSentenceRunes.
	MaxRunes int
}

// Chunker splits one streamed reply into speakable chunks. It is not safe for concurrent use.
type Chunker struct {
	cfg     ChunkerConfig
	buf     []rune // text received and not yet emitted
	emitted int    // chunks emitted in this reply
}

// NewChunker returns a chunker for one reply.
func NewChunker(cfg ChunkerConfig) *Chunker {
	if cfg.FirstClauseWords == 0 {
		cfg.FirstClauseWords = 4
	}
	if cfg.MaxRunes <= 0 {
		cfg.MaxRunes = DefaultMaxSentenceRunes
	}
	return &Chunker{cfg: cfg}
}

// Push adds a delta and returns the chunks it completed, trimmed, in order (often none).
func (c *Chunker) Push(delta string) []string {
	if delta == "" {
		return nil
	}
	c.buf = append(c.buf, []rune(strings.ReplaceAll(delta, "\r\n", "\n"))...)
	var out []string
	start := 0
	emit := func(end int) {
		if s := strings.TrimSpace(string(c.buf[start:end])); s != "" {
			out = append(out, s)
			c.emitted++
		}
		start = end
	}
scan:
	for i := 0; i < len(c.buf); i++ {
		r := c.buf[i]
		switch {
		case r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029':
			emit(i + 1)
		case chunkTerminator(r):
			end := i + 1
			for end < len(c.buf) && chunkTerminator(c.buf[end]) {
				end++
			}
			for end < len(c.buf) && isCloser(c.buf[end]) {
				end++
			}
			if end == len(c.buf) {
				break scan // the next character decides: wait for it
			}
			cjk := r == '。' || r == '？' || r == '！'
			boundary := cjk || unicode.IsSpace(c.buf[end])
			if boundary && r == '.' && end == i+1 {
				abbrev, known := c.abbreviation(start, i, end)
				if !known {
					break scan // the next word decides: wait for it
				}
				boundary = !abbrev
			}
			if boundary {
				emit(end)
			}
			i = end - 1
		case c.emitted == 0 && c.cfg.FirstClauseWords > 0 && strings.ContainsRune(",;:—–", r):
			if i+1 == len(c.buf) {
				break scan // "1," may be "1,000"
			}
			if unicode.IsSpace(c.buf[i+1]) && len(strings.Fields(string(c.buf[start:i]))) >= c.cfg.FirstClauseWords {
				emit(i + 1)
			}
		}
	}
	c.buf = c.buf[start:]
	// A sentence that will not end is cut where SplitSentencesMax would cut it, keeping the
	// last piece, which may still grow.
	if len(c.buf) > c.cfg.MaxRunes {
		pieces := cutLong(string(c.buf), c.cfg.MaxRunes)
		for _, p := range pieces[:len(pieces)-1] {
			out = append(out, p)
			c.emitted++
		}
		c.buf = []rune(pieces[len(pieces)-1])
	}
	if len(c.buf) == 0 {
		c.buf = nil
	}
	return out
}

// abbreviation reports whether the period at dot ends an abbreviation, and whether that is
// known yet: for some words ("No.", "etc.", "U.S.") it depends on the next word, which may
// not have arrived.
func (c *Chunker) abbreviation(start, dot, end int) (abbrev, known bool) {
	// The answer for each kind of next word: a digit, a capital, anything else.
	digit := abbreviationAt(c.buf, start, dot, '1')
	upper := abbreviationAt(c.buf, start, dot, 'A')
	other := abbreviationAt(c.buf, start, dot, 'a')
	if digit == upper && upper == other {
		return digit, true
	}
	next := nextWord(c.buf, end)
	if next == 0 {
		return false, false
	}
	return abbreviationAt(c.buf, start, dot, next), true
}

// Flush returns the rest of the reply as chunks and readies the chunker for the next reply
// (whose first chunk may take the clause shortcut again).
func (c *Chunker) Flush() []string {
	out := SplitSentencesMax(string(c.buf), c.cfg.MaxRunes)
	c.Reset()
	return out
}

// Reset drops pending text and starts a new reply.
func (c *Chunker) Reset() {
	c.buf = nil
	c.emitted = 0
}

// Pending is the text received and not yet emitted.
func (c *Chunker) Pending() string { return string(c.buf) }

func chunkTerminator(r rune) bool {
	switch r {
	case '.', '?', '!', '…', '。', '？', '！':
		return true
	}
	return false
}

// speakable is a chunk as it should be said: the markdown that LLMs like (emphasis, inline
// code, headings, bullets, links) would otherwise be read out or make the TTS stumble. The text
// shown and stored keeps it. Empty means there is nothing to say (a rule, a lone symbol).
func speakable(chunk string) string {
	s := strings.TrimSpace(chunk)
	// Headings, quotes and list bullets at the start of a line.
	for {
		t := strings.TrimLeft(s, "#>")
		if t != s {
			s = strings.TrimSpace(t)
			continue
		}
		if len(s) > 1 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ' {
			s = strings.TrimSpace(s[2:])
			continue
		}
		break
	}
	// [text](url) says the text.
	for {
		open := strings.Index(s, "](")
		if open < 0 {
			break
		}
		lb := strings.LastIndex(s[:open], "[")
		rp := strings.Index(s[open:], ")")
		if lb < 0 || rp < 0 {
			break
		}
		s = s[:lb] + s[lb+1:open] + s[open+rp+1:]
	}
	s = strings.NewReplacer("**", "", "__", "", "`", "", "*", "").Replace(s)
	s = strings.TrimSpace(s)
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
		return ""
	}
	return s
}
