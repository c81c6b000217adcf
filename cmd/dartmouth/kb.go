package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/mattn/go-isatty"
)

const kbUsage = `usage:
  dartmouth kb ingest PATH [--kb NAME]   ingest a Markdown/text file, or a folder of them (recursively)
  dartmouth kb list [--kb NAME]          list the documents of a knowledge base
  dartmouth kb search [--kb NAME] [--k N] QUERY
                                         show what retrieval finds for QUERY, with scores
  dartmouth kb delete [--kb NAME] DOC    remove a document (DOC as listed)
flags: --embeddings local|openai|auto, --embedding-model, and every gateway flag (--data-dir ...)`

// embeddingOptions choose the embedder. The gateway must search with the embedder the
// knowledge base was ingested with (another one works, but embeds every chunk again on first
// use), so `serve` and `kb` read the same settings.
type embeddingOptions struct {
	// Mode is "local" (hashed bag of words, offline), "openai" (the Embeddings API at
	// OPENAI_BASE_URL, with OPENAI_API_KEY) or "auto": openai when an OpenAI key is set,
	// local otherwise. Default "auto".
	Mode string
	// Model is the OpenAI embedding model. Default "text-embedding-3-small".
	Model string
}

// embeddingOptionsFromEnv reads DARTMOUTH_EMBEDDINGS and DARTMOUTH_EMBEDDING_MODEL.
func embeddingOptionsFromEnv(getenv func(string) string) embeddingOptions {
	return embeddingOptions{Mode: getenv("DARTMOUTH_EMBEDDINGS"), Model: getenv("DARTMOUTH_EMBEDDING_MODEL")}
}

// newEmbedder builds the embedder the options name.
func newEmbedder(cfg *Config, opts embeddingOptions) (rag.Embedder, error) {
	mode := strings.ToLower(strings.TrimSpace(opts.Mode))
	if mode == "" || mode == "auto" {
		// Only a real OpenAI key means text-embedding-3-small is there: a local server named
		// by OPENAI_BASE_URL alone rarely serves it.
		mode = "local"
		if cfg.OpenAIAPIKey != "" {
			mode = "openai"
		}
	}
	switch mode {
	case "local":
		return rag.NewHashEmbedder(rag.HashConfig{}), nil
	case "openai":
		if cfg.OpenAIAPIKey == "" && cfg.OpenAIBaseURL == "" {
			return nil, errors.New("embeddings: openai needs OPENAI_API_KEY or OPENAI_BASE_URL")
		}
		return rag.NewOpenAIEmbedder(rag.OpenAIEmbedderConfig{APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL, Model: opts.Model}), nil
	}
	return nil, fmt.Errorf("embeddings: unknown mode %q (local, openai or auto)", opts.Mode)
}

// newKBIndex opens retrieval over the store with the configured embedder.
func newKBIndex(cfg *Config, opts embeddingOptions, store rag.Store, logger *slog.Logger) (*rag.Index, error) {
	emb, err := newEmbedder(cfg, opts)
	if err != nil {
		return nil, err
	}
	return rag.NewIndex(rag.Config{Store: store, Embedder: emb, Logger: logger})
}

