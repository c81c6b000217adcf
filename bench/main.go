// Command bench measures the gateway against the targets of issue 9 and prints one table:
// figure, median, p99, target, pass/fail. `make bench` runs it from the repository root.
//
// It builds the real binary (./cmd/dartmouth), starts it on loopback with rate limits off, a
// fresh data folder and an instant fake OpenAI-compatible provider (OPENAI_BASE_URL), so the
// figures are the gateway's own cost, and loads it: text relay overhead, SSE token relay
// throughput, idle WebSocket sessions. The voice, TTS cache, MP3 and replayed-workload figures
// come from the packages' Go benchmarks, run from test binaries. Every figure is measured
// -runs times; the table shows the medians of the runs, and bench/results/<UTC time>.json
// keeps them with the machine they came from, so runs can be compared.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Config is every setting of a bench run; flags set it, and -quick scales it down.
type Config struct {
	Runs int // repetitions of every figure; the table shows their medians. Default 3.

	RelayConcurrency int // concurrent clients of the relay measurement. Default 8.
	RelayRequests    int // measured requests of each kind per run. Default 4000.
	RelayWarmUp      int // discarded requests of each kind per run. Default 400.

	SSETokens  int // tokens per throughput stream. Default 50,000.
	SSEStreams int // throughput streams per run. Default 3.

	// IdleSessions is the number of idle WebSocket sessions to hold (default 50,000, issue 9's
	// target); the file-descriptor limits may cap it, and the table says so.
	IdleSessions int

	VoiceSessions int // concurrent voice sessions of the lateness figure. Default 500.

	GoBench  bool   // run the packages' Go benchmarks. Default true.
	Markdown bool   // print the table as Markdown.
	Results  string // folder of the JSON results, relative to the repository. Default bench/results.
	Quick    bool   // one short run of everything, for a smoke test
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Runs, "runs", 3, "repetitions of every figure (the table shows their medians)")
	fs.IntVar(&c.RelayConcurrency, "relay-concurrency", 8, "concurrent clients of the relay overhead measurement")
	fs.IntVar(&c.RelayRequests, "relay-requests", 4000, "measured requests of each kind (gateway/direct, streamed/not) per run")
	fs.IntVar(&c.RelayWarmUp, "relay-warmup", 400, "discarded warm-up requests of each kind per run")
	fs.IntVar(&c.SSETokens, "sse-tokens", 50000, "tokens per SSE throughput stream")
	fs.IntVar(&c.SSEStreams, "sse-streams", 3, "SSE throughput streams per run")
	fs.IntVar(&c.IdleSessions, "ws-sessions", 50000, "idle WebSocket sessions to hold (capped by the open-file limits)")
	fs.IntVar(&c.VoiceSessions, "voice-sessions", 500, "concurrent voice sessions of the frame-lateness figure")
	fs.BoolVar(&c.GoBench, "go-bench", true, "run the packages' Go benchmarks (voice, TTS cache, MP3, workload)")
	fs.BoolVar(&c.Markdown, "markdown", false, "print the table as Markdown")
	fs.StringVar(&c.Results, "results", "bench/results", "folder for the JSON results, relative to the repository root; empty: none")
	fs.BoolVar(&c.Quick, "quick", false, "one short run (fewer requests, 2,000 idle sessions, shorter Go benchmarks)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.Quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := func(name string, p *int, v int) {
			if !set[name] {
				*p = v
			}
		}
		quick("runs", &c.Runs, 1)
		quick("relay-requests", &c.RelayRequests, 400)
		quick("relay-warmup", &c.RelayWarmUp, 80)
		quick("sse-tokens", &c.SSETokens, 20000)
		quick("sse-streams", &c.SSEStreams, 1)
		quick("ws-sessions", &c.IdleSessions, 2000)
		quick("voice-sessions", &c.VoiceSessions, 100)
	}
	switch {
	case c.Runs < 1, c.RelayConcurrency < 1, c.RelayRequests < 1, c.RelayWarmUp < 0, c.SSETokens < 1, c.SSEStreams < 1, c.VoiceSessions < 1:
		return c, errors.New("-runs, -relay-concurrency, -relay-requests, -sse-tokens, -sse-streams and -voice-sessions must be positive")
	case c.IdleSessions < 200:
		return c, errors.New("-ws-sessions must be at least 200 (100 of them are the warm-up)")
	}
	return c, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// report is what a run writes to bench/results.
