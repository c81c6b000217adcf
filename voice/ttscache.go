package voice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/dartmouth-gw/dartmouth/session"
)

// The TTS cache keeps synthesized sentences so a sentence said once is never paid for again:
// greetings, confirmations, the agent's stock phrases. Audio lives in the blob store under a
// content-addressed key ("tts/<sha256>.<ext>"); a small index entry and a hit counter live in
// KV. A hit streams from the blob store without calling any provider.
//
// Only the index expires (TTL, default 30 days). Blobs are never deleted by the cache: a blob
// whose index entry expired is an orphan that the next synthesis of the same sentence
// overwrites in place, because its key is the hash of the request. Orphans therefore cost disk
// space but never serve stale or wrong audio; a bucket lifecycle rule on the "tts/" prefix (or
// deleting the folder) reclaims them.

// ErrTTSCacheMiss is returned by TTSCache.Get when nothing is cached for the key.
var ErrTTSCacheMiss = errors.New("tts cache: miss")

// ErrTTSCacheTooLarge is returned by TTSCache.Put for audio over MaxEntryBytes.
var ErrTTSCacheTooLarge = errors.New("tts cache: audio larger than the entry limit")

// TTSCacheConfig configures a TTSCache.
type TTSCacheConfig struct {
	// Blobs holds the audio (a local folder by default, S3/R2 at scale). Required.
	Blobs session.BlobStore
	// KV holds the index entries and hit counters (memory by default, Redis at scale). Required.
	KV session.KV
	// TTL is how long an index entry lives; the audio is re-synthesized after it. Default 30
	// days; negative means forever.
	TTL time.Duration
	// MaxEntryBytes is the largest audio cached; longer audio is still returned to the caller,
	// just not kept. Default 10 MiB (minutes of MP3; a sentence is tens of kilobytes).
	MaxEntryBytes int64
	// Namespace is mixed into every key, so changing something the key cannot see (a
	// provider's default model, a voice's settings on the provider's side) can start a fresh
	// cache. Default "".
	Namespace string
	// Clock stamps entries' CreatedAt. Default the system clock.
	Clock session.Clock
	// Logger receives cache failures, which never fail a synthesis. Default slog.Default().
	Logger *slog.Logger
}

// TTSCacheKey is what makes two syntheses the same: everything that changes the audio. Text is
// normalized (trimmed, inner whitespace collapsed, Unicode NFC) but not lower-cased, because
// case and punctuation change prosody ("OK." and "ok?" sound different).
type TTSCacheKey struct {
	Provider   string
	Model      string // as requested; "" is the provider's default
	Voice      string
	Format     string // as requested; "" is the provider's native format
	SampleRate int
	Speed      float64 // 0 and 1 are the same
	Text       string
}

// TTSCacheEntry is the index entry of one cached sentence (the JSON stored in KV).
type TTSCacheEntry struct {
	Provider    string    `json:"provider"`
	Model       string    `json:"model"`
	Voice       string    `json:"voice"`
	Format      string    `json:"format"`
	SampleRate  int       `json:"sampleRate"`
	ContentType string    `json:"contentType"`
	Bytes       int64     `json:"bytes"`
	CreatedAt   time.Time `json:"createdAt"`
}

// TTSCacheStats counts lookups and traffic since the process started.
type TTSCacheStats struct {
	Hits        int64   `json:"hits"`
	Misses      int64   `json:"misses"`
	HitRate     float64 `json:"hitRate"`
	BytesServed int64   `json:"bytesServed"` // audio read from the cache by callers
	Writes      int64   `json:"writes"`      // entries stored
	Skipped     int64   `json:"skipped"`     // streams not stored: cut, failed or too large
}

// TTSCache is the sentence-level TTS cache. It is safe for concurrent use.
type TTSCache struct {
	cfg TTSCacheConfig

	hits, misses, bytesServed, writes, skipped atomic.Int64
}

