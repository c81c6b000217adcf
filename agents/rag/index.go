package rag

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/session"
)

// Config configures an Index.
type Config struct {
	// Store keeps documents, chunks and the embedding cache. Required.
	Store Store
	// Embedder turns texts into vectors. Default NewHashEmbedder(HashConfig{}): offline.
	Embedder Embedder
	// Threshold is the cosine similarity a chunk needs to be a hit. Default: the embedder's
	// own (0.15 for the local embedder, 0.3 for OpenAI's), else 0.3.
	Threshold float64
	// MinCoverage is the share of the query's words (weighted by how rare each is in the
	// knowledge base) a chunk must contain to be a hit. It keeps a bag-of-words embedder from
	// answering "do you sell gift cards?" with the section about paying by card. Default 0.5
	// with the local embedder; 0 (off) with the others, which match meaning, not words.
	MinCoverage float64
	// Chunking sizes chunks. Defaults in ChunkConfig.
	Chunking ChunkConfig
	// BatchSize is how many texts go to the embedder at once. Default 64.
	BatchSize int
	// MaxDocumentBytes bounds a document. Default 4 MiB.
	MaxDocumentBytes int
	// QueryCacheSize is how many query vectors are kept in memory, so a repeated question
	// is not embedded again. Default 1024.
	QueryCacheSize int
	// Logger receives ingestion and loading notes. Default slog.Default().
	Logger *slog.Logger
}

// Index ingests documents into named knowledge bases and searches them. It keeps each
// knowledge base's vectors in memory and reloads them when the store says the knowledge base
// changed, so documents ingested by another process (`dartmouth kb ingest`) are seen.
type Index struct {
	cfg         Config
	threshold   float64
	minCoverage float64

	mu    sync.Mutex
	snaps map[string]*snapshot
	// loadMu serializes loads, so many searches on a cold knowledge base load it once.
	loadMu  sync.Mutex
	queries *vectorCache
}

var _ Retriever = (*Index)(nil)

// snapshot is a knowledge base's chunks and vectors at one revision.
type snapshot struct {
	revision int64
	entries  []entry
	// df counts the chunks each term appears in, for Coverage.
	df map[string]int
}

type entry struct {
	chunk  session.KBChunk
	vector []float32
	terms  map[string]bool
}

// NewIndex checks the config and fills defaults.
func NewIndex(cfg Config) (*Index, error) {
	if cfg.Store == nil {
		return nil, errors.New("rag: an index needs a store")
	}
	if cfg.Embedder == nil {
		cfg.Embedder = NewHashEmbedder(HashConfig{})
	}
	threshold := cfg.Threshold
	if threshold <= 0 {
		threshold = 0.3
		if t, ok := cfg.Embedder.(thresholder); ok {
			threshold = t.DefaultThreshold()
		}
	}
	minCoverage := cfg.MinCoverage
	if minCoverage == 0 {
		if _, ok := cfg.Embedder.(*HashEmbedder); ok {
			minCoverage = 0.5
		}
	}
	cfg.Chunking = cfg.Chunking.withDefaults()
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 64
	}
	if cfg.MaxDocumentBytes <= 0 {
		cfg.MaxDocumentBytes = 4 << 20
	}
	if cfg.QueryCacheSize <= 0 {
		cfg.QueryCacheSize = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Index{cfg: cfg, threshold: threshold, minCoverage: max(minCoverage, 0), snaps: map[string]*snapshot{}, queries: newVectorCache(cfg.QueryCacheSize)}, nil
}

// Threshold is the score a chunk needs to be a hit.
func (ix *Index) Threshold() float64 { return ix.threshold }

// Model is the embedding model the index searches with.
func (ix *Index) Model() string { return ix.cfg.Embedder.Model() }

var kbName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidKB reports whether name can name a knowledge base: 1-64 letters, digits or _.- not
// starting with punctuation.
func ValidKB(name string) bool { return kbName.MatchString(name) }