type report struct {
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	Machine  machine   `json:"machine"`
	Config   Config    `json:"config"`
	Figures  []*figure `json:"figures"`
}

func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	started := time.Now().UTC()
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "dartmouth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	m := describeMachine(ctx, repo)
	limit, err := raiseOpenFileLimit(uint64(cfg.IdleSessions) + 4096)
	if err != nil {
		return fmt.Errorf("raise the open-file limit: %w", err)
	}
	logf("open-file limit of the bench: %d (hard %d)", limit.Cur, limit.Max)

	logf("building the gateway (go build ./cmd/dartmouth)")
	bin, err := buildGateway(ctx, repo, work)
	if err != nil {
		return err
	}
	provider, err := startFakeProvider(ctx)
	if err != nil {
		return err
	}
	defer provider.Close()

	figs := newFigures(cfg)
	byKey := map[string]*figure{}
	for _, f := range figs {
		byKey[f.Key] = f
	}
	tests := &testBinaries{repo: repo, dir: work, built: map[string]string{}}
	var direct directFigures
	for r := range cfg.Runs {
		logf("run %d of %d: text relay and SSE throughput", r+1, cfg.Runs)
		if err := runText(ctx, cfg, bin, work, provider.URL, byKey, &direct); err != nil {
			return err
		}
		logf("run %d of %d: idle WebSocket sessions", r+1, cfg.Runs)
		if err := runIdle(ctx, cfg, bin, work, provider.URL, byKey, &direct, logf); err != nil {
			return err
		}
		if cfg.GoBench {
			logf("run %d of %d: Go benchmarks", r+1, cfg.Runs)
			runGoBenches(ctx, cfg, tests, byKey, logf)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	// Without the Go benchmarks their figures have no runs: leave them out of the table.
	figs = slices.DeleteFunc(figs, func(f *figure) bool { return len(f.Runs) == 0 })
	for _, f := range figs {
		f.settle()
	}
	direct.annotate(byKey, cfg.RelayConcurrency)
	m.LoadAvgEnd = loadAverage()

	fmt.Fprintln(stdout)
	printTable(stdout, figs, cfg.Markdown)
	fmt.Fprintf(stdout, "\nmachine: %d cores, %.1f GB, %s, %s, commit %s; load average %s at the start, %s at the end\n",
		m.NumCPU, float64(m.MemTotalBytes)/(1<<30), m.CPUModel, m.GoVersion, m.GitCommit, m.LoadAvgStart, m.LoadAvgEnd)

	if cfg.Results == "" {
		return nil
	}
	rep := report{Started: started, Duration: time.Since(started).Round(time.Second).String(), Machine: m, Config: cfg, Figures: figs}
	dir := filepath.Join(repo, cfg.Results)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, started.Format("20060102T150405Z")+".json")
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "results: %s\n", path)
	return nil
}

// newFigures lists the rows in the table's order: the five measured against the binary,
// then those from Go benchmarks.
func newFigures(cfg Config) []*figure {
	below := func(limit float64) func(m, _ float64) bool { return func(m, _ float64) bool { return m < limit } }
	atLeast := func(limit float64) func(m, _ float64) bool { return func(m, _ float64) bool { return m >= limit } }
	relay := func(m, p99 float64) bool { return m < 0.3 && p99 < 2 }
	return []*figure{
		{Key: "relay_overhead_plain", Name: fmt.Sprintf("text relay overhead, non-streamed (c=%d)", cfg.RelayConcurrency), Unit: "ms", Target: "median < 0.3 ms, p99 < 2 ms", check: relay},
		{Key: "relay_overhead_stream", Name: fmt.Sprintf("text relay overhead, streamed (c=%d)", cfg.RelayConcurrency), Unit: "ms", Target: "median < 0.3 ms, p99 < 2 ms", check: relay},
		{Key: "sse_tokens_per_second", Name: "SSE token relay throughput, one stream", Unit: "tokens/s", Target: ">= 200,000 tokens/s", check: atLeast(200000)},
		{Key: "idle_ws_sessions", Name: "idle WebSocket sessions held at once", Unit: "sessions", Target: ">= 50,000", check: atLeast(50000)},
		{Key: "idle_ws_kb_per_session", Name: "idle WebSocket memory per session (RSS)", Unit: "KB", Target: "< 20 KB", check: below(20)},
		{Key: "voice_sessions_lateness", Name: fmt.Sprintf("%d voice sessions, reply frame lateness", cfg.VoiceSessions), Unit: "ms",
			Target: "p99 < 20 ms at >= 500 sessions", check: func(_, p99 float64) bool { return cfg.VoiceSessions >= 500 && p99 < 20 }},
		{Key: "voice_ws_first_audio", Name: "voice latency, end of speech to first audio (WS)", Unit: "ms", Target: "median < 15 ms", check: below(15)},
		{Key: "voice_pipeline_first_audio", Name: "voice latency, end of speech to first audio (pipeline)", Unit: "ms", Target: "median < 15 ms", check: below(15)},
		{Key: "tts_cache_first_byte", Name: "TTS cache hit, first byte (local folder)", Unit: "ms", Target: "median < 1 ms", check: below(1)},
		{Key: "mp3_decode_resample", Name: "MP3 decode + resample to 16 kHz, one core", Unit: "x", Target: ">= 200x real time", check: atLeast(200)},
		{Key: "workload_llm_cache_hit", Name: "replayed conversations: LLM cache hit rate", Unit: "%", Target: "report"},
		{Key: "workload_tts_cache_hit", Name: "replayed sentences: TTS cache hit rate", Unit: "%", Target: "report"},
		{Key: "workload_usd_uncached", Name: "replayed conversations: USD per 1,000, no cache", Unit: "USD", Target: "report"},
		{Key: "workload_usd_cached", Name: "replayed conversations: USD per 1,000, cached", Unit: "USD", Target: "report"},
	}
}

