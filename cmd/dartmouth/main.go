// Command dartmouth is the gateway binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/artwork"
	"github.com/dartmouth-gw/dartmouth/agents/fam"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/agents/pa"
	"github.com/dartmouth-gw/dartmouth/agents/support"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dartmouth:", err)
			os.Exit(1)
		}
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "dartmouth", version)
		return nil
	case "serve", "migrate":
	case "say":
		return say(ctx, args, getenv, stdout, stderr)
	case "kb":
		return kbCommand(ctx, args, getenv, stdout, stderr)
	case "keys":
		return keysCommand(ctx, args, getenv, stdout, stderr)
	case "backup":
		return backupCommand(ctx, args, getenv, stdout, stderr)
	case "restore":
		return restoreCommand(ctx, args, getenv, stdout, stderr)
	case "help":
		args = []string{"--help"}
	default:
		return fmt.Errorf("unknown command %q (try --help)", cmd)
	}
	cfg, err := parseConfig("dartmouth "+cmd, args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	store, where, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if cmd == "migrate" {
		logger.Info("migrations applied", "database", where)
		return nil
	}
	return serve(ctx, cfg, store, logger)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// providers builds the LLM chain from the configuration: OpenAI (or a compatible server),
// then Anthropic, then the offline engine.
func providers(cfg *Config, logger *slog.Logger) *llm.Chain {
	var list []llm.Provider
	if cfg.OpenAIAPIKey != "" || cfg.OpenAIBaseURL != "" {
		list = append(list, llm.NewOpenAI(llm.OpenAIConfig{APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL, Model: cfg.OpenAIModel}))
	}
	if cfg.AnthropicAPIKey != "" {
		list = append(list, llm.NewAnthropic(llm.AnthropicConfig{APIKey: cfg.AnthropicAPIKey, BaseURL: cfg.AnthropicBaseURL, Model: cfg.AnthropicModel}))
	}
	if len(list) == 0 || cfg.OfflineFallback {
		list = append(list, offline.New(offline.Config{}))
	}
	names := make([]string, len(list))
	for i, p := range list {
		names[i] = p.Name()
	}
	if len(list) == 1 {
		logger.Warn("no language model configured: answering with the offline engine (set OPENAI_API_KEY, ANTHROPIC_API_KEY or OPENAI_BASE_URL)")
	}
	logger.Info("llm providers", "order", strings.Join(names, " > "))
	return llm.NewChain(llm.ChainConfig{FirstTokenTimeout: cfg.FirstTokenTimeout, Logger: logger}, list...)
}

func hasModel(cfg *Config) bool {
	return cfg.OpenAIAPIKey != "" || cfg.OpenAIBaseURL != "" || cfg.AnthropicAPIKey != ""
}

// primaryModel is the model the chain asks first: budget estimates are priced with it.
func primaryModel(cfg *Config) string {
	if m := listedModels(cfg); len(m) > 0 {
		return m[0].ID
	}
	return ""
}

// cacheNamespace changes when the providers or their models change, so cached replies of one
// setup are never replayed for another.
func cacheNamespace(cfg *Config) string {
	ns := "offline"
	if cfg.OpenAIAPIKey != "" || cfg.OpenAIBaseURL != "" {
		ns = "openai:" + cfg.OpenAIBaseURL + ":" + cfg.OpenAIModel
	}
	if cfg.AnthropicAPIKey != "" {
		ns += ">anthropic:" + cfg.AnthropicModel
	}
	return ns
}

// listedModels is what GET /v1/models offers besides the agents: the default model of the
// first provider the chain asks. Other names work too; they are passed to the chain as they are.
func listedModels(cfg *Config) []gateway.Model {
	switch {
	case cfg.OpenAIAPIKey != "" || cfg.OpenAIBaseURL != "":
		return []gateway.Model{{ID: cfg.OpenAIModel, OwnedBy: "openai"}}
	case cfg.AnthropicAPIKey != "":
		return []gateway.Model{{ID: cfg.AnthropicModel, OwnedBy: "anthropic"}}
	}
	return []gateway.Model{{ID: offline.ModelName, OwnedBy: "dartmouth"}}
}

func serve(ctx context.Context, cfg *Config, store *session.SQLStore, logger *slog.Logger) error {
	limits, err := newRateLimiting(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer limits.Close() // after the server has shut down: in-flight requests may still count
	// Caches, budget counters and summaries live in Redis when replicas share one, so they
	// stay exact across processes; in process memory otherwise.
	memoryKV := session.NewMemoryKV(nil)
	var kv session.KV = memoryKV
	if limits.redis != nil {
		kv = session.NewRedisKV(limits.redis, "")
	}
	blobs, err := blobStore(cfg)
	if err != nil {
		return err
	}
	// The passthrough agent serves /v1/chat/completions for model names that are not agents.
	kbIndex, err := newKBIndex(cfg, embeddingOptionsFromEnv(os.Getenv), store, logger)
	if err != nil {
		return err
	}
	supportAgent, err := support.New(support.Config{Retriever: kbIndex, Tickets: store, Generate: hasModel(cfg), Logger: logger})
	if err != nil {
		return err
	}
	paAgent, err := newPA(cfg, store, logger)
	if err != nil {
		return err
	}
	registry, err := agents.NewRegistry(fam.New(fam.Config{Knowledge: kbIndex, Handoffs: fam.Handoffs{Human: support.ID, Agents: []string{pa.ID}}, Logger: logger}), artwork.New(artwork.Config{}), supportAgent, paAgent, agents.Passthrough{})
	if err != nil {
		return err
	}
	chain := providers(cfg, logger)
	prices, cache, budget, err := economics(cfg, kv, store, cacheNamespace(cfg), logger)
	if err != nil {
		return err
	}
	if budget != nil {
		defer budget.Close()
	}
	ops, err := newOperations(cfg, store, logger)
	if err != nil {
		return err
	}
	engineCfg := agents.EngineConfig{
		Store: store, Registry: registry, LLM: chain, Logger: logger, KV: kv,
		Prices: prices, Cache: cache, Budget: budget, EstimateModel: primaryModel(cfg), SavingModel: cfg.SavingModel,
		Events: ops.events,
	}
	if cfg.SummaryLLM && hasModel(cfg) {
		engineCfg.Summarizer = agents.LLMSummarizer{LLM: chain}
	}
	engine, err := agents.NewEngine(engineCfg)
	if err != nil {
		return err
	}
	var speech *voice.Router
	if cfg.Voice {
		if speech, err = voiceRouter(cfg, kv, blobs, prices, budget, logger); err != nil {
			return err
		}
	}
	webRTC, err := cfg.webRTC()
	if err != nil {
		return err
	}
	srv, err := gateway.New(gateway.Config{
		WebRTC:          webRTC,
		Engine:          engine,
		Logger:          logger,
		BodyLimit:       cfg.BodyLimit,
		RequestTimeout:  cfg.RequestTimeout,
		AllowedOrigins:  cfg.origins(),
		WSMaxFrameBytes: cfg.WSMaxFrameBytes,
		WSIdleTimeout:   cfg.WSIdleTimeout,
		Static:          web.FS(),
		LLMHealth:       chain,
		Version:         version,
		Models:          listedModels(cfg),
		RateLimiter:     limits.limiter,
		Voice:           speech,
		RateLimits:      limits.plans,
		Auth:            authConfig(cfg, store),
		PA:              store,
		Tickets:         store,
		KnowledgeBase:   kbIndex,
		Broker:          limits.broker(logger),
		ErrorReporter:   ops.reporter,
		Analytics:       store,
		Checks: append([]gateway.HealthCheck{
			{Name: "sql", Check: store.Ping},
			{Name: "kv", Check: kv.Ping},
			{Name: "blobs", Check: blobs.Ping},
		}, limits.checks...),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	logger.Info("dartmouth listening", "addr", ln.Addr().String(), "dataDir", cfg.DataDir, "version", version, "pid", os.Getpid())

	bg, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	sweeperDone := make(chan struct{})
	go func() {
		defer close(sweeperDone)
		memoryKV.Run(bg, time.Minute)
	}()
	ops.start(bg, logger)
	reminders, err := reminderScheduler(cfg, srv, store, logger)
	if err != nil {
		return err
	}
	// Reminders fire from the job scheduler, with cleanup, archival and the analytics roll-up.
	warmers, err := sentenceWarmer(speech, store, logger)
	if err != nil {
		return err
	}
	background, err := newBackgroundJobs(cfg, store, kv, blobs, limits.redis, reminders, logger, warmers...)
	if err != nil {
		return err
	}
	remindersDone := background.start(bg)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		ops.close()
		stopBackground()
		<-sweeperDone
		<-remindersDone
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: letting in-flight streams finish", "grace", cfg.ShutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	<-serveErr
	ops.close() // the last turns' analytics events, and error reports, before the store closes
	stopBackground()
	<-sweeperDone
	<-remindersDone
	logger.Info("stopped")
	return err
}
