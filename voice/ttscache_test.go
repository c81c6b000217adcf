package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/dartmouth-gw/dartmouth/session"
)

// cacheClock is a session.Clock that only moves when told to.
type cacheClock struct {
	mu  sync.Mutex
	now time.Time
}

func newCacheClock() *cacheClock { return &cacheClock{now: time.UnixMilli(1_700_000_000_000).UTC()} }

func (c *cacheClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *cacheClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// cacheLocalBlobs is a local-folder blob store in a fresh temporary folder.
func cacheLocalBlobs(t testing.TB) *session.LocalBlobStore {
	t.Helper()
	b, err := session.NewLocalBlobStore(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cacheS3Blobs is the S3 store driven by the real client against an in-process S3 server
// (gofakes3 with its memory backend).
func cacheS3Blobs(t testing.TB) *session.S3BlobStore {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("audio"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	s, err := session.NewS3BlobStore(session.S3BlobConfig{
		Endpoint: srv.URL, Bucket: "audio", AccessKey: "AK", SecretKey: "SK",
		HTTPClient: &http.Client{Transport: transport},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cacheBlobStores are the blob stores every cache behaviour is checked against.
var cacheBlobStores = map[string]func(testing.TB) session.BlobStore{
	"local": func(t testing.TB) session.BlobStore { return cacheLocalBlobs(t) },
	"s3":    func(t testing.TB) session.BlobStore { return cacheS3Blobs(t) },
}

type cacheFixture struct {
	cache *TTSCache
	blobs session.BlobStore
	kv    *session.MemoryKV
	clock *cacheClock
}

func newCacheFixture(t testing.TB, blobs session.BlobStore, mutate func(*TTSCacheConfig)) *cacheFixture {
	t.Helper()
	clock := newCacheClock()
	kv := session.NewMemoryKV(clock)
	cfg := TTSCacheConfig{Blobs: blobs, KV: kv, Clock: clock}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewTTSCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cacheFixture{cache: c, blobs: blobs, kv: kv, clock: clock}
}

func readClose(t testing.TB, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

var cacheKeyHello = TTSCacheKey{Provider: "openai", Model: "tts-1", Voice: "alloy", Format: FormatMP3, Speed: 1, Text: "Hello there."}

func TestNewTTSCacheNeedsStores(t *testing.T) {
	if _, err := NewTTSCache(TTSCacheConfig{KV: session.NewMemoryKV(nil)}); err == nil || !strings.Contains(err.Error(), "blob") {
		t.Errorf("no blob store: error = %v", err)
	}
	if _, err := NewTTSCache(TTSCacheConfig{Blobs: cacheLocalBlobs(t)}); err == nil || !strings.Contains(err.Error(), "KV") {
		t.Errorf("no KV: error = %v", err)
	}
}

func TestTTSCacheKey(t *testing.T) {
	c := newCacheFixture(t, cacheLocalBlobs(t), nil).cache
	base := cacheKeyHello
	with := func(mut func(*TTSCacheKey)) TTSCacheKey {
		k := base
		mut(&k)
		return k
	}
	same := map[string]TTSCacheKey{
		"surrounding space":    with(func(k *TTSCacheKey) { k.Text = "  Hello there.\n" }),
		"inner whitespace":     with(func(k *TTSCacheKey) { k.Text = "Hello \t\n  there." }),
		"speed 0 means 1":      with(func(k *TTSCacheKey) { k.Speed = 0 }),
		"identical":            base,
		"NFC and NFD are one":  with(func(k *TTSCacheKey) { k.Text = "Caf\u00e9 au lait." }),
		"NFD spelling of café": with(func(k *TTSCacheKey) { k.Text = "Cafe\u0301 au lait." }),
	}
	if c.Hash(same["NFC and NFD are one"]) != c.Hash(same["NFD spelling of café"]) {
		t.Error("NFC and NFD spellings of the same text hash differently")
	}
	delete(same, "NFC and NFD are one")
	delete(same, "NFD spelling of café")
	for name, k := range same {
		if c.Hash(k) != c.Hash(base) {
			t.Errorf("%s: hash differs from the base key", name)
		}
	}
	different := map[string]TTSCacheKey{
		"lower case":  with(func(k *TTSCacheKey) { k.Text = "hello there." }),
		"punctuation": with(func(k *TTSCacheKey) { k.Text = "Hello there?" }),
		"provider":    with(func(k *TTSCacheKey) { k.Provider = "elevenlabs" }),
		"model":       with(func(k *TTSCacheKey) { k.Model = "tts-1-hd" }),
		"voice":       with(func(k *TTSCacheKey) { k.Voice = "nova" }),
		"format":      with(func(k *TTSCacheKey) { k.Format = FormatWAV }),
		"sample rate": with(func(k *TTSCacheKey) { k.SampleRate = 24000 }),
		"speed":       with(func(k *TTSCacheKey) { k.Speed = 1.25 }),
	}
	seen := map[string]string{c.Hash(base): "base"}
	for name, k := range different {
		h := c.Hash(k)
		if prev, dup := seen[h]; dup {
			t.Errorf("%s hashes like %s", name, prev)
		}
		seen[h] = name
	}
	other := newCacheFixture(t, cacheLocalBlobs(t), func(c *TTSCacheConfig) { c.Namespace = "v2" }).cache
	if other.Hash(base) == c.Hash(base) {
		t.Error("the namespace does not change the hash")
	}
	if h := c.Hash(base); len(h) != 64 {
		t.Errorf("hash %q is not hex SHA-256", h)
	}
}

func TestTTSCachePutGet(t *testing.T) {
	for name, newBlobs := range cacheBlobStores {
		t.Run(name, func(t *testing.T) {
			f := newCacheFixture(t, newBlobs(t), nil)
			ctx := t.Context()
			if _, _, err := f.cache.Get(ctx, cacheKeyHello); !errors.Is(err, ErrTTSCacheMiss) {
				t.Fatalf("Get before Put error = %v, want ErrTTSCacheMiss", err)
			}
			audioBytes := []byte("ID3\x04 fake mp3 bytes")
			entry := TTSCacheEntry{Provider: "openai", Model: "tts-1", Voice: "alloy", Format: FormatMP3}
			if err := f.cache.Put(ctx, cacheKeyHello, entry, bytes.NewReader(audioBytes)); err != nil {
				t.Fatalf("Put: %v", err)
			}

			for range 2 {
				rc, got, err := f.cache.Get(ctx, cacheKeyHello)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if b := readClose(t, rc); !bytes.Equal(b, audioBytes) {
					t.Fatalf("Get audio = %q, want %q", b, audioBytes)
				}
				want := TTSCacheEntry{Provider: "openai", Model: "tts-1", Voice: "alloy", Format: FormatMP3,
					ContentType: "audio/mpeg", Bytes: int64(len(audioBytes)), CreatedAt: f.clock.Now()}
				if *got != want {
					t.Fatalf("entry = %+v, want %+v", *got, want)
				}
			}

			// The layout others rely on: the blob under tts/<hash>.mp3, the JSON index and the
			// hit counter in KV.
			hash := f.cache.Hash(cacheKeyHello)
			rc, err := f.blobs.Get(ctx, "tts/"+hash+".mp3")
			if err != nil {
				t.Fatalf("blob tts/<hash>.mp3: %v", err)
			}
			readClose(t, rc)
			raw, err := f.kv.Get(ctx, "ttscache:"+hash)
			if err != nil {
				t.Fatalf("index entry: %v", err)
			}
			var fields map[string]any
			if err := json.Unmarshal(raw, &fields); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"provider", "model", "voice", "format", "sampleRate", "contentType", "bytes", "createdAt"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("index entry %s lacks %q", raw, k)
				}
			}
			if n, err := f.cache.HitCount(ctx, cacheKeyHello); err != nil || n != 2 {
				t.Errorf("HitCount = %d, %v; want 2", n, err)
			}
			s := f.cache.Stats()
			want := TTSCacheStats{Hits: 2, Misses: 1, HitRate: 2.0 / 3, BytesServed: 2 * int64(len(audioBytes)), Writes: 1}
			if s != want {
				t.Errorf("Stats = %+v, want %+v", s, want)
			}
		})
	}
}

func TestTTSCacheExtensions(t *testing.T) {
	f := newCacheFixture(t, cacheLocalBlobs(t), nil)
	for format, ext := range map[string]string{FormatMP3: "mp3", FormatWAV: "wav", FormatPCM16: "pcm",
		FormatULaw: "ulaw", FormatALaw: "alaw", FormatOpus: "opus"} {
		k := cacheKeyHello
		k.Format = format
		if err := f.cache.Put(t.Context(), k, TTSCacheEntry{Format: format}, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		rc, err := f.blobs.Get(t.Context(), "tts/"+f.cache.Hash(k)+"."+ext)
		if err != nil {
			t.Errorf("%s: no blob with extension .%s: %v", format, ext, err)
			continue
		}
		rc.Close()
	}
}

func TestTTSCachePutRefuses(t *testing.T) {
	f := newCacheFixture(t, cacheLocalBlobs(t), func(c *TTSCacheConfig) { c.MaxEntryBytes = 8 })
	ctx := t.Context()
	tests := []struct {
		name    string
		entry   TTSCacheEntry
		audio   io.Reader
		wantErr error
	}{
		{"too large", TTSCacheEntry{Format: FormatMP3}, strings.NewReader("123456789"), ErrTTSCacheTooLarge},
		{"reader fails", TTSCacheEntry{Format: FormatMP3}, iotest.ErrReader(errors.New("boom")), nil},
		{"no audio", TTSCacheEntry{Format: FormatMP3}, strings.NewReader(""), nil},
		{"no format", TTSCacheEntry{}, strings.NewReader("1234"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.cache.Put(ctx, cacheKeyHello, tt.entry, tt.audio)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Put error = %v, want %v", err, tt.wantErr)
			}
			if _, _, err := f.cache.Get(ctx, cacheKeyHello); !errors.Is(err, ErrTTSCacheMiss) {
				t.Errorf("Get after a refused Put error = %v, want a miss", err)
			}
		})
	}
	// Exactly the limit is fine.
	if err := f.cache.Put(ctx, cacheKeyHello, TTSCacheEntry{Format: FormatMP3}, strings.NewReader("12345678")); err != nil {
		t.Errorf("Put of exactly MaxEntryBytes: %v", err)
	}
}

// cacheStream is a provider stream: its content, then optionally an error instead of EOF, and
// an error from Close.
type cacheStream struct {
	r        io.Reader
	closeErr error
	closed   bool
}

func (s *cacheStream) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *cacheStream) Close() error {
	s.closed = true
	return s.closeErr
}

func TestTTSCacheTee(t *testing.T) {
	errCut := errors.New("connection reset")
	full := strings.Repeat("audio-", 100)
	tests := []struct {
		name       string
		stream     func() *cacheStream
		readAll    bool // else the caller stops after the first 10 bytes
		wantStored bool
	}{
		{"complete stream", func() *cacheStream { return &cacheStream{r: strings.NewReader(full)} }, true, true},
		{"cut stream", func() *cacheStream {
			return &cacheStream{r: io.MultiReader(strings.NewReader(full[:200]), iotest.ErrReader(errCut))}
		}, true, false},
		{"closed before the end", func() *cacheStream { return &cacheStream{r: strings.NewReader(full)} }, false, false},
		{"close fails (engine exit status)", func() *cacheStream {
			return &cacheStream{r: strings.NewReader(full), closeErr: errors.New("exit status 1")}
		}, true, false},
		{"larger than the limit", func() *cacheStream { return &cacheStream{r: strings.NewReader(full + "x")} }, true, false},
		{"empty", func() *cacheStream { return &cacheStream{r: strings.NewReader("")} }, true, false},
	}
	for name, newBlobs := range cacheBlobStores {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				f := newCacheFixture(t, newBlobs(t), func(c *TTSCacheConfig) { c.MaxEntryBytes = int64(len(full)) })
				src := tt.stream()
				tee := f.cache.Tee(t.Context(), cacheKeyHello, TTSCacheEntry{Provider: "openai", Format: FormatMP3}, src)
				var got []byte
				var readErr error
				if tt.readAll {
					got, readErr = io.ReadAll(tee)
				} else {
					got = make([]byte, 10)
					_, readErr = io.ReadFull(tee, got)
				}
				closeErr := tee.Close()
				if !src.closed {
					t.Error("the provider stream was not closed")
				}
				if src.closeErr != nil && !errors.Is(closeErr, src.closeErr) {
					t.Errorf("Close error = %v, want the stream's %v", closeErr, src.closeErr)
				}
				if tt.name == "cut stream" && !errors.Is(readErr, errCut) {
					t.Errorf("read error = %v, want the stream's own", readErr)
				}
				if tt.name == "larger than the limit" && string(got) != full+"x" {
					t.Error("audio over the limit was not passed through whole")
				}
				rc, entry, err := f.cache.Get(t.Context(), cacheKeyHello)
				if stored := err == nil; stored != tt.wantStored {
					t.Fatalf("stored = %v, want %v (Get error %v)", stored, tt.wantStored, err)
				}
				if tt.wantStored {
					if b := readClose(t, rc); string(b) != full || entry.Bytes != int64(len(full)) {
						t.Errorf("cached %d bytes (entry says %d), want %d", len(b), entry.Bytes, len(full))
					}
				} else if f.cache.Stats().Skipped != 1 {
					t.Errorf("Skipped = %d, want 1", f.cache.Stats().Skipped)
				}
			})
		}
	}
}

// Only the index expires; the orphaned blob is harmless and the next Put overwrites it.
func TestTTSCacheTTL(t *testing.T) {
	f := newCacheFixture(t, cacheLocalBlobs(t), func(c *TTSCacheConfig) { c.TTL = time.Hour })
	ctx := t.Context()
	if err := f.cache.Put(ctx, cacheKeyHello, TTSCacheEntry{Format: FormatMP3}, strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(59 * time.Minute)
	if rc, _, err := f.cache.Get(ctx, cacheKeyHello); err != nil {
		t.Fatalf("Get before the TTL: %v", err)
	} else {
		rc.Close()
	}
	f.clock.Advance(time.Minute)
	if _, _, err := f.cache.Get(ctx, cacheKeyHello); !errors.Is(err, ErrTTSCacheMiss) {
		t.Fatalf("Get after the TTL error = %v, want a miss", err)
	}
	blobKey := "tts/" + f.cache.Hash(cacheKeyHello) + ".mp3"
	if rc, err := f.blobs.Get(ctx, blobKey); err != nil {
		t.Fatalf("the blob should outlive its index entry: %v", err)
	} else {
		rc.Close()
	}
	if err := f.cache.Put(ctx, cacheKeyHello, TTSCacheEntry{Format: FormatMP3}, strings.NewReader("new")); err != nil {
		t.Fatal(err)
	}
	rc, _, err := f.cache.Get(ctx, cacheKeyHello)
	if err != nil {
		t.Fatal(err)
	}
	if b := readClose(t, rc); string(b) != "new" {
		t.Errorf("after re-Put the cache serves %q, want new", b)
	}
}

// A blob removed behind the index's back reads as a miss and the index entry is dropped.
func TestTTSCacheMissingBlobIsAMiss(t *testing.T) {
	for name, newBlobs := range cacheBlobStores {
		t.Run(name, func(t *testing.T) {
			f := newCacheFixture(t, newBlobs(t), nil)
			ctx := t.Context()
			if err := f.cache.Put(ctx, cacheKeyHello, TTSCacheEntry{Format: FormatMP3}, strings.NewReader("a")); err != nil {
				t.Fatal(err)
			}
			hash := f.cache.Hash(cacheKeyHello)
			if err := f.blobs.Delete(ctx, "tts/"+hash+".mp3"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.cache.Get(ctx, cacheKeyHello); !errors.Is(err, ErrTTSCacheMiss) {
				t.Fatalf("Get error = %v, want a miss", err)
			}
			if _, err := f.kv.Get(ctx, "ttscache:"+hash); !errors.Is(err, session.ErrKeyNotFound) {
				t.Errorf("index entry still there: %v", err)
			}
		})
	}
}

func TestTTSCacheGetStopsOnCancel(t *testing.T) {
	f := newCacheFixture(t, cacheLocalBlobs(t), nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := f.cache.Get(ctx, cacheKeyHello); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get error = %v, want context.Canceled", err)
	}
	if s := f.cache.Stats(); s.Misses != 0 {
		t.Errorf("a cancelled lookup counted as a miss: %+v", s)
	}
}

func TestSplitSentences(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only space", "  \n\t ", nil},
		{"one", "Hello there.", []string{"Hello there."}},
		{"no terminator", "hello there", []string{"hello there"}},
		{"three kinds", "Hi! How are you? Fine.", []string{"Hi!", "How are you?", "Fine."}},
		{"titles", "Mr. Smith met Dr. Jones and Mrs. Brown. They talked.", []string{"Mr. Smith met Dr. Jones and Mrs. Brown.", "They talked."}},
		{"latin", "Bring fruit, e.g. apples or pears, i.e. something sweet. Thanks.", []string{"Bring fruit, e.g. apples or pears, i.e. something sweet.", "Thanks."}},
		{"decimals", "Pi is 3.14 and e is 2.718. Nice.", []string{"Pi is 3.14 and e is 2.718.", "Nice."}},
		{"version and domain", "Install v1.2.3 from example.com today. Done.", []string{"Install v1.2.3 from example.com today.", "Done."}},
		{"ellipsis", "Well... I think so. Maybe…  not.", []string{"Well...", "I think so.", "Maybe…", "not."}},
		{"repeated marks", "Really?! Yes!!", []string{"Really?!", "Yes!!"}},
		{"closing quote", `He said "stop." Then he left.`, []string{`He said "stop."`, "Then he left."}},
		{"closing bracket", "It works (mostly.) Ship it.", []string{"It works (mostly.)", "Ship it."}},
		{"newlines", "First line\nSecond line\r\n\r\nThird. Fourth", []string{"First line", "Second line", "Third.", "Fourth"}},
		{"initials", "J. R. R. Tolkien wrote it. Read it.", []string{"J. R. R. Tolkien wrote it.", "Read it."}},
		{"number abbreviation", "See No. 5 on p. 12. No. I refuse.", []string{"See No. 5 on p. 12.", "No.", "I refuse."}},
		{"etc mid-sentence", "Apples, pears, etc. are fruit.", []string{"Apples, pears, etc. are fruit."}},
		{"etc at the end", "Apples, pears, etc. Then vegetables.", []string{"Apples, pears, etc.", "Then vegetables."}},
		{"dotted abbreviation", "Call at 5 p.m. tomorrow. I live in the U.S. Next year too.", []string{"Call at 5 p.m. tomorrow.", "I live in the U.S.", "Next year too."}},
		{"vs", "Cats vs. dogs. Discuss.", []string{"Cats vs. dogs.", "Discuss."}},
		{"cjk", "你好。今天好吗？好！", []string{"你好。", "今天好吗？", "好！"}},
		{"collapses nothing inside", "Hello   world.  Bye.", []string{"Hello   world.", "Bye."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SplitSentences(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("SplitSentences(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitSentencesMaxCutsLongSentences(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"at a comma", "one two three four, five six seven eight nine", 30,
			[]string{"one two three four,", "five six seven eight nine"}},
		{"at a space when no comma", "aaaa bbbb cccc dddd eeee ffff", 12,
			[]string{"aaaa bbbb", "cccc dddd", "eeee ffff"}},
		{"comma too early is ignored", "a, bbbbbbbbb cccccccc dddddddd", 20,
			[]string{"a, bbbbbbbbb", "cccccccc dddddddd"}},
		{"mid-word without spaces", "abcdefghijklmnopqrstuvwxyz", 10,
			[]string{"abcdefghij", "klmnopqrst", "uvwxyz"}},
		{"runes, not bytes", "ééééé ééééé", 5, []string{"ééééé", "ééééé"}},
		{"no limit", "aaaa bbbb cccc", 0, []string{"aaaa bbbb cccc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitSentencesMax(tt.in, tt.max)
			if !slices.Equal(got, tt.want) {
				t.Errorf("SplitSentencesMax(%q, %d)\n got %q\nwant %q", tt.in, tt.max, got, tt.want)
			}
			for _, s := range got {
				if tt.max > 0 && len([]rune(s)) > tt.max {
					t.Errorf("piece %q is over %d runes", s, tt.max)
				}
			}
		})
	}
	long := strings.Repeat("word ", 200) + "end."
	for _, s := range SplitSentences(long) {
		if n := len([]rune(s)); n > DefaultMaxSentenceRunes {
			t.Errorf("SplitSentences left a %d-rune piece (limit %d)", n, DefaultMaxSentenceRunes)
		}
	}
}

// BenchmarkTTSCacheHit measures the first-byte latency of serving a sentence from the local
// folder cache, replaying a small conversation workload in which stock phrases repeat: each op
// looks one sentence up and reads it, or on a miss stores it as a provider would (untimed). It
// reports the hit rate of the workload and the mean, median and p99 time to the first byte of
// a hit.
func BenchmarkTTSCacheHit(b *testing.B) {
	f := newCacheFixture(b, cacheLocalBlobs(b), nil)
	ctx := b.Context()
	stock := []string{"Hello! How can I help you today?", "Sure, one moment please.", "Is there anything else?",
		"Thanks for calling. Goodbye!", "I have added that to your list."}
	// One pass: 40 stock phrases and 10 one-off sentences ("%d" is filled with the op number,
	// so they never repeat, as replies quoting user data do not): ~80% hits once warm.
	var workload []string
	for i := range 40 {
		workload = append(workload, stock[i%len(stock)])
		if i%4 == 0 {
			workload = append(workload, "Your reminder number %d is set for tomorrow.")
		}
	}
	audioBytes := bytes.Repeat([]byte{0xff, 0xfb, 0x90, 0x64}, 6<<10) // ~24 KiB, one sentence of MP3
	buf := make([]byte, 4<<10)
	var hits, misses int
	var firstByte time.Duration
	var firstBytes []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		text := workload[i%len(workload)]
		if strings.Contains(text, "%d") {
			text = fmt.Sprintf(text, i)
		}
		k := TTSCacheKey{Provider: "openai", Model: "tts-1", Voice: "alloy", Format: FormatMP3, Text: text}
		start := time.Now()
		rc, _, err := f.cache.Get(ctx, k)
		if errors.Is(err, ErrTTSCacheMiss) {
			misses++
			b.StopTimer() // storing stands for the provider call: not what is measured
			if err := f.cache.Put(ctx, k, TTSCacheEntry{Provider: "openai", Format: FormatMP3}, bytes.NewReader(audioBytes)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadAtLeast(rc, buf, 1); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		firstByte += took
		firstBytes = append(firstBytes, took)
		hits++
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
	b.ReportMetric(float64(hits)/float64(hits+misses), "hit-rate")
	if hits > 0 {
		b.ReportMetric(float64(firstByte.Nanoseconds())/float64(hits), "ns/first-byte")
		slices.Sort(firstBytes)
		b.ReportMetric(float64(firstBytes[(hits-1)/2].Nanoseconds()), "ns/first-byte-p50")
		b.ReportMetric(float64(firstBytes[min(hits-1, hits*99/100)].Nanoseconds()), "ns/first-byte-p99")
	}
}