// directFigures keeps the context of the relay figures: the latencies and throughput of the
// provider called directly and through the gateway.
type directFigures struct {
	gwPlain, directPlain, gwStream, directStream []float64 // medians per run, ms
	soloPlain, soloStream                        []float64 // overhead medians at concurrency 1, ms
	directSSE                                    []float64 // tokens/s per run
	idleGoroutines, idleHeapKB, idleStackKB      []float64 // per added idle session, per run
}

func (d *directFigures) annotate(byKey map[string]*figure, concurrency int) {
	byKey["relay_overhead_plain"].note("gateway %.3f ms vs provider directly %.3f ms (medians); overhead = gateway quantile - direct quantile, interleaved in one run",
		median(d.gwPlain), median(d.directPlain))
	byKey["relay_overhead_stream"].note("gateway %.3f ms vs provider directly %.3f ms (medians, whole 8-token stream)", median(d.gwStream), median(d.directStream))
	if len(d.soloPlain) > 0 {
		byKey["relay_overhead_plain"].note("with one client instead of %d: %.3f ms median overhead", concurrency, median(d.soloPlain))
		byKey["relay_overhead_stream"].note("with one client instead of %d: %.3f ms median overhead", concurrency, median(d.soloStream))
	}
	byKey["sse_tokens_per_second"].note("the fake provider alone streams %s tokens/s to the same client", thousands(int64(median(d.directSSE))))
	if len(d.idleHeapKB) > 0 {
		byKey["idle_ws_kb_per_session"].note("of which Go heap in use %.1f KB and goroutine stacks %.1f KB, %.1f goroutines per session (the gateway's /metrics)",
			median(d.idleHeapKB), median(d.idleStackKB), median(d.idleGoroutines))
	}
}

