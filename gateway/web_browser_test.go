package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
	"github.com/dartmouth-gw/dartmouth/web"
)

// The web widget, the demo page and the dashboard in a real browser: headless Debian Chromium
// driven by playwright-core (web/test/browser.test.mjs) against a real gateway on loopback,
// with a fake microphone fed from a WAV of a spoken sentence, the local speech engines
// (pocketsphinx hears it, flite answers) and an LLM provider the test paces chunk by chunk.
// Missing tools (chromium, node, playwright-core) are installed when possible; when they
// cannot be, the test fails: it never skips.

// spokenSentence is what the fake microphone says, and what pocketsphinx hears from flite.
const spokenSentence = "remind me to call mom at five pm"

// pacedReply is the paced provider's answer, chunk by chunk: long enough (several sentences)
// that its audio is still playing when the browser test interrupts it, and free of what FAM's
// reply validator holds back until a sentence ends (digits, promises, prices), so every chunk
// reaches the page as it is generated.
var pacedReply = []string{"Sure. ", "Dartmouth answers ", "by voice and ", "by text, ", "and it keeps ", "what it says ",
	"in a cache. ", "Ask me anything ", "you like."}

// pacedProvider streams pacedReply. A request whose last message contains "slowly" is gated:
// the first chunk comes at once and each next one only when release is signalled, so a test
// can see every part on the page before the next exists. While holdSpoken is on, a reply to
// the spoken sentence stops before its last chunk until cancelled, so the turn is surely still
// running on the gateway when the test barges in, however late the browser plays its audio.
// Other requests stream at once. The model is priced (gpt-4o-mini), so turns cost money on the
// dashboard.
type pacedProvider struct {
	release    chan struct{}
	holdSpoken atomic.Bool
}

func (p *pacedProvider) Name() string { return "paced" }

func (p *pacedProvider) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	var last string
	if len(req.Messages) > 0 {
		last = req.Messages[len(req.Messages)-1].Content
	}
	gated := strings.Contains(last, "slowly")
	held := p.holdSpoken.Load() && strings.Contains(last, "mom")
	return func(yield func(llm.Chunk, error) bool) {
		for i, text := range pacedReply {
			var wait <-chan struct{}
			switch {
			case gated && i > 0:
				wait = p.release
			case held && i == len(pacedReply)-1:
				wait = make(chan struct{}) // until cancelled
			}
			if wait != nil {
				select {
				case <-wait:
				case <-ctx.Done():
					yield(llm.Chunk{}, ctx.Err())
					return
				}
			}
			if !yield(llm.Chunk{Text: text, Provider: "paced", Model: "gpt-4o-mini"}, nil) {
				return
			}
		}
		yield(llm.Chunk{Provider: "paced", Model: "gpt-4o-mini", Usage: &llm.Usage{InputTokens: 1200, OutputTokens: 40}}, nil)
	}
}