// kbCommand runs `dartmouth kb ...`: ingest, list, search and delete knowledge-base documents
// in the gateway's SQLite database.
func kbCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, kbUsage)
		return errors.New("kb: name a subcommand: ingest, list, search or delete")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "ingest", "list", "search", "delete":
	case "help":
		fmt.Fprintln(stdout, kbUsage)
		return nil
	default:
		fmt.Fprintln(stderr, kbUsage)
		return fmt.Errorf("kb: unknown subcommand %q", sub)
	}
	env := embeddingOptionsFromEnv(getenv)
	kb, k := rag.DefaultKB, 5
	opts := embeddingOptions{}
	extra := func(fs *flag.FlagSet) {
		fs.StringVar(&kb, "kb", rag.DefaultKB, "knowledge base name (1-64 letters, digits or _.-)")
		fs.StringVar(&opts.Mode, "embeddings", orDefault(env.Mode, "auto"), "embedder: local, openai or auto (openai when OPENAI_API_KEY is set); env DARTMOUTH_EMBEDDINGS")
		fs.StringVar(&opts.Model, "embedding-model", orDefault(env.Model, "text-embedding-3-small"), "OpenAI embedding model; env DARTMOUTH_EMBEDDING_MODEL")
		fs.IntVar(&k, "k", 5, "search: how many hits to show")
	}
	cfg, rest, err := parseConfigArgs("dartmouth kb "+sub, interspersed(args, extra), getenv, stderr, extra)
	if err != nil {
		return err
	}
	if !rag.ValidKB(kb) {
		return fmt.Errorf("kb: bad knowledge base name %q (1-64 letters, digits or _.-)", kb)
	}
	logger := newLogger(cfg, stderr)
	store, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: filepath.Join(cfg.DataDir, "dartmouth.db")})
	if err != nil {
		return err
	}
	defer store.Close()
	index, err := newKBIndex(cfg, opts, store, logger)
	if err != nil {
		return err
	}
	switch sub {
	case "ingest":
		if len(rest) != 1 {
			return errors.New("kb ingest: name one file or folder (dartmouth kb ingest PATH [--kb NAME])")
		}
		return kbIngest(ctx, index, kb, rest[0], stdout, stderr)
	case "list":
		if len(rest) != 0 {
			return fmt.Errorf("kb list: unexpected argument %q", rest[0])
		}
		docs, err := index.Documents(ctx, kb)
		if err != nil {
			return err
		}
		for _, d := range docs {
			fmt.Fprintf(stdout, "%s\t%d chunks\t%s\t%s\n", d.Name, d.Chunks, d.UpdatedAt.UTC().Format("2006-01-02 15:04"), d.Title)
		}
		fmt.Fprintf(stdout, "%d documents in %q\n", len(docs), kb)
		return nil
	case "search":
		query := strings.TrimSpace(strings.Join(rest, " "))
		if query == "" {
			return errors.New("kb search: nothing to search for (dartmouth kb search QUERY)")
		}
		hits, err := index.Search(ctx, kb, query, k)
		if err != nil {
			return err
		}
		for _, h := range hits {
			fmt.Fprintf(stdout, "%.3f  %s\n      %s\n", h.Score, h.Citation(), preview(h.Text, 160))
		}
		fmt.Fprintf(stdout, "%d hits at or above %.2f with %s\n", len(hits), index.Threshold(), index.Model())
		return nil
	default: // delete
		if len(rest) != 1 {
			return errors.New("kb delete: name one document, as `dartmouth kb list` shows it")
		}
		if err := index.Delete(ctx, kb, rest[0]); err != nil {
			if errors.Is(err, session.ErrNotFound) {
				return fmt.Errorf("kb delete: no document %q in %q", rest[0], kb)
			}
			return err
		}
		fmt.Fprintf(stdout, "deleted %s from %q\n", rest[0], kb)
		return nil
	}
}

func kbIngest(ctx context.Context, index *rag.Index, kb, path string, stdout, stderr io.Writer) error {
	bar := newProgress(stderr)
	sum, err := index.IngestPath(ctx, kb, path, bar.update)
	bar.finish()
	if sum.Files == 0 {
		return err
	}
	fmt.Fprintf(stdout, "knowledge base %q: %d files (%d unchanged, %d failed), %d chunks, %d texts embedded with %s\n",
		kb, sum.Files, sum.Unchanged, sum.Failed, sum.Chunks, sum.Embedded, index.Model())
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Each failure was already shown next to its file.
		return fmt.Errorf("kb ingest: %d of %d files failed", sum.Failed, sum.Files)
	}
	return nil
}

// progress shows ingestion on stderr: a bar redrawn in place on a terminal, plain lines
// ("ingested 3/10 files") otherwise, so logs and CI output stay readable.
type progress struct {
	w     io.Writer
	tty   bool
	drawn bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		p.tty = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	return p
}

const barWidth = 30

func (p *progress) update(e rag.Progress) {
	detail := fmt.Sprintf("%s: %d chunks, %d embedded", e.Name, e.Result.Chunks, e.Result.Embedded)
	switch {
	case e.Err != nil:
		detail = fmt.Sprintf("%s failed: %v", e.Name, e.Err)
	case e.Result.Unchanged:
		detail = e.Name + ": unchanged"
	}
	if !p.tty {
		fmt.Fprintf(p.w, "ingested %d/%d files (%s)\n", e.Done, e.Total, detail)
		return
	}
	if e.Err != nil {
		// Failures stay on screen above the bar.
		fmt.Fprintf(p.w, "\r\033[K%s\n", detail)
	}
	filled := barWidth * e.Done / e.Total
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %d/%d files  %s", strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), e.Done, e.Total, preview(e.Name, 40))
	p.drawn = true
}

func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// interspersed moves flags that follow positional arguments in front of them, so
// `kb ingest docs/ --kb faq` works like `kb ingest --kb faq docs/`. Which flags take a value
// is learnt from the same flag set the command parses with.
func interspersed(args []string, extra func(*flag.FlagSet)) []string {
	probe := flag.NewFlagSet("probe", flag.ContinueOnError)
	probe.SetOutput(io.Discard)
	extra(probe)
	for _, s := range settings(&Config{}) {
		s.bind(probe, s.flag, s.def, s.help)
	}
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := probe.Lookup(name)
		if f == nil {
			continue // unknown: the real parse reports it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), positional...)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// preview shortens text to one line of at most n characters.
func preview(text string, n int) string {
	s := strings.Join(strings.Fields(text), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