// runText measures the relay overhead and the SSE throughput on a fresh gateway.
func runText(ctx context.Context, cfg Config, bin, work, providerURL string, byKey map[string]*figure, d *directFigures) error {
	g, err := startGateway(ctx, bin, work, providerURL)
	if err != nil {
		return err
	}
	defer g.Stop()
	res, err := measureRelay(ctx, g.URL, providerURL, relayConfig{Concurrency: cfg.RelayConcurrency, Requests: cfg.RelayRequests, WarmUp: cfg.RelayWarmUp})
	if err != nil {
		err = fmt.Errorf("%w\ngateway log:\n%s", err, g.logTail())
		byKey["relay_overhead_plain"].fail(err)
		byKey["relay_overhead_stream"].fail(err)
	} else {
		byKey["relay_overhead_plain"].add(res.overhead(false, .5), res.overhead(false, .99))
		byKey["relay_overhead_stream"].add(res.overhead(true, .5), res.overhead(true, .99))
		d.gwPlain = append(d.gwPlain, quantile(res.ms[gatewayPlain], .5))
		d.directPlain = append(d.directPlain, quantile(res.ms[directPlain], .5))
		d.gwStream = append(d.gwStream, quantile(res.ms[gatewayStream], .5))
		d.directStream = append(d.directStream, quantile(res.ms[directStream], .5))
	}

	// The same alone (one client, fewer requests): the gateway's own cost per request without
	// queueing behind the other seven, for the notes.
	if res, err := measureRelay(ctx, g.URL, providerURL, relayConfig{Concurrency: 1, Requests: max(50, cfg.RelayRequests/16), WarmUp: 20}); err == nil {
		d.soloPlain = append(d.soloPlain, res.overhead(false, .5))
		d.soloStream = append(d.soloStream, res.overhead(true, .5))
	}

	client := newLoopbackClient(1)
	defer client.CloseIdleConnections()
	var rates []float64
	for range cfg.SSEStreams {
		rate, err := measureSSE(ctx, client, g.URL+"/v1/chat/completions", cfg.SSETokens)
		if err != nil {
			byKey["sse_tokens_per_second"].fail(fmt.Errorf("%w\ngateway log:\n%s", err, g.logTail()))
			return nil
		}
		rates = append(rates, rate)
	}
	byKey["sse_tokens_per_second"].add(median(rates), nan)
	if rate, err := measureSSE(ctx, client, providerURL+"/chat/completions", cfg.SSETokens); err == nil {
		d.directSSE = append(d.directSSE, rate)
	}
	return nil
}

// runIdle holds idle WebSocket sessions on a fresh gateway and reads its memory.
func runIdle(ctx context.Context, cfg Config, bin, work, providerURL string, byKey map[string]*figure, d *directFigures, logf func(string, ...any)) error {
	g, err := startGateway(ctx, bin, work, providerURL, "--ws-idle-timeout", "1h")
	if err != nil {
		return err
	}
	defer g.Stop()
	gwLimit, err := openFileLimit(g.PID())
	if err != nil {
		return err
	}
	var own syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own)
	// Each side holds one descriptor per session; keep a margin for everything else (the
	// database, the listener, the Go runtime, the other measurements' clients).
	const margin = 256
	sessions := min(int64(cfg.IdleSessions), gwLimit-margin, int64(own.Cur)-margin)
	const warmUp = 100
	res, err := measureIdleSessions(ctx, g, int(sessions), warmUp, func(s string) { logf("%s", s) })
	if err != nil {
		err = fmt.Errorf("%w\ngateway log:\n%s", err, g.logTail())
		byKey["idle_ws_sessions"].fail(err)
		byKey["idle_ws_kb_per_session"].fail(err)
		return nil
	}
	byKey["idle_ws_sessions"].add(float64(res.Sessions), nan)
	byKey["idle_ws_kb_per_session"].add(res.BytesPerSession/1000, nan)
	d.idleGoroutines = append(d.idleGoroutines, res.GoroutinesPerSession)
	d.idleHeapKB = append(d.idleHeapKB, res.HeapPerSession/1000)
	d.idleStackKB = append(d.idleStackKB, res.StackPerSession/1000)
	if sessions < int64(cfg.IdleSessions) && len(byKey["idle_ws_sessions"].Notes) == 0 {
		byKey["idle_ws_sessions"].note("capped at %d by the open-file limit: the gateway runs with RLIMIT_NOFILE %d (the Go runtime raises its soft limit to the hard limit), the bench with %d (hard %d); a higher hard limit needs CAP_SYS_RESOURCE or `ulimit -Hn` by root",
			sessions, gwLimit, own.Cur, own.Max)
	}
	if len(byKey["idle_ws_kb_per_session"].Notes) == 0 {
		byKey["idle_ws_kb_per_session"].note("RSS growth of the gateway process (VmRSS) from %d to %d open sessions, divided by the %d added; 1 KB = 1000 bytes",
			warmUp, sessions, sessions-warmUp)
	}
	return nil
}