// NewTTSCache builds a cache over a blob store and a KV.
func NewTTSCache(cfg TTSCacheConfig) (*TTSCache, error) {
	if cfg.Blobs == nil {
		return nil, errors.New("tts cache: a blob store is required")
	}
	if cfg.KV == nil {
		return nil, errors.New("tts cache: a KV store is required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = 30 * 24 * time.Hour
	}
	if cfg.MaxEntryBytes <= 0 {
		cfg.MaxEntryBytes = 10 << 20
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &TTSCache{cfg: cfg}, nil
}

// kvTTL is the TTL passed to KV, where 0 means forever.
func (c *TTSCache) kvTTL() time.Duration { return max(c.cfg.TTL, 0) }

// Hash is the hex SHA-256 naming the key's entry, blob and hit counter.
func (c *TTSCache) Hash(k TTSCacheKey) string {
	speed := k.Speed
	if speed == 0 {
		speed = 1
	}
	canonical := struct {
		V          int     `json:"v"` // bump when the key's meaning changes
		Namespace  string  `json:"ns"`
		Provider   string  `json:"provider"`
		Model      string  `json:"model"`
		Voice      string  `json:"voice"`
		Format     string  `json:"format"`
		SampleRate int     `json:"sampleRate"`
		Speed      float64 `json:"speed"`
		Text       string  `json:"text"`
	}{1, c.cfg.Namespace, k.Provider, k.Model, k.Voice, k.Format, k.SampleRate, speed, normalizeTTSText(k.Text)}
	b, _ := json.Marshal(canonical) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// normalizeTTSText is the text as the cache key sees it: trimmed, every run of whitespace one
// space, Unicode NFC (so "é" typed as one or two code points is one key). Case and punctuation
// stay: they change how the sentence is spoken.
func normalizeTTSText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
	}
	return s
}

func ttsIndexKey(hash string) string { return "ttscache:" + hash }
func ttsHitsKey(hash string) string  { return "ttscache:hits:" + hash }

// ttsFormatExt is the file extension of audio in format: the blob key's suffix.
func ttsFormatExt(format string) string {
	switch format {
	case FormatMP3:
		return "mp3"
	case FormatWAV:
		return "wav"
	case FormatPCM16:
		return "pcm"
	case FormatULaw:
		return "ulaw"
	case FormatALaw:
		return "alaw"
	case FormatOpus:
		return "opus"
	}
	return "bin"
}

func ttsBlobKey(hash, format string) string { return "tts/" + hash + "." + ttsFormatExt(format) }

// Get opens the cached audio for k, or returns ErrTTSCacheMiss. The caller reads and closes
// the audio; it streams from the blob store.
func (c *TTSCache) Get(ctx context.Context, k TTSCacheKey) (io.ReadCloser, *TTSCacheEntry, error) {
	_, rc, e, err := c.getFirst(ctx, []TTSCacheKey{k}, nil)
	return rc, e, err
}

// getFirst opens the first of keys that is cached and whose entry accept approves (nil:
// any), counting one hit or one miss for the whole lookup: the router asks for a sentence
// under each provider it may use, which is still one sentence.
func (c *TTSCache) getFirst(ctx context.Context, keys []TTSCacheKey, accept func(*TTSCacheEntry) bool) (int, io.ReadCloser, *TTSCacheEntry, error) {
	for i, k := range keys {
		hash := c.Hash(k)
		rc, e, err := c.open(ctx, hash)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return -1, nil, nil, fmt.Errorf("tts cache: %w", ctxErr) // the caller gave up: not a miss
			}
			continue
		}
		if accept != nil && !accept(e) {
			_ = rc.Close()
			continue
		}
		c.hits.Add(1)
		if _, err := c.cfg.KV.Incr(ctx, ttsHitsKey(hash), 1, c.kvTTL()); err != nil {
			c.cfg.Logger.Warn("tts cache: counting a hit failed", "hash", hash, "err", err)
		}
		return i, &countingReadCloser{rc: rc, n: &c.bytesServed}, e, nil
	}
	c.misses.Add(1)
	return -1, nil, nil, ErrTTSCacheMiss
}

