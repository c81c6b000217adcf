package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/session"
)

// Warmer fills a cache ahead of demand. cmd passes the warmers it has (the TTS cache, the
// response cache) to WarmTask.
type Warmer interface {
	Warm(ctx context.Context) error
}

// Speaker synthesizes a sentence into the TTS cache, doing nothing when it is cached already;
// cmd adapts the voice router to it.
type Speaker interface {
	Warm(ctx context.Context, text string) error
}

// ReplyStats counts the assistant's replies; session.SQLStore implements it.
type ReplyStats interface {
	FrequentReplies(ctx context.Context, since time.Time, limit int) ([]session.ReplyCount, error)
}

var _ ReplyStats = (*session.SQLStore)(nil)

// WarmTask runs every warmer at each interval; one failing does not stop the others.
func WarmTask(interval time.Duration, warmers ...Warmer) Task {
	return Task{Name: TaskCacheWarm, Interval: interval, Run: func(ctx context.Context) error {
		var errs []error
		for _, w := range warmers {
			if err := w.Warm(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}}
}

// SentenceWarmerConfig configures a SentenceWarmer.
type SentenceWarmerConfig struct {
	// Replies counts the assistant's replies. Required.
	Replies ReplyStats
	// Speaker synthesizes into the TTS cache. Required.
	Speaker Speaker
	// Top is how many sentences a run warms at most. Default 50.
	Top int
	// Window is the period the sentences are counted over. Default 24h.
	Window time.Duration
	// MinCount is how often a sentence must have been said to be worth warming. Default 2.
	MinCount int
	// MaxRunes leaves out longer sentences, which are seldom repeated word for word.
	// Default 200.
	MaxRunes int
	// Scan is how many distinct replies are read, most frequent first. Default 2000.
	Scan int
	// Split cuts a reply into the sentences the voice pipeline speaks one by one; cmd passes
	// voice.SplitSentences so the warmed texts are exactly the cached ones. Default a split
	// after . ! ? and line breaks.
	Split func(string) []string
	// Clock sets the window. Default session.SystemClock.
	Clock session.Clock
	// Logger receives progress and failures. Default slog.Default().
	Logger *slog.Logger
}

// SentenceWarmer synthesizes the assistant's most frequent sentences of the last day into the
// TTS cache, so the next time one is spoken it streams from the cache at once.
type SentenceWarmer struct {
	cfg SentenceWarmerConfig
}

var _ Warmer = (*SentenceWarmer)(nil)

// NewSentenceWarmer checks the config and fills defaults.
func NewSentenceWarmer(cfg SentenceWarmerConfig) (*SentenceWarmer, error) {
	if cfg.Replies == nil || cfg.Speaker == nil {
		return nil, errors.New("jobs: the sentence warmer needs the reply statistics and a speaker")
	}
	if cfg.Top <= 0 {
		cfg.Top = 50
	}
	if cfg.Window <= 0 {
		cfg.Window = 24 * time.Hour
	}
	if cfg.MinCount <= 0 {
		cfg.MinCount = 2
	}
	if cfg.MaxRunes <= 0 {
		cfg.MaxRunes = 200
	}
	if cfg.Scan <= 0 {
		cfg.Scan = 2000
	}
	if cfg.Split == nil {
		cfg.Split = splitSentences
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &SentenceWarmer{cfg: cfg}, nil
}

// Sentences returns the sentences a run would warm, most frequent first (ties in text order).
func (w *SentenceWarmer) Sentences(ctx context.Context) ([]string, error) {
	replies, err := w.cfg.Replies.FrequentReplies(ctx, w.cfg.Clock.Now().Add(-w.cfg.Window), w.cfg.Scan)
	if err != nil {
		return nil, fmt.Errorf("warm tts: %w", err)
	}
	counts := map[string]int{}
	for _, r := range replies {
		for _, s := range w.cfg.Split(r.Content) {
			s = strings.TrimSpace(s)
			if s == "" || utf8.RuneCountInString(s) > w.cfg.MaxRunes || !strings.ContainsFunc(s, unicode.IsLetter) {
				continue
			}
			counts[s] += r.Count
		}
	}
	var out []string
	for s, n := range counts {
		if n >= w.cfg.MinCount {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a, b)) })
	if len(out) > w.cfg.Top {
		out = out[:w.cfg.Top]
	}
	return out, nil
}

// Warm implements Warmer. Every sentence is tried; the error joins the failures.
func (w *SentenceWarmer) Warm(ctx context.Context) error {
	sentences, err := w.Sentences(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range sentences {
		if err := w.cfg.Speaker.Warm(ctx, s); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("warm tts %q: %w", s, err))
		}
	}
	w.cfg.Logger.InfoContext(ctx, "tts cache warmed", "sentences", len(sentences), "failed", len(errs))
	return errors.Join(errs...)
}

// splitSentences cuts after . ! ? (and the quotes or brackets closing them) followed by a
// space, and at line breaks.
func splitSentences(text string) []string {
	var out []string
	rs := []rune(text)
	start := 0
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '\n' {
			out = append(out, string(rs[start:i]))
			start = i + 1
			continue
		}
		if r != '.' && r != '!' && r != '?' {
			continue
		}
		end := i + 1
		for end < len(rs) && strings.ContainsRune(`.!?"')]»”`, rs[end]) {
			end++
		}
		if end == len(rs) || unicode.IsSpace(rs[end]) {
			out = append(out, string(rs[start:end]))
			start, i = end, end-1
		}
	}
	if start < len(rs) {
		out = append(out, string(rs[start:]))
	}
	return out
}
