package rag

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/session"
)

func openStore(t *testing.T) *session.SQLStore {
	t.Helper()
	st, err := session.OpenSQLite(t.Context(), session.SQLiteConfig{Path: filepath.Join(t.TempDir(), "rag.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newIndex(t *testing.T, cfg Config) *Index {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ix, err := NewIndex(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// counting wraps an embedder and counts what it was asked to embed.
type counting struct {
	Embedder
	mu    sync.Mutex
	calls int
	texts []string
	fail  error
}

func (c *counting) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.mu.Lock()
	c.calls++
	c.texts = append(c.texts, texts...)
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return c.Embedder.Embed(ctx, texts)
}

func (c *counting) count() (calls, texts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, len(c.texts)
}

// axes embeds a text as how often it says each of a few keywords: scores are exact and
// chosen by the test.
type axes struct{ words []string }

func (a axes) Model() string { return "axes-" + strings.Join(a.words, "-") }

func (a axes) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, len(a.words))
		for j, w := range a.words {
			v[j] = float32(strings.Count(strings.ToLower(t), w))
		}
		out[i] = v
	}
	return out, nil
}

func TestSearchAppliesThresholdAndTopK(t *testing.T) {
	ctx := t.Context()
	ix := newIndex(t, Config{Store: openStore(t), Embedder: axes{[]string{"apple", "pear", "plum"}}, Threshold: 0.5})
	docs := map[string]string{
		"apple.md": "## One\napple apple apple",
		"mixed.md": "## Two\napple pear",
		"pear.md":  "## Three\npear pear pear",
		"plum.md":  "## Four\nplum plum plum",
	}
	for name, content := range docs {
		if _, err := ix.Ingest(ctx, "fruit", Document{Name: name, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	cites := func(hits []Hit) []string {
		var out []string
		for _, h := range hits {
			out = append(out, h.Citation())
		}
		return out
	}
	tests := []struct {
		query string
		k     int
		want  []string
	}{
		// "apple" is 1.0 to apple.md and 0.707 to mixed.md; pear.md and plum.md are 0.
		{"apple", 5, []string{"apple.md › One", "mixed.md › Two"}},
		{"apple", 1, []string{"apple.md › One"}},
		// "apple plum": 0.707 to apple.md and plum.md (a tie: documents' order), 0.5 to mixed.md
		// (kept: at the threshold).
		{"apple plum", 3, []string{"apple.md › One", "plum.md › Four", "mixed.md › Two"}},
		{"apple plum", 2, []string{"apple.md › One", "plum.md › Four"}},
		// Nothing reaches the threshold.
		{"banana", 3, nil},
		// k <= 0 means 3.
		{"apple pear plum", 0, []string{"mixed.md › Two", "apple.md › One", "pear.md › Three"}},
	}
	for _, tt := range tests {
		hits, err := ix.Search(ctx, "fruit", tt.query, tt.k)
		if err != nil {
			t.Fatal(err)
		}
		if got := cites(hits); !slices.Equal(got, tt.want) {
			t.Errorf("Search(%q, %d) = %q, want %q", tt.query, tt.k, got, tt.want)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Score > hits[i-1].Score {
				t.Errorf("Search(%q): not sorted by score: %+v", tt.query, hits)
			}
		}
	}
	hits, _ := ix.Search(ctx, "fruit", "apple", 1)
	if hits[0].Text != "apple apple apple" || hits[0].Score < 0.999 {
		t.Errorf("hit %+v", hits[0])
	}
	if hits, err := ix.Search(ctx, "empty-kb", "apple", 3); err != nil || hits != nil {
		t.Errorf("an empty knowledge base: %v %v", hits, err)
	}
	for name, q := range map[string][2]string{"empty query": {"fruit", "  "}, "bad kb": {"../etc", "apple"}, "empty kb name": {"", "apple"}} {
		if _, err := ix.Search(ctx, q[0], q[1], 3); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// With the local embedder a hit must also contain most of the query's rarer words.
func TestLocalSearchNeedsTheQuerysWords(t *testing.T) {
	ctx := t.Context()
	ix := newIndex(t, Config{Store: openStore(t)})
	if ix.Threshold() != 0.15 || ix.minCoverage != 0.5 {
		t.Fatalf("local defaults: threshold %v, coverage %v", ix.Threshold(), ix.minCoverage)
	}
	for name, content := range map[string]string{
		"billing.md":  "## Payment methods\nWe accept Visa, Mastercard and PayPal. Your card is charged when the order ships.",
		"shipping.md": "## Delivery times\nStandard delivery takes 3 to 5 working days. Express arrives the next day.",
	} {
		if _, err := ix.Ingest(ctx, DefaultKB, Document{Name: name, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	hits, err := ix.Search(ctx, DefaultKB, "which payment methods do you accept?", 3)
	if err != nil || len(hits) == 0 || hits[0].Doc != "billing.md" || hits[0].Coverage < 0.5 {
		t.Fatalf("payment question: %+v %v", hits, err)
	}
	// "card" matches, but "gift" is the point of the question and no document has it.
	if hits, _ := ix.Search(ctx, DefaultKB, "do you sell gift cards?", 3); len(hits) != 0 {
		t.Fatalf("gift cards matched %+v", hits)
	}
	if hits, _ := ix.Search(ctx, DefaultKB, "what's the weather in Paris?", 3); len(hits) != 0 {
		t.Fatalf("weather matched %+v", hits)
	}
}

func TestIngestNeverEmbedsATextTwice(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	emb := &counting{Embedder: NewHashEmbedder(HashConfig{})}
	ix := newIndex(t, Config{Store: st, Embedder: emb, Chunking: ChunkConfig{MinTokens: 1, MaxTokens: 200}})
	doc := Document{Name: "returns.md", Content: "# Returns\n## Window\n30 days.\n## Exchanges\nReturn and reorder.\n## Label\nPrepaid label by email."}
	first, err := ix.Ingest(ctx, DefaultKB, doc)
	if err != nil {
		t.Fatal(err)
	}
	if first.Chunks != 3 || first.Embedded != 3 || first.Unchanged {
		t.Fatalf("first ingest %+v", first)
	}
	calls, _ := emb.count()

	again, err := ix.Ingest(ctx, DefaultKB, doc)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Unchanged || again.Embedded != 0 || again.Chunks != 3 {
		t.Fatalf("second ingest %+v", again)
	}
	if c, _ := emb.count(); c != calls {
		t.Fatalf("re-ingesting the same document called the embedder %d more times", c-calls)
	}
	if chunks, _ := st.ListChunks(ctx, DefaultKB); len(chunks) != 3 {
		t.Fatalf("%d chunks after re-ingest, want 3", len(chunks))
	}

	// A new process (fresh index, same store) finds everything in the cache too.
	emb2 := &counting{Embedder: NewHashEmbedder(HashConfig{})}
	ix2 := newIndex(t, Config{Store: st, Embedder: emb2, Chunking: ChunkConfig{MinTokens: 1, MaxTokens: 200}})
	if res, _ := ix2.Ingest(ctx, DefaultKB, doc); !res.Unchanged {
		t.Fatalf("fresh index re-ingested: %+v", res)
	}
	// The same document under another name: same texts, so nothing new to embed.
	if res, err := ix2.Ingest(ctx, DefaultKB, Document{Name: "copy.md", Content: doc.Content}); err != nil || res.Embedded != 0 || res.Chunks != 3 {
		t.Fatalf("copy: %+v %v", res, err)
	}
	if c, _ := emb2.count(); c != 0 {
		t.Fatalf("cached texts were embedded again (%d calls)", c)
	}

	// One section edited: only it is embedded.
	edited := strings.Replace(doc.Content, "30 days.", "60 days.", 1)
	res, err := ix.Ingest(ctx, DefaultKB, Document{Name: "returns.md", Content: edited})
	if err != nil || res.Embedded != 1 || res.Unchanged {
		t.Fatalf("edited: %+v %v", res, err)
	}
	// Searching loads the stored vectors (no chunk is embedded) and embeds each new query once.
	_, before := emb.count()
	for range 3 {
		if _, err := ix.Search(ctx, DefaultKB, "how many days do I have?", 3); err != nil {
			t.Fatal(err)
		}
	}
	if _, after := emb.count(); after-before != 1 {
		t.Fatalf("three searches embedded %d texts, want 1 (the query, once)", after-before)
	}
}

func TestSearchSeesChangesFromAnotherIndex(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	server := newIndex(t, Config{Store: st})
	cli := newIndex(t, Config{Store: st})
	if hits, _ := server.Search(ctx, DefaultKB, "password reset link", 3); len(hits) != 0 {
		t.Fatalf("hits before ingest: %+v", hits)
	}
	if _, err := cli.Ingest(ctx, DefaultKB, Document{Name: "account.md", Content: "## Reset your password\nPress Forgot password and we email a reset link."}); err != nil {
		t.Fatal(err)
	}
	hits, err := server.Search(ctx, DefaultKB, "password reset link", 3)
	if err != nil || len(hits) != 1 || hits[0].Citation() != "account.md › Reset your password" {
		t.Fatalf("after ingest: %+v %v", hits, err)
	}
	if err := cli.Delete(ctx, DefaultKB, "account.md"); err != nil {
		t.Fatal(err)
	}
	if hits, _ := server.Search(ctx, DefaultKB, "password reset link", 3); len(hits) != 0 {
		t.Fatalf("hits after delete: %+v", hits)
	}
}

// Vectors of one model are never compared with another's: a knowledge base ingested with
// one embedder is embedded again, once, by an index using another.
func TestAnotherModelEmbedsTheChunksOnce(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	small := newIndex(t, Config{Store: st, Embedder: NewHashEmbedder(HashConfig{Dims: 64})})
	if _, err := small.Ingest(ctx, DefaultKB, Document{Name: "a.md", Content: "## Refunds\nRefunds take five days."}); err != nil {
		t.Fatal(err)
	}
	emb := &counting{Embedder: NewHashEmbedder(HashConfig{Dims: 128})}
	big := newIndex(t, Config{Store: st, Embedder: emb})
	for range 2 {
		hits, err := big.Search(ctx, DefaultKB, "refunds", 3)
		if err != nil || len(hits) != 1 || hits[0].Doc != "a.md" {
			t.Fatalf("search: %+v %v", hits, err)
		}
	}
	if _, texts := emb.count(); texts != 2 {
		t.Fatalf("embedded %d texts, want 2 (the chunk once, the query once)", texts)
	}
}

func TestFailedEmbeddingKeepsThePreviousVersion(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	emb := &counting{Embedder: NewHashEmbedder(HashConfig{})}
	ix := newIndex(t, Config{Store: st, Embedder: emb})
	if _, err := ix.Ingest(ctx, DefaultKB, Document{Name: "a.md", Content: "## Old\nOld text."}); err != nil {
		t.Fatal(err)
	}
	emb.fail = errors.New("rate limited")
	if _, err := ix.Ingest(ctx, DefaultKB, Document{Name: "a.md", Content: "## New\nNew text."}); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("want the embedder's error, got %v", err)
	}
	chunks, _ := st.ListChunks(ctx, DefaultKB)
	if len(chunks) != 1 || chunks[0].Section != "Old" {
		t.Fatalf("chunks %+v", chunks)
	}
}

func TestIngestRefusesBadInput(t *testing.T) {
	ix := newIndex(t, Config{Store: openStore(t), MaxDocumentBytes: 100})
	tests := map[string]struct {
		kb  string
		doc Document
	}{
		"bad kb name":   {"../x", Document{Name: "a.md", Content: "hi"}},
		"empty kb name": {"", Document{Name: "a.md", Content: "hi"}},
		"no name":       {DefaultKB, Document{Name: " ", Content: "hi"}},
		"empty":         {DefaultKB, Document{Name: "a.md", Content: " \n "}},
		"not utf-8":     {DefaultKB, Document{Name: "a.md", Content: "\xff\xfe"}},
		"too large":     {DefaultKB, Document{Name: "a.md", Content: strings.Repeat("a", 101)}},
		"only headings": {DefaultKB, Document{Name: "a.md", Content: "# T\n## S"}},
	}
	for name, tt := range tests {
		if _, err := ix.Ingest(t.Context(), tt.kb, tt.doc); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := NewIndex(Config{}); err == nil {
		t.Error("an index without a store must be refused")
	}
}

func TestIngestPath(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	files := map[string]string{
		"returns.md":            "# Returns\n## Window\nThirty days.",
		"guides/setup.markdown": "## Install\nRun the installer.",
		"guides/deep/notes.TXT": "Plain notes.",
		"bad.md":                "\xff\xfe not text",
		"image.png":             "not a document",
		".hidden/secret.md":     "## Secret\nHidden.",
		".draft.md":             "## Draft\nHidden.",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t)
	ix := newIndex(t, Config{Store: st})
	var seen []Progress
	sum, err := ix.IngestPath(ctx, DefaultKB, dir, func(p Progress) { seen = append(seen, p) })
	if err == nil || !strings.Contains(err.Error(), "bad.md") {
		t.Fatalf("the bad file should be reported: %v", err)
	}
	var names []string
	for i, p := range seen {
		names = append(names, p.Name)
		if p.Done != i+1 || p.Total != 4 {
			t.Errorf("progress %d: %+v", i, p)
		}
	}
	if want := []string{"bad.md", "guides/deep/notes.TXT", "guides/setup.markdown", "returns.md"}; !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	if sum.Files != 4 || sum.Failed != 1 || sum.Chunks != 3 || sum.Unchanged != 0 {
		t.Fatalf("summary %+v", sum)
	}
	docs, _ := st.ListDocuments(ctx, DefaultKB)
	if len(docs) != 3 || docs[0].Name != "guides/deep/notes.TXT" || docs[2].Title != "Returns" {
		t.Fatalf("documents %+v", docs)
	}
	// Again: nothing changes.
	sum, _ = ix.IngestPath(ctx, DefaultKB, dir, nil)
	if sum.Unchanged != 3 || sum.Embedded != 0 {
		t.Fatalf("second run %+v", sum)
	}
	// A single file is named by its base name.
	if _, err := ix.IngestPath(ctx, "single", filepath.Join(dir, "guides", "setup.markdown"), nil); err != nil {
		t.Fatal(err)
	}
	if docs, _ := st.ListDocuments(ctx, "single"); len(docs) != 1 || docs[0].Name != "setup.markdown" {
		t.Fatalf("single file %+v", docs)
	}
	if _, err := ix.IngestPath(ctx, DefaultKB, filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("a missing path must be an error")
	}
	if _, err := ix.IngestPath(ctx, DefaultKB, filepath.Join(dir, ".hidden", "..", "guides", "deep", ".."), nil); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if _, err := ix.IngestPath(ctx, DefaultKB, empty, nil); err == nil {
		t.Fatal("a folder without documents must be an error")
	}
}

func TestQueryVectorCacheForgetsTheOldest(t *testing.T) {
	c := newVectorCache(2)
	c.put("a", []float32{1})
	c.put("b", []float32{2})
	c.put("a", []float32{9}) // already there: kept as it was
	c.put("c", []float32{3})
	if _, ok := c.get("a"); ok {
		t.Fatal("the oldest entry should be gone")
	}
	if v, ok := c.get("b"); !ok || v[0] != 2 {
		t.Fatal("b lost")
	}
	if v, ok := c.get("c"); !ok || v[0] != 3 {
		t.Fatal("c lost")
	}
}

// countingStore counts how often a knowledge base is loaded.
type countingStore struct {
	Store
	mu    sync.Mutex
	loads int
}

func (c *countingStore) ListChunks(ctx context.Context, kb string) ([]session.KBChunk, error) {
	c.mu.Lock()
	c.loads++
	c.mu.Unlock()
	return c.Store.ListChunks(ctx, kb)
}

// Many searches on a cold knowledge base load it once, and agree.
func TestConcurrentSearchesLoadOnce(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	if _, err := newIndex(t, Config{Store: st}).Ingest(ctx, DefaultKB, Document{Name: "a.md", Content: "## Refunds\nRefunds take five days."}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	ix := newIndex(t, Config{Store: cs})
	var wg sync.WaitGroup
	results := make([][]Hit, 16)
	errs := make([]error, 16)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = ix.Search(ctx, DefaultKB, "refunds", 3) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || len(results[i]) != 1 || results[i][0].Doc != "a.md" {
			t.Fatalf("search %d: %+v %v", i, results[i], errs[i])
		}
	}
	if cs.loads != 1 {
		t.Fatalf("the knowledge base was loaded %d times", cs.loads)
	}
}
