package jobs

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// ArchiveStore is the archival's view of the SQL store; session.SQLStore implements it.
type ArchiveStore interface {
	// ArchivableSessions lists, by id after afterID, sessions idle since inactiveSince and not
	// archived yet.
	ArchivableSessions(ctx context.Context, inactiveSince time.Time, afterID string, limit int) ([]session.Session, error)
	// LoadSessionArchive reads a session whole; session.ErrSessionArchived when it is done.
	LoadSessionArchive(ctx context.Context, sessionID string) (session.SessionArchive, error)
	// MarkSessionArchived deletes the messages and marks the session archived at key, unless
	// it has been active since seenUpdatedAt.
	MarkSessionArchived(ctx context.Context, sessionID string, seenUpdatedAt time.Time, key string) (bool, error)
}

var _ ArchiveStore = (*session.SQLStore)(nil)

// ArchiveJobType is the queue job that archives one session: {"sessionId": "..."}.
const ArchiveJobType = "session.archive"

// ArchiveConfig configures an Archiver.
type ArchiveConfig struct {
	// Store holds the sessions. Required.
	Store ArchiveStore
	// Blobs receives the archives. Required.
	Blobs session.BlobStore
	// After is how long a conversation must have been idle to count as finished. Default 30
	// days.
	After time.Duration
	// Queue, when set, archives each session as an ArchiveJobType job (register Handle for
	// it), so a slow blob store never holds the scheduler's lock. Default nil: the task
	// archives inline.
	Queue Queue
	// Batch is how many sessions one query lists. Default 100.
	Batch int
	// Clock says what is finished. Default session.SystemClock.
	Clock session.Clock
	// Logger receives progress and failures. Default slog.Default().
	Logger *slog.Logger
}

// Archiver moves finished conversations out of the SQL store: each session idle for After is
// written with its messages and costs to the blob store as gzipped JSON
// (session.SessionArchive) at ArchiveKey, and only once that write succeeded are its messages
// deleted and its row marked archived, in one transaction. The cost ledger keeps its rows, so
// reports and budgets do not change.
//
// It is safe to run on several replicas at once: a session is marked archived once, and one
// that became active again meanwhile is left in hot storage (its stale archive is overwritten
// when it is archived for good, the key being the same).
type Archiver struct {
	cfg ArchiveConfig
}

// NewArchiver checks the config and fills defaults.
func NewArchiver(cfg ArchiveConfig) (*Archiver, error) {
	if cfg.Store == nil || cfg.Blobs == nil {
		return nil, errors.New("jobs: archival needs the SQL store and the blob store")
	}
	if cfg.After <= 0 {
		cfg.After = 30 * 24 * time.Hour
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Archiver{cfg: cfg}, nil
}

// ArchiveKey is where the archive of a session is stored: archive/YYYY/MM/<id>.json.gz, by the
// month (UTC) the conversation started, so the key never changes.
func ArchiveKey(sessionID string, createdAt time.Time) string {
	return "archive/" + createdAt.UTC().Format("2006/01") + "/" + sessionID + ".json.gz"
}

// Task is the archival as a scheduled task.
func (a *Archiver) Task(interval time.Duration) Task {
	return Task{Name: TaskArchive, Interval: interval, Run: a.Run}
}

// Run archives (or enqueues) every finished session. A session that fails is logged and
// left for the next run; the run then fails too.
func (a *Archiver) Run(ctx context.Context) error {
	cutoff := a.cfg.Clock.Now().Add(-a.cfg.After)
	after := ""
	archived, failed := 0, 0
	var firstErr error
	for {
		batch, err := a.cfg.Store.ArchivableSessions(ctx, cutoff, after, a.cfg.Batch)
		if err != nil {
			return fmt.Errorf("archival: %w", err)
		}
		for _, s := range batch {
			after = s.ID
			var err error
			if a.cfg.Queue != nil {
				var j Job
				if j, err = NewJob(ArchiveJobType, archivePayload{SessionID: s.ID}); err == nil {
					err = a.cfg.Queue.Enqueue(ctx, j)
				}
				if err != nil {
					return fmt.Errorf("archival: enqueue %s: %w", s.ID, err)
				}
				archived++
				continue
			}
			ok, err := a.ArchiveSession(ctx, s.ID)
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				failed++
				firstErr = cmp.Or(firstErr, err)
				a.cfg.Logger.WarnContext(ctx, "archival: a session was not archived", "session", s.ID, "err", err)
			case ok:
				archived++
			}
		}
		if len(batch) < a.cfg.Batch {
			break
		}
	}
	if archived > 0 || failed > 0 {
		verb := "archived"
		if a.cfg.Queue != nil {
			verb = "enqueued"
		}
		a.cfg.Logger.InfoContext(ctx, "archival", verb, archived, "failed", failed)
	}
	if failed > 0 {
		return fmt.Errorf("archival: %d sessions failed, the first: %w", failed, firstErr)
	}
	return nil
}

type archivePayload struct {
	SessionID string `json:"sessionId"`
}

// Handle is the queue Handler of ArchiveJobType jobs.
func (a *Archiver) Handle(ctx context.Context, j Job) error {
	var p archivePayload
	if err := json.Unmarshal(j.Payload, &p); err != nil || p.SessionID == "" {
		return fmt.Errorf("archive job %s: want {\"sessionId\": ...}: %v", j.ID, err)
	}
	_, err := a.ArchiveSession(ctx, p.SessionID)
	return err
}

// ArchiveSession archives one session if it is finished, and reports whether it did. A
// session archived already, gone, or active within After is left alone (false, nil).
func (a *Archiver) ArchiveSession(ctx context.Context, sessionID string) (bool, error) {
	arc, err := a.cfg.Store.LoadSessionArchive(ctx, sessionID)
	if errors.Is(err, session.ErrSessionArchived) || errors.Is(err, session.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if arc.Session.UpdatedAt.After(a.cfg.Clock.Now().Add(-a.cfg.After)) {
		return false, nil // active again since it was listed
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(arc); err != nil {
		return false, fmt.Errorf("archive %s: %w", sessionID, err)
	}
	if err := zw.Close(); err != nil {
		return false, fmt.Errorf("archive %s: %w", sessionID, err)
	}
	key := ArchiveKey(sessionID, arc.Session.CreatedAt)
	if err := a.cfg.Blobs.Put(ctx, key, &buf, "application/gzip"); err != nil {
		return false, fmt.Errorf("archive %s: %w", sessionID, err)
	}
	ok, err := a.cfg.Store.MarkSessionArchived(ctx, sessionID, arc.Session.UpdatedAt, key)
	if err != nil {
		return false, err
	}
	if !ok {
		a.cfg.Logger.InfoContext(ctx, "archival: the session became active while it was archived; it stays in hot storage", "session", sessionID)
	}
	return ok, nil
}

// ReadArchive reads back an archive written by the Archiver.
func ReadArchive(ctx context.Context, blobs session.BlobStore, key string) (session.SessionArchive, error) {
	rc, err := blobs.Get(ctx, key)
	if err != nil {
		return session.SessionArchive{}, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return session.SessionArchive{}, fmt.Errorf("archive %s: %w", key, err)
	}
	var arc session.SessionArchive
	if err := json.NewDecoder(zr).Decode(&arc); err != nil {
		return session.SessionArchive{}, fmt.Errorf("archive %s: %w", key, err)
	}
	if arc.Format != session.SessionArchiveFormat {
		return session.SessionArchive{}, fmt.Errorf("archive %s: not a %s document", key, session.SessionArchiveFormat)
	}
	return arc, nil
}