// Document is a text to ingest.
type Document struct {
	// Name identifies it within the knowledge base and is cited in answers ("returns.md").
	Name string
	// Content is Markdown or plain text.
	Content string
}

// IngestResult says what ingesting one document did.
type IngestResult struct {
	Doc string
	// Chunks is how many chunks the document has.
	Chunks int
	// Embedded is how many texts were sent to the embedder; cached ones are not.
	Embedded int
	// Unchanged is set when the same content was already ingested: nothing was done.
	Unchanged bool
}

// chunkerVersion is part of a document's hash: changing how documents are cut re-ingests
// them.
const chunkerVersion = "chunk-v1"

// Ingest stores a document in a knowledge base, replacing an earlier version with the same
// name. Unchanged content is skipped; only texts not embedded before are embedded. The
// document is stored only once every chunk has its vector, so a failing embedder leaves the
// previous version searchable.
func (ix *Index) Ingest(ctx context.Context, kb string, doc Document) (IngestResult, error) {
	res := IngestResult{Doc: doc.Name}
	if !ValidKB(kb) {
		return res, fmt.Errorf("ingest: bad knowledge base name %q (1-64 letters, digits or _.-)", kb)
	}
	doc.Name = strings.TrimSpace(doc.Name)
	res.Doc = doc.Name
	switch {
	case doc.Name == "" || len(doc.Name) > 512 || !utf8.ValidString(doc.Name):
		return res, errors.New("ingest: a document needs a name of 1-512 characters")
	case len(doc.Content) > ix.cfg.MaxDocumentBytes:
		return res, fmt.Errorf("ingest %s: %d bytes, over the limit of %d", doc.Name, len(doc.Content), ix.cfg.MaxDocumentBytes)
	case !utf8.ValidString(doc.Content):
		return res, fmt.Errorf("ingest %s: not UTF-8 text", doc.Name)
	case strings.TrimSpace(doc.Content) == "":
		return res, fmt.Errorf("ingest %s: empty document", doc.Name)
	}
	hash := contentHash(ix.cfg.Chunking, doc.Content)
	existing, err := ix.cfg.Store.GetDocument(ctx, kb, doc.Name)
	switch {
	case err == nil && existing.ContentHash == hash:
		res.Chunks, res.Unchanged = existing.Chunks, true
		return res, nil
	case err != nil && !errors.Is(err, session.ErrNotFound):
		return res, fmt.Errorf("ingest %s: %w", doc.Name, err)
	}
	parsed := ChunkMarkdown(doc.Content, ix.cfg.Chunking)
	if len(parsed.Chunks) == 0 {
		return res, fmt.Errorf("ingest %s: no text to index", doc.Name)
	}
	title := parsed.Title
	chunks := make([]session.KBChunk, len(parsed.Chunks))
	texts := make([]string, len(parsed.Chunks))
	for i, c := range parsed.Chunks {
		chunks[i] = session.KBChunk{KB: kb, Doc: doc.Name, Seq: i, Section: c.Section, Text: c.Text, Tokens: c.Tokens}
		texts[i] = embedText(title, c.Section, c.Text)
	}
	if _, res.Embedded, err = ix.vectors(ctx, texts); err != nil {
		return res, fmt.Errorf("ingest %s: %w", doc.Name, err)
	}
	stored, err := ix.cfg.Store.PutDocument(ctx, session.KBDocument{KB: kb, Name: doc.Name, Title: title, ContentHash: hash}, chunks)
	if err != nil {
		return res, fmt.Errorf("ingest %s: %w", doc.Name, err)
	}
	res.Chunks = stored.Chunks
	ix.cfg.Logger.DebugContext(ctx, "document ingested", "kb", kb, "doc", doc.Name, "chunks", res.Chunks, "embedded", res.Embedded)
	return res, nil
}

// Delete removes a document from a knowledge base.
func (ix *Index) Delete(ctx context.Context, kb, name string) error {
	return ix.cfg.Store.DeleteDocument(ctx, kb, name)
}

