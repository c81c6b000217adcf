package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/jobs"
	"github.com/dartmouth-gw/dartmouth/session/redistest"
)

func TestJobSettings(t *testing.T) {
	cfg, err := parseConfig("t", nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ReminderInterval != time.Second || cfg.CleanupInterval != time.Hour || cfg.SessionIdle != 24*time.Hour ||
		cfg.ArchiveInterval != 6*time.Hour || cfg.ArchiveDays != 30 || cfg.AnalyticsInterval != time.Hour || cfg.WarmInterval != 24*time.Hour {
		t.Fatalf("defaults: %+v", cfg)
	}
	tests := map[string]struct {
		env     map[string]string
		wantErr string
	}{
		"archival off":             {map[string]string{"DARTMOUTH_ARCHIVE_DAYS": "0"}, ""},
		"cleanup off":              {map[string]string{"DARTMOUTH_CLEANUP_INTERVAL": "0"}, ""},
		"negative archive days":    {map[string]string{"DARTMOUTH_ARCHIVE_DAYS": "-1"}, "archive-days"},
		"reminders cannot be off":  {map[string]string{"DARTMOUTH_REMINDER_INTERVAL": "0s"}, "reminder-interval"},
		"negative interval":        {map[string]string{"DARTMOUTH_ANALYTICS_INTERVAL": "-1h"}, "must not be negative"},
		"not a duration":           {map[string]string{"DARTMOUTH_ARCHIVE_INTERVAL": "daily"}, "DARTMOUTH_ARCHIVE_INTERVAL"},
		"session idle must be > 0": {map[string]string{"DARTMOUTH_SESSION_IDLE": "0"}, "session-idle"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig("t", nil, func(k string) string { return tt.env[k] }, io.Discard)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

type countingPoller struct{ polls atomic.Int32 }

func (c *countingPoller) Poll(context.Context) (int, error) { c.polls.Add(1); return 0, nil }

// serve's background jobs: reminders poll, and archival goes through the job queue (in
// memory alone, a Redis stream with Redis) into the blob store.
func TestBackgroundJobs(t *testing.T) {
	for _, withRedis := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "redis"}[withRedis], func(t *testing.T) {
			dataDir := t.TempDir()
			store := openKBStore(t, dataDir)
			ctx := t.Context()
			old := time.Now().Add(-40 * 24 * time.Hour)
			_, _ = store.EnsureUser(ctx, "alice", "free")
			if err := store.CreateSession(ctx, session.Session{ID: "ses_old", UserID: "alice", AgentID: "fam", CreatedAt: old}); err != nil {
				t.Fatal(err)
			}
			if err := store.AppendMessage(ctx, session.Message{ID: "m1", SessionID: "ses_old", Role: session.RoleUser, Content: "hi", CreatedAt: old}); err != nil {
				t.Fatal(err)
			}
			blobs, err := session.NewLocalBlobStore(filepath.Join(dataDir, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseConfig("t", nil, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			limits := &rateLimiting{}
			if withRedis {
				limits.redis = redistest.Start(t).Client(t)
			}
			poller := &countingPoller{}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			b, err := newBackgroundJobs(cfg, store, session.NewMemoryKV(nil), blobs, limits.redis, poller, logger)
			if err != nil {
				t.Fatal(err)
			}
			if res := b.scheduler.Tick(ctx, jobs.TaskReminders); res.Outcome != jobs.Ran || poller.polls.Load() != 1 {
				t.Fatalf("reminders tick: %+v, %d polls", res, poller.polls.Load())
			}
			if res := b.scheduler.Tick(ctx, jobs.TaskArchive); res.Outcome != jobs.Ran {
				t.Fatalf("archive tick: %+v", res)
			}
			runCtx, stop := context.WithCancel(context.Background())
			done := b.start(runCtx)
			defer func() { stop(); <-done }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				key, err := store.SessionArchiveKey(ctx, "ses_old")
				if err == nil && key == jobs.ArchiveKey("ses_old", old) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the old session was not archived through the queue (key %q, %v)", key, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := jobs.ReadArchive(ctx, blobs, jobs.ArchiveKey("ses_old", old)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