// runGoBenches runs each Go benchmark once and records its metrics.
func runGoBenches(ctx context.Context, cfg Config, tests *testBinaries, byKey map[string]*figure, logf func(string, ...any)) {
	short := func(full, quick string) string {
		if cfg.Quick {
			return quick
		}
		return full
	}
	type record func(l benchLine)
	metric := func(l benchLine, unit string) float64 {
		if v, ok := l.Metrics[unit]; ok {
			return v
		}
		return nan
	}
	benches := []struct {
		goBench
		figures []string // the figures that fail with the benchmark
		record  record
	}{
		{goBench{Pkg: "./agents/", Name: "BenchmarkReplayedConversations", BenchTime: short("3x", "1x")},
			[]string{"workload_llm_cache_hit", "workload_usd_uncached", "workload_usd_cached"},
			func(l benchLine) {
				byKey["workload_llm_cache_hit"].add(metric(l, "cache-hit-%"), nan)
				byKey["workload_usd_uncached"].add(metric(l, "USD/1k-conv-uncached"), nan)
				byKey["workload_usd_cached"].add(metric(l, "USD/1k-conv-cached"), nan)
			}},
		{goBench{Pkg: "./voice/", Name: "BenchmarkTTSCacheHit", BenchTime: short("20000x", "2000x")},
			[]string{"tts_cache_first_byte", "workload_tts_cache_hit"},
			func(l benchLine) {
				byKey["tts_cache_first_byte"].add(metric(l, "ns/first-byte-p50")/1e6, metric(l, "ns/first-byte-p99")/1e6)
				byKey["workload_tts_cache_hit"].add(100*metric(l, "hit-rate"), nan)
			}},
		{goBench{Pkg: "./voice/audio/", Name: "BenchmarkMP3DecodeResample16k", BenchTime: short("2s", "300ms"), CPU: "1"},
			[]string{"mp3_decode_resample"},
			func(l benchLine) { byKey["mp3_decode_resample"].add(metric(l, "x-realtime"), nan) }},
		{goBench{Pkg: "./voice/", Name: "BenchmarkPipelineEndOfSpeechToFirstAudio", BenchTime: short("100x", "20x")},
			[]string{"voice_pipeline_first_audio"},
			func(l benchLine) {
				byKey["voice_pipeline_first_audio"].add(metric(l, "median-ms"), metric(l, "p99-ms"))
			}},
		{goBench{Pkg: "./gateway/", Name: "BenchmarkVoiceWSEndOfSpeechToFirstAudio", BenchTime: short("200x", "30x")},
			[]string{"voice_ws_first_audio"},
			func(l benchLine) {
				byKey["voice_ws_first_audio"].add(metric(l, "client-median-ms"), metric(l, "client-p99-ms"))
			}},
		{goBench{Pkg: "./gateway/", Name: "BenchmarkVoiceWSSessionsAtTarget", BenchTime: "1x",
			Env: []string{fmt.Sprintf("DARTMOUTH_BENCH_VOICE_SESSIONS=%d", cfg.VoiceSessions)}},
			[]string{"voice_sessions_lateness"},
			func(l benchLine) {
				byKey["voice_sessions_lateness"].add(metric(l, "lateness-median-ms"), metric(l, "lateness-p99-ms"))
			}},
	}
	for _, b := range benches {
		if ctx.Err() != nil {
			return
		}
		logf("  %s %s (-benchtime %s)", b.Pkg, b.Name, b.BenchTime)
		l, err := tests.run(ctx, b.goBench)
		if err != nil {
			logf("  failed: %s", firstLine(err.Error()))
			for _, key := range b.figures {
				byKey[key].fail(err)
			}
			continue
		}
		b.record(l)
	}
}

// repoRoot is the folder of this module's go.mod, found from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/dartmouth-gw/dartmouth\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench inside the dartmouth repository (no go.mod of github.com/dartmouth-gw/dartmouth above the working directory)")
		}
		dir = parent
	}
}

// machine is where the figures came from.
type machine struct {
	NumCPU        int    `json:"nproc"`
	MemTotalBytes int64  `json:"memTotalBytes"`
	CPUModel      string `json:"cpuModel"`
	Kernel        string `json:"kernel"`
	GoVersion     string `json:"goVersion"`
	GitCommit     string `json:"gitCommit"` // with "+dirty" when the work tree has changes
	// LoadAvgStart and LoadAvgEnd (1, 5, 15 minutes) tell whether other work shared the
	// machine.
	LoadAvgStart string `json:"loadAvgStart"`
	LoadAvgEnd   string `json:"loadAvgEnd"`
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

func describeMachine(ctx context.Context, repo string) machine {
	m := machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := procFieldBytes("/proc/meminfo", "MemTotal"); err == nil {
		m.MemTotalBytes = b
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if name, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUModel = strings.TrimSpace(val)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.LoadAvgStart = loadAverage()
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	m.GitCommit = git("rev-parse", "--short=12", "HEAD")
	if m.GitCommit != "" && git("status", "--porcelain", "--untracked-files=no") != "" {
		m.GitCommit += "+dirty"
	}
	return m
}