// Documents lists a knowledge base's documents.
func (ix *Index) Documents(ctx context.Context, kb string) ([]session.KBDocument, error) {
	return ix.cfg.Store.ListDocuments(ctx, kb)
}

func contentHash(cfg ChunkConfig, content string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s/%d/%d\x00", chunkerVersion, cfg.MinTokens, cfg.MaxTokens)
	h.Write([]byte(content))
	return hex.EncodeToString(h.Sum(nil))
}

// embedText is what is embedded for a chunk: its headings say what it is about, the section's
// twice, since it names the chunk's topic better than any sentence in it.
func embedText(title, section, text string) string {
	var b strings.Builder
	for _, h := range []string{title, section, section} {
		if h != "" {
			b.WriteString(h)
			b.WriteString("\n")
		}
	}
	b.WriteString(text)
	return b.String()
}

// vectors returns the vectors of texts from the cache, embedding (and caching) the missing
// ones; embedded counts those.
func (ix *Index) vectors(ctx context.Context, texts []string) (out [][]float32, embedded int, err error) {
	model := ix.cfg.Embedder.Model()
	keys := make([]string, len(texts))
	for i, t := range texts {
		keys[i] = session.EmbeddingKey(model, t)
	}
	cached, err := ix.cfg.Store.GetEmbeddings(ctx, keys)
	if err != nil {
		return nil, 0, err
	}
	// The same text twice in one batch is embedded once.
	var missing []string
	missingIdx := map[string]int{}
	var missingTexts []string
	for i, k := range keys {
		if _, ok := cached[k]; ok {
			continue
		}
		if _, ok := missingIdx[k]; ok {
			continue
		}
		missingIdx[k] = len(missing)
		missing = append(missing, k)
		missingTexts = append(missingTexts, texts[i])
	}
	for start := 0; start < len(missing); start += ix.cfg.BatchSize {
		end := min(start+ix.cfg.BatchSize, len(missing))
		vecs, err := ix.cfg.Embedder.Embed(ctx, missingTexts[start:end])
		if err != nil {
			return nil, embedded, fmt.Errorf("embed with %s: %w", model, err)
		}
		if len(vecs) != end-start {
			return nil, embedded, fmt.Errorf("embed with %s: %d vectors for %d texts", model, len(vecs), end-start)
		}
		embedded += end - start
		batch := make([]session.Embedding, len(vecs))
		for i, v := range vecs {
			batch[i] = session.Embedding{Key: missing[start+i], Model: model, Vector: v}
			cached[missing[start+i]] = v
		}
		if err := ix.cfg.Store.PutEmbeddings(ctx, batch); err != nil {
			return nil, embedded, err
		}
	}
	out = make([][]float32, len(texts))
	for i, k := range keys {
		out[i] = cached[k]
	}
	return out, embedded, nil
}

// Search implements Retriever: the k chunks most similar to query, best first, among those
// scoring at least the threshold. k <= 0 means 3; at most 50.
func (ix *Index) Search(ctx context.Context, kb, query string, k int) ([]Hit, error) {
	if !ValidKB(kb) {
		return nil, fmt.Errorf("search: bad knowledge base name %q", kb)
	}
	query = strings.TrimSpace(query)
	if query == "" {
		return nil, errors.New("search: empty query")
	}
	if k <= 0 {
		k = 3
	}
	k = min(k, 50)
	snap, err := ix.snapshot(ctx, kb)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", kb, err)
	}
	if len(snap.entries) == 0 {
		return nil, nil
	}
	qv, err := ix.queryVector(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", kb, err)
	}
	qterms := uniqueTerms(query)
	var hits []Hit
	for _, e := range snap.entries {
		score := Cosine(qv, e.vector)
		if score < ix.threshold {
			continue
		}
		coverage := snap.coverage(qterms, e.terms)
		if coverage < ix.minCoverage {
			continue
		}
		hits = append(hits, Hit{Doc: e.chunk.Doc, Section: e.chunk.Section, Text: e.chunk.Text, Score: score, Coverage: coverage})
	}
	// Ties keep the documents' order, so results are deterministic.
	sort.SliceStable(hits, func(a, b int) bool { return hits[a].Score > hits[b].Score })
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits, nil
}