// open reads the index entry and opens its blob. A failing KV or blob store reads as a miss
// (logged): the provider is the fallback, and speech must not fail because its cache did.
func (c *TTSCache) open(ctx context.Context, hash string) (io.ReadCloser, *TTSCacheEntry, error) {
	raw, err := c.cfg.KV.Get(ctx, ttsIndexKey(hash))
	if err != nil {
		if !errors.Is(err, session.ErrKeyNotFound) && ctx.Err() == nil {
			c.cfg.Logger.Warn("tts cache: reading the index failed", "hash", hash, "err", err)
		}
		return nil, nil, ErrTTSCacheMiss
	}
	var e TTSCacheEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		c.cfg.Logger.Warn("tts cache: dropping an unreadable index entry", "hash", hash, "err", err)
		_ = c.cfg.KV.Delete(ctx, ttsIndexKey(hash))
		return nil, nil, ErrTTSCacheMiss
	}
	rc, err := c.cfg.Blobs.Get(ctx, ttsBlobKey(hash, e.Format))
	if errors.Is(err, session.ErrBlobNotFound) {
		// The blob was removed behind the index's back (a cleaned folder, a lifecycle rule):
		// forget the entry so the next synthesis stores it again.
		_ = c.cfg.KV.Delete(ctx, ttsIndexKey(hash))
		return nil, nil, ErrTTSCacheMiss
	}
	if err != nil {
		if ctx.Err() == nil {
			c.cfg.Logger.Warn("tts cache: reading audio failed", "hash", hash, "err", err)
		}
		return nil, nil, ErrTTSCacheMiss
	}
	return rc, &e, nil
}

// Put stores complete audio for k. e describes it (Format is required: it names the blob);
// Bytes and CreatedAt are filled in, ContentType defaults from Format. The blob is written
// before the index, so a reader never finds an entry without its audio.
func (c *TTSCache) Put(ctx context.Context, k TTSCacheKey, e TTSCacheEntry, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, c.cfg.MaxEntryBytes+1))
	if err != nil {
		return fmt.Errorf("tts cache put: %w", err)
	}
	if int64(len(data)) > c.cfg.MaxEntryBytes {
		return fmt.Errorf("%w (%d bytes)", ErrTTSCacheTooLarge, c.cfg.MaxEntryBytes)
	}
	return c.put(ctx, k, e, data)
}

func (c *TTSCache) put(ctx context.Context, k TTSCacheKey, e TTSCacheEntry, data []byte) error {
	if e.Format == "" {
		return errors.New("tts cache put: the entry needs the audio's format")
	}
	if len(data) == 0 {
		return errors.New("tts cache put: no audio")
	}
	if e.ContentType == "" {
		e.ContentType = ttsContentType(e.Format, e.SampleRate)
	}
	e.Bytes = int64(len(data))
	e.CreatedAt = c.cfg.Clock.Now().UTC()
	hash := c.Hash(k)
	if err := c.cfg.Blobs.Put(ctx, ttsBlobKey(hash, e.Format), bytes.NewReader(data), e.ContentType); err != nil {
		return fmt.Errorf("tts cache put: %w", err)
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("tts cache put: %w", err)
	}
	if err := c.cfg.KV.Set(ctx, ttsIndexKey(hash), raw, c.kvTTL()); err != nil {
		return fmt.Errorf("tts cache put: %w", err)
	}
	c.writes.Add(1)
	return nil
}

// Tee passes src through to the caller and stores what went through under k once the
// stream is complete: read to io.EOF without an error, and closed without one (a provider
// that runs a process reports its exit status on Close). A stream cut short, failed or
// closed early is never stored, nor is one over MaxEntryBytes. The store happens inside
// Close, so the caller has all the audio before the cache write starts; its failure is
// logged, not returned.
func (c *TTSCache) Tee(ctx context.Context, k TTSCacheKey, e TTSCacheEntry, src io.ReadCloser) io.ReadCloser {
	return &ttsTee{ctx: ctx, cache: c, key: k, entry: e, src: src}
}

type ttsTee struct {
	ctx   context.Context
	cache *TTSCache
	key   TTSCacheKey
	entry TTSCacheEntry
	src   io.ReadCloser

	mu       sync.Mutex
	buf      bytes.Buffer
	eof      bool
	spoiled  bool // a read failed, or the audio outgrew the limit: never store
	closed   bool
	closeErr error
}

func (t *ttsTee) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if n > 0 && !t.spoiled {
		if int64(t.buf.Len()+n) > t.cache.cfg.MaxEntryBytes {
			t.spoiled = true
			t.buf = bytes.Buffer{}
		} else {
			t.buf.Write(p[:n])
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		t.eof = true
	case err != nil:
		t.spoiled = true
	}
	return n, err
}