func TestWebInBrowser(t *testing.T) {
	tools := browserTools(t)
	dir := t.TempDir()
	wavPath := filepath.Join(dir, "mic.wav")
	if err := os.WriteFile(wavPath, fakeMicrophoneWAV(t), 0o644); err != nil {
		t.Fatal(err)
	}

	// The page that embeds the widget comes from another origin, as on a customer's site.
	provider := &pacedProvider{release: make(chan struct{})}
	var gatewayURL string
	var gatewayOnce sync.Once
	gatewayReady := make(chan struct{})
	pages := http.NewServeMux()
	page := func(attrs string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			<-gatewayReady
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A customer's page</title>
<link rel="icon" href="data:,"><style>body { font: 16px serif; } div, p, button { color: red; border: 5px solid lime; }</style></head>
<body><h1>A customer's page</h1><p>Some content.</p>
<script src="%s/widget.js" data-agent="fam" data-meta="true" data-title="Ask Dartmouth" %s async></script></body></html>`, gatewayURL, attrs)
		}
	}
	pages.HandleFunc("GET /widget.html", page(""))
	pages.HandleFunc("GET /native.html", page(`data-mode="native"`))
	pages.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		select {
		case provider.release <- struct{}{}:
			w.WriteHeader(http.StatusNoContent)
		case <-time.After(10 * time.Second):
			http.Error(w, "no gated reply is waiting for its next chunk", http.StatusConflict)
		}
	})
	pages.HandleFunc("POST /hold", func(w http.ResponseWriter, r *http.Request) {
		provider.holdSpoken.Store(true)
		w.WriteHeader(http.StatusNoContent)
	})
	pages.HandleFunc("DELETE /hold", func(w http.ResponseWriter, r *http.Request) {
		provider.holdSpoken.Store(false)
		w.WriteHeader(http.StatusNoContent)
	})
	pageSrv := &http.Server{Handler: pages, ReadHeaderTimeout: 5 * time.Second}
	pageLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go pageSrv.Serve(pageLn)
	defer func() {
		gatewayOnce.Do(func() { close(gatewayReady) })
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		pageSrv.Shutdown(shutdownCtx)
	}()
	pageOrigin := "http://" + pageLn.Addr().String()

	g := startBrowserGateway(t, provider, pageOrigin)
	gatewayURL = g.URL
	gatewayOnce.Do(func() { close(gatewayReady) })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.node, "--test", "--test-reporter=spec", "--test-concurrency=1", "browser.test.mjs")
	cmd.Dir = tools.testDir
	cmd.Env = append(os.Environ(),
		"DM_CHROMIUM="+tools.chromium, "DM_GATEWAY="+g.URL, "DM_PAGES="+pageOrigin, "DM_WAV="+wavPath,
		"DM_ADMIN_KEY="+webAdminKey, "DM_SENTENCE="+spokenSentence, "DM_REPLY="+strings.Join(pacedReply, "\x1f"),
		"DM_OUT="+dir)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("browser tests (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("the browser tests failed: %v", err)
	}

	// The dashboard's screenshot is a real picture, not a blank page.
	shot, err := os.ReadFile(filepath.Join(dir, "dashboard.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the dashboard screenshot is not a PNG: %v", err)
	}
	colors := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, gg, bb, a := img.At(x, y).RGBA()
			colors[[4]uint32{r >> 12, gg >> 12, bb >> 12, a >> 12}] = true
		}
	}
	if b.Dx() < 800 || b.Dy() < 600 || len(colors) < 8 {
		t.Fatalf("the dashboard screenshot looks empty: %dx%d, %d colours", b.Dx(), b.Dy(), len(colors))
	}
}

// startBrowserGateway runs the gateway as cmd wires it, on loopback: the paced provider behind
// a chain (circuit breakers), a response cache, budgets, the local speech engines with a TTS
// cache, the web pages, an admin key, and the page's origin allowed.
func startBrowserGateway(t *testing.T, provider llm.Provider, pageOrigin string) *testGateway {
	t.Helper()
	ctx := context.Background()
	store, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: t.TempDir() + "/web.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	kv := session.NewMemoryKV(nil)
	chain := llm.NewChain(llm.ChainConfig{Logger: quiet}, provider)
	cache, err := agents.NewResponseCache(agents.ResponseCacheConfig{KV: kv, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	budget, err := agents.NewBudget(agents.BudgetConfig{KV: kv, DailyUSD: 1, MonthlyUSD: 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(budget.Close)
	reg, err := agents.NewRegistry(fam.New(fam.Config{}), agents.Passthrough{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := agents.NewEngine(agents.EngineConfig{Store: store, Registry: reg, LLM: chain, Logger: quiet, KV: kv, Cache: cache, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	tts, err := voice.NewLocalTTS(voice.LocalTTSConfig{Engine: voice.LocalEngineFlite})
	if err != nil {
		t.Fatal(err)
	}
	stt, err := voice.NewLocalSTT(voice.LocalSTTConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func() error{"local TTS (flite)": tts.Check, "local STT (pocketsphinx)": stt.Check} {
		if err := check(); err != nil {
			t.Fatalf("%s unavailable (make test-deps installs it): %v", name, err)
		}
	}
	blobs, err := session.NewLocalBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ttsCache, err := voice.NewTTSCache(voice.TTSCacheConfig{Blobs: blobs, KV: kv, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	router, err := voice.NewRouter(voice.RouterConfig{TTS: []voice.TTS{tts}, STT: []voice.STT{stt}, Cache: ttsCache, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(gateway.Config{
		Engine: engine, Logger: quiet, Static: web.FS(), LLMHealth: chain, Voice: router,
		AllowedOrigins: []string{pageOrigin}, Auth: gateway.AuthConfig{AdminKey: webAdminKey},
		Checks: []gateway.HealthCheck{{Name: "sql", Check: store.Ping}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{URL: "http://" + ln.Addr().String(), Store: store, Srv: srv, done: make(chan error, 1)}
	go func() { g.done <- srv.Serve(ln) }()
	t.Cleanup(func() { g.shutdown(t) })
	return g
}

// fakeMicrophoneWAV is what Chromium's fake microphone plays, in a loop: faint room noise,
// the spoken sentence (flite's kal16 voice, which pocketsphinx hears exactly), then a long
// quiet stretch so the reply is transcribed, answered and played before the sentence comes
// round again. Chromium wants 48 kHz mono.
func fakeMicrophoneWAV(t *testing.T) []byte {
	t.Helper()
	speech := spokenPCM(t, spokenSentence)
	samples := append(append(roomNoise(500), speech...), roomNoise(12000)...)
	return audio.EncodeWAV(audio.Resample(audio.PCM{Rate: 16000, Samples: samples}, 48000))
}

type browserToolset struct {
	chromium, node, testDir string
}

// browserTools finds (or installs) Chromium, Node.js and playwright-core. A tool that cannot be
// had fails the test: the browser tests are part of the suite, not an optional extra.
func browserTools(t *testing.T) browserToolset {
	t.Helper()
	testDir, err := filepath.Abs("../web/test")
	if err != nil {
		t.Fatal(err)
	}
	tools := browserToolset{testDir: testDir}
	tools.chromium = os.Getenv("DARTMOUTH_CHROMIUM")
	if tools.chromium == "" {
		tools.chromium, err = exec.LookPath("chromium")
		if err != nil {
			aptInstall(t, "chromium")
			if tools.chromium, err = exec.LookPath("chromium"); err != nil {
				t.Fatalf("chromium is not installed and could not be (make test-deps installs the Debian package chromium): %v", err)
			}
		}
	}
	if tools.node, err = exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed (the browser tests need Node.js 18 or later): %v", err)
	}
	if _, err := os.Stat(filepath.Join(testDir, "node_modules", "playwright-core", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("playwright-core is not installed in web/test and npm is missing to install it: %v", err)
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = testDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in web/test (make test-deps runs it): %v\n%s", err, out)
		}
	}
	return tools
}

// aptInstall installs Debian packages when the test runs as root with apt-get; otherwise it
// does nothing and the caller's check fails with its own message.
func aptInstall(t *testing.T, packages ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return
	}
	t.Logf("installing %s...", strings.Join(packages, " "))
	if out, err := exec.Command(apt, "update", "-qq").CombinedOutput(); err != nil {
		t.Logf("apt-get update: %v\n%s", err, out)
	}
	cmd := exec.Command(apt, append([]string{"install", "-y", "-qq"}, packages...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("apt-get install %s: %v\n%s", strings.Join(packages, " "), err, out)
	}
}