func (ix *Index) queryVector(ctx context.Context, query string) ([]float32, error) {
	key := session.EmbeddingKey(ix.cfg.Embedder.Model(), query)
	if v, ok := ix.queries.get(key); ok {
		return v, nil
	}
	vecs, err := ix.cfg.Embedder.Embed(ctx, []string{query})
	if err != nil {
		return nil, fmt.Errorf("embed query: %w", err)
	}
	if len(vecs) != 1 {
		return nil, fmt.Errorf("embed query: %d vectors for 1 text", len(vecs))
	}
	ix.queries.put(key, vecs[0])
	return vecs[0], nil
}

// snapshot returns the knowledge base's vectors, reloading them when the store's revision
// moved. Chunks without a vector for this index's model (ingested with another embedder)
// are embedded now, once, and cached.
func (ix *Index) snapshot(ctx context.Context, kb string) (*snapshot, error) {
	rev, err := ix.cfg.Store.KBRevision(ctx, kb)
	if err != nil {
		return nil, err
	}
	if s := ix.cached(kb); s != nil && s.revision == rev {
		return s, nil
	}
	ix.loadMu.Lock()
	defer ix.loadMu.Unlock()
	if s := ix.cached(kb); s != nil && s.revision == rev {
		return s, nil
	}
	chunks, err := ix.cfg.Store.ListChunks(ctx, kb)
	if err != nil {
		return nil, err
	}
	titles := map[string]string{}
	if len(chunks) > 0 {
		docs, err := ix.cfg.Store.ListDocuments(ctx, kb)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			titles[d.Name] = d.Title
		}
	}
	texts := make([]string, len(chunks))
	for i, c := range chunks {
		texts[i] = embedText(titles[c.Doc], c.Section, c.Text)
	}
	vecs, embedded, err := ix.vectors(ctx, texts)
	if err != nil {
		return nil, err
	}
	if embedded > 0 {
		ix.cfg.Logger.InfoContext(ctx, "knowledge base embedded with a new model", "kb", kb, "model", ix.cfg.Embedder.Model(), "chunks", embedded)
	}
	s := &snapshot{revision: rev, entries: make([]entry, len(chunks)), df: map[string]int{}}
	for i, c := range chunks {
		terms := map[string]bool{}
		for _, t := range Terms(texts[i]) {
			terms[t] = true
		}
		for t := range terms {
			s.df[t]++
		}
		s.entries[i] = entry{chunk: c, vector: vecs[i], terms: terms}
	}
	ix.mu.Lock()
	ix.snaps[kb] = s
	ix.mu.Unlock()
	return s, nil
}

// coverage is the share of the query's terms found in a chunk, each weighted by its inverse
// document frequency in the knowledge base: missing a rare word ("damaged") costs more than
// missing a common one ("order"). A query with no terms (only stopwords) covers nothing.
func (s *snapshot) coverage(qterms []string, chunk map[string]bool) float64 {
	n := float64(len(s.entries))
	var total, found float64
	for _, t := range qterms {
		w := math.Log(1 + n/(float64(s.df[t])+0.5))
		total += w
		if chunk[t] {
			found += w
		}
	}
	if total == 0 {
		return 0
	}
	return found / total
}

func uniqueTerms(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range Terms(text) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func (ix *Index) cached(kb string) *snapshot {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.snaps[kb]
}

// vectorCache keeps recent query vectors; when full it forgets the oldest.
type vectorCache struct {
	mu    sync.Mutex
	max   int
	items map[string][]float32
	order []string
}

func newVectorCache(n int) *vectorCache {
	return &vectorCache{max: n, items: map[string][]float32{}}
}

func (c *vectorCache) get(key string) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.items[key]
	return v, ok
}

func (c *vectorCache) put(key string, v []float32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.items[key] = v
	c.order = append(c.order, key)
}