func (t *ttsTee) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.closeErr
	}
	t.closed = true
	t.closeErr = t.src.Close()
	if !t.eof || t.spoiled || t.closeErr != nil || t.buf.Len() == 0 {
		t.cache.skipped.Add(1)
		return t.closeErr
	}
	if err := t.cache.put(t.ctx, t.key, t.entry, t.buf.Bytes()); err != nil {
		t.cache.skipped.Add(1)
		if t.ctx.Err() == nil {
			t.cache.cfg.Logger.Warn("tts cache: storing audio failed", "provider", t.key.Provider, "err", err)
		}
	}
	t.buf = bytes.Buffer{}
	return t.closeErr
}

// HitCount is how many times the entry for k was served since it was stored.
func (c *TTSCache) HitCount(ctx context.Context, k TTSCacheKey) (int64, error) {
	return c.cfg.KV.Incr(ctx, ttsHitsKey(c.Hash(k)), 0, c.kvTTL())
}

// Stats returns the cache's counters.
func (c *TTSCache) Stats() TTSCacheStats {
	s := TTSCacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), BytesServed: c.bytesServed.Load(),
		Writes: c.writes.Load(), Skipped: c.skipped.Load(),
	}
	if s.Hits+s.Misses > 0 {
		s.HitRate = float64(s.Hits) / float64(s.Hits+s.Misses)
	}
	return s
}

// countingReadCloser adds what is read to a counter.
type countingReadCloser struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReadCloser) Close() error { return c.rc.Close() }

// DefaultMaxSentenceRunes is where SplitSentences cuts a sentence that goes on and on: short
// enough for a fast first audio byte and far below every provider's limit (OpenAI 4096).
const DefaultMaxSentenceRunes = 250

// SplitSentences cuts text into the sentences it is synthesized by, so long replies start
// playing after their first sentence and a sentence said before is a cache hit. See
// SplitSentencesMax; the limit here is DefaultMaxSentenceRunes.
func SplitSentences(text string) []string {
	return SplitSentencesMax(text, DefaultMaxSentenceRunes)
}

// SplitSentencesMax cuts text at sentence ends: ".", "?", "!", "…" and "..." followed by a
// space (closing quotes and brackets stay with their sentence), the CJK "。？！", and every line
// break. It keeps together what only looks like an end: decimals and versions ("3.14", no
// space follows), titles and Latin abbreviations ("Mr.", "Dr.", "e.g.", "vs."), initials
// ("J. R. R. Tolkien"), "No. 5", and abbreviations that end a sentence only before a capital
// ("etc.", "Inc.", "a.m.", "U.S."). A sentence longer than maxRunes (<= 0: no limit) is cut at
// its last comma, semicolon, colon or dash before the limit, else at its last space, else
// mid-word. Sentences come back trimmed; empty ones are dropped.
func SplitSentencesMax(text string, maxRunes int) []string {
	var out []string
	text = strings.ReplaceAll(text, "\r\n", "\n")
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029' }) {
		for _, s := range splitLine(line) {
			out = append(out, cutLong(s, maxRunes)...)
		}
	}
	return out
}

// Abbreviations, lower-cased without their final period.
var (
	// abbrevAlways never end a sentence: they announce a name, a number or an example.
	abbrevAlways = setOf("mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "ft", "gen", "col",
		"capt", "lt", "sgt", "rev", "hon", "gov", "sen", "rep", "pres", "messrs", "mme", "mlle",
		"e.g", "i.e", "cf", "viz", "vs", "approx", "ca", "dept", "est")
	// abbrevBeforeNumber do not end a sentence when a number follows ("No. 5", "p. 12").
	abbrevBeforeNumber = setOf("no", "nos", "nr", "vol", "fig", "p", "pp", "ch", "sec", "art", "op", "tel")
	// abbrevUnlessCapital end a sentence only when the next word starts with a capital.
	abbrevUnlessCapital = setOf("etc", "al", "inc", "ltd", "co", "corp", "bros", "jan", "feb", "mar", "apr",
		"jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
)

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// isCloser is punctuation that stays with the sentence it closes.
func isCloser(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '}', '»', '”', '’', '」', '』', '）':
		return true
	}
	return false
}

func splitLine(line string) []string {
	var out []string
	rs := []rune(line)
	start := 0
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		cjk := r == '。' || r == '？' || r == '！'
		if r != '.' && r != '?' && r != '!' && r != '…' && !cjk {
			continue
		}
		// The sentence end runs over repeated terminators ("?!", "...") and closers.
		end := i + 1
		for end < len(rs) && (rs[end] == '.' || rs[end] == '?' || rs[end] == '!' || rs[end] == '…' || rs[end] == '。' || rs[end] == '？' || rs[end] == '！') {
			end++
		}
		for end < len(rs) && isCloser(rs[end]) {
			end++
		}
		boundary := cjk || end == len(rs) || unicode.IsSpace(rs[end])
		if boundary && r == '.' && end == i+1 && end < len(rs) {
			boundary = !abbreviationAt(rs, start, i, nextWord(rs, end))
		}
		if boundary {
			if s := strings.TrimSpace(string(rs[start:end])); s != "" {
				out = append(out, s)
			}
			start = end
		}
		i = end - 1
	}
	if s := strings.TrimSpace(string(rs[start:])); s != "" {
		out = append(out, s)
	}
	return out
}

// nextWord returns the first rune of the next word after position from, or 0.
func nextWord(rs []rune, from int) rune {
	for _, r := range rs[from:] {
		if !unicode.IsSpace(r) && r != '"' && r != '“' && r != '(' && r != '\'' && r != '‘' {
			return r
		}
	}
	return 0
}

// abbreviationAt reports whether the single period at rs[dot] ends an abbreviation rather than
// the sentence, given the first rune of the word after it.
func abbreviationAt(rs []rune, start, dot int, next rune) bool {
	w := dot
	for w > start && !unicode.IsSpace(rs[w-1]) {
		w--
	}
	word := strings.TrimLeft(string(rs[w:dot]), "\"'“‘([")
	if word == "" {
		return false
	}
	lower := strings.ToLower(word)
	switch {
	case abbrevAlways[lower]:
		return true
	case abbrevBeforeNumber[lower]:
		return unicode.IsDigit(next)
	case abbrevUnlessCapital[lower]:
		return !unicode.IsUpper(next)
	}
	if n := utf8.RuneCountInString(word); n == 1 {
		first, _ := utf8.DecodeRuneInString(word)
		return unicode.IsUpper(first) // an initial: "J. R. R. Tolkien"
	}
	if strings.Contains(word, ".") && isDottedAbbrev(word) {
		return !unicode.IsUpper(next) // "a.m.", "U.S." end a sentence only before a capital
	}
	return false
}

// isDottedAbbrev reports whether word looks like "U.S", "a.m" or "Ph.D": short letter groups
// joined by periods.
func isDottedAbbrev(word string) bool {
	for _, part := range strings.Split(word, ".") {
		if part == "" || utf8.RuneCountInString(part) > 3 {
			return false
		}
		for _, r := range part {
			if !unicode.IsLetter(r) {
				return false
			}
		}
	}
	return true
}

// cutLong cuts s into pieces of at most maxRunes runes, preferring clause boundaries, then
// spaces.
func cutLong(s string, maxRunes int) []string {
	if maxRunes <= 0 {
		return []string{s}
	}
	var out []string
	rs := []rune(s)
	for len(rs) > maxRunes {
		cut := -1
		// A clause mark in the last two thirds of the window: a cut earlier would leave a
		// fragment too short to sound natural.
		for i := maxRunes - 1; i >= maxRunes/3; i-- {
			if strings.ContainsRune(",;:—–", rs[i]) && (i+1 >= len(rs) || unicode.IsSpace(rs[i+1])) {
				cut = i + 1
				break
			}
		}
		if cut < 0 {
			for i := maxRunes; i > 0; i-- {
				if unicode.IsSpace(rs[i]) {
					cut = i
					break
				}
			}
		}
		if cut <= 0 {
			cut = maxRunes
		}
		if piece := strings.TrimSpace(string(rs[:cut])); piece != "" {
			out = append(out, piece)
		}
		rs = []rune(strings.TrimSpace(string(rs[cut:])))
	}
	if len(rs) > 0 {
		out = append(out, string(rs))
	}
	return out
}
