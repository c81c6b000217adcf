package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The queries of the scheduled jobs (session/jobs): session cleanup, archival, the run log and
// the reply statistics cache warming reads. Unlike the user-facing methods they work across
// users, as operations do.

// ErrSessionArchived is returned for a session whose messages have already been archived.
var ErrSessionArchived = errors.New("session already archived")

// DB is the database under the store, for what needs a connection of its own (the PostgreSQL
// advisory locks of session/jobs). Queries belong in the store's methods.
func (s *SQLStore) DB() *sql.DB { return s.db }

// readTx runs fn in a read-only transaction that sees one snapshot of the database: REPEATABLE
// READ on PostgreSQL; on SQLite (WAL) a deferred transaction, whose snapshot is taken by its
// first read and which, unlike the store's writes, does not lock out writers.
func (s *SQLStore) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect.name == postgresDialect.name {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to commit
	return fn(tx)
}

// IdleSession is a session whose short-lived state the cleanup job clears.
type IdleSession struct {
	ID        string
	UserID    string
	AgentID   string
	UpdatedAt time.Time
	// Messages is how many messages the session holds: it bounds the state to clear (one
	// rolling summary per block of messages).
	Messages int
}

// IdleSessions lists sessions, ordered by id after afterID, not archived, with no activity
// since idleSince and whose state has not been cleared since their last activity.
func (s *SQLStore) IdleSessions(ctx context.Context, idleSince time.Time, afterID string, limit int) ([]IdleSession, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT s.id, s.user_id, s.agent_id, s.updated_at,
		(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)
		FROM sessions s
		WHERE s.archived_at = 0 AND s.updated_at < ? AND s.state_cleared_at < s.updated_at AND s.id > ?
		ORDER BY s.id LIMIT ?`), idleSince.UnixMilli(), afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("idle sessions: %w", err)
	}
	defer rows.Close()
	var out []IdleSession
	for rows.Next() {
		var is IdleSession
		var updated int64
		if err := rows.Scan(&is.ID, &is.UserID, &is.AgentID, &updated, &is.Messages); err != nil {
			return nil, fmt.Errorf("idle sessions: %w", err)
		}
		is.UpdatedAt = time.UnixMilli(updated)
		out = append(out, is)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idle sessions: %w", err)
	}
	return out, nil
}

// MarkSessionStateCleared records that the session's state was cleared as of its activity at
// seenUpdatedAt, so the session is due again only after it has been active since.
func (s *SQLStore) MarkSessionStateCleared(ctx context.Context, sessionID string, seenUpdatedAt time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE sessions SET state_cleared_at = ? WHERE id = ? AND state_cleared_at < ?`),
		seenUpdatedAt.UnixMilli(), sessionID, seenUpdatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("mark session %s cleared: %w", sessionID, err)
	}
	return nil
}

// ArchivableSessions lists sessions, ordered by id after afterID, not yet archived and with no
// activity since inactiveSince.
func (s *SQLStore) ArchivableSessions(ctx context.Context, inactiveSince time.Time, afterID string, limit int) ([]Session, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT id, user_id, agent_id, created_at, updated_at, metadata FROM sessions
		WHERE archived_at = 0 AND updated_at < ? AND id > ? ORDER BY id LIMIT ?`), inactiveSince.UnixMilli(), afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("archivable sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var sess Session
		var created, updated int64
		var meta string
		if err := rows.Scan(&sess.ID, &sess.UserID, &sess.AgentID, &created, &updated, &meta); err != nil {
			return nil, fmt.Errorf("archivable sessions: %w", err)
		}
		sess.CreatedAt, sess.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
		if sess.Metadata, err = decodeJSON(meta); err != nil {
			return nil, fmt.Errorf("archivable sessions: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archivable sessions: %w", err)
	}
	return out, nil
}

// SessionArchiveFormat names the archive documents written by the archival job.
const SessionArchiveFormat = "dartmouth-session-archive"

// SessionArchive is everything the hot store holds about a finished conversation: the session,
// its messages and its costs. It is the JSON document of archive/YYYY/MM/<session id>.json.gz.
type SessionArchive struct {
	Format   string            `json:"format"`
	Version  int               `json:"version"`
	Session  ArchivedSession   `json:"session"`
	Messages []ArchivedMessage `json:"messages"`
	Costs    []ArchivedCost    `json:"costs"`
}

// ArchivedSession is the session record of an archive.
type ArchivedSession struct {
	ID        string         `json:"id"`
	UserID    string         `json:"userId"`
	AgentID   string         `json:"agentId"`
	CreatedAt time.Time      `json:"createdAt"`
	UpdatedAt time.Time      `json:"updatedAt"`
	Metadata  map[string]any `json:"metadata"`
}

// ArchivedMessage is one message of an archive, in conversation order.
type ArchivedMessage struct {
	ID        string         `json:"id"`
	Seq       int64          `json:"seq"`
	Role      string         `json:"role"`
	Content   string         `json:"content"`
	CreatedAt time.Time      `json:"createdAt"`
	Metadata  map[string]any `json:"metadata"`
}

// ArchivedCost is one priced request of an archive. The cost ledger keeps its row: reports
// and budgets of past months do not change when a conversation is archived.
type ArchivedCost struct {
	ID                string    `json:"id"`
	Kind              string    `json:"kind"`
	Provider          string    `json:"provider"`
	Model             string    `json:"model"`
	InputTokens       int64     `json:"inputTokens"`
	CachedInputTokens int64     `json:"cachedInputTokens"`
	CacheWriteTokens  int64     `json:"cacheWriteTokens"`
	OutputTokens      int64     `json:"outputTokens"`
	Units             int64     `json:"units"`
	USD               float64   `json:"usd"`
	Cached            bool      `json:"cached"`
	CreatedAt         time.Time `json:"createdAt"`
}

// LoadSessionArchive reads a session with its messages and costs from one snapshot.
// ErrNotFound when there is no such session, ErrSessionArchived when it is already archived.
func (s *SQLStore) LoadSessionArchive(ctx context.Context, sessionID string) (SessionArchive, error) {
	a := SessionArchive{Format: SessionArchiveFormat, Version: 1, Messages: []ArchivedMessage{}, Costs: []ArchivedCost{}}
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var created, updated, archived int64
		var meta string
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT id, user_id, agent_id, created_at, updated_at, metadata, archived_at FROM sessions WHERE id = ?`), sessionID).
			Scan(&a.Session.ID, &a.Session.UserID, &a.Session.AgentID, &created, &updated, &meta, &archived)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if archived != 0 {
			return ErrSessionArchived
		}
		a.Session.CreatedAt, a.Session.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		if a.Session.Metadata, err = decodeJSON(meta); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.dialect.rebind(`SELECT id, seq, role, content, created_at, metadata FROM messages WHERE session_id = ? ORDER BY seq`), sessionID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var m ArchivedMessage
			var at int64
			var meta string
			if err := rows.Scan(&m.ID, &m.Seq, &m.Role, &m.Content, &at, &meta); err != nil {
				rows.Close()
				return err
			}
			m.CreatedAt = time.UnixMilli(at).UTC()
			if m.Metadata, err = decodeJSON(meta); err != nil {
				rows.Close()
				return err
			}
			a.Messages = append(a.Messages, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.dialect.rebind(`SELECT id, kind, provider, model, input_tokens, cached_input_tokens, cache_write_tokens,
			output_tokens, units, cost_usd, cached, created_at FROM costs WHERE session_id = ? ORDER BY created_at, id`), sessionID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c ArchivedCost
			var cached, at int64
			if err := rows.Scan(&c.ID, &c.Kind, &c.Provider, &c.Model, &c.InputTokens, &c.CachedInputTokens, &c.CacheWriteTokens,
				&c.OutputTokens, &c.Units, &c.USD, &cached, &at); err != nil {
				return err
			}
			c.Cached, c.CreatedAt = cached != 0, time.UnixMilli(at).UTC()
			a.Costs = append(a.Costs, c)
		}
		return rows.Err()
	})
	if err != nil {
		return SessionArchive{}, fmt.Errorf("load session %s for archival: %w", sessionID, err)
	}
	return a, nil
}

// MarkSessionArchived records that the session's archive is stored at key and deletes its
// messages, in one transaction. It does nothing and reports false when the session is already
// archived or has been active since seenUpdatedAt (the archive written is then stale; the
// session stays in hot storage until it is idle again).
func (s *SQLStore) MarkSessionArchived(ctx context.Context, sessionID string, seenUpdatedAt time.Time, key string) (bool, error) {
	archived := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.dialect.rebind(`UPDATE sessions SET archived_at = ?, archive_key = ? WHERE id = ? AND archived_at = 0 AND updated_at = ?`),
			s.now(), key, sessionID, seenUpdatedAt.UnixMilli())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			return nil // archived already, or active again
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM messages WHERE session_id = ?`), sessionID); err != nil {
			return err
		}
		archived = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("mark session %s archived: %w", sessionID, err)
	}
	return archived, nil
}

// SessionArchiveKey returns where a session's archive is stored ("" while it is in hot
// storage). ErrNotFound when there is no such session.
func (s *SQLStore) SessionArchiveKey(ctx context.Context, sessionID string) (string, error) {
	var key string
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT archive_key FROM sessions WHERE id = ?`), sessionID).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("session archive key: %w", err)
	}
	return key, nil
}

// JobRun is one run of a scheduled job, for the run log.
type JobRun struct {
	Name       string
	Replica    string // who ran it (host and pid)
	StartedAt  time.Time
	FinishedAt time.Time
	Err        string // empty: it succeeded
}

// LastJobSuccess returns when the job last finished without error; zero if never.
func (s *SQLStore) LastJobSuccess(ctx context.Context, name string) (time.Time, error) {
	var at int64
	err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT last_success_at FROM job_runs WHERE name = ?`), name).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && at == 0) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("last run of job %s: %w", name, err)
	}
	return time.UnixMilli(at), nil
}

// RecordJobRun adds a run to the job's log.
func (s *SQLStore) RecordJobRun(ctx context.Context, r JobRun) error {
	var success, failures int64
	if r.Err == "" {
		success = r.FinishedAt.UnixMilli()
	} else {
		failures = 1
	}
	_, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO job_runs (name, last_started_at, last_finished_at, last_success_at, last_error, last_replica, runs, failures)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?)
		ON CONFLICT (name) DO UPDATE SET last_started_at = excluded.last_started_at, last_finished_at = excluded.last_finished_at,
			last_success_at = CASE WHEN excluded.last_success_at > 0 THEN excluded.last_success_at ELSE job_runs.last_success_at END,
			last_error = excluded.last_error, last_replica = excluded.last_replica,
			runs = job_runs.runs + 1, failures = job_runs.failures + excluded.failures`),
		r.Name, r.StartedAt.UnixMilli(), r.FinishedAt.UnixMilli(), success, r.Err, r.Replica, failures)
	if err != nil {
		return fmt.Errorf("record run of job %s: %w", r.Name, err)
	}
	return nil
}

// ReplyCount is how often the assistant gave one reply.
type ReplyCount struct {
	Content string
	Count   int
}

// FrequentReplies returns the assistant's most frequent replies since a time, most frequent
// first, at most limit of them.
func (s *SQLStore) FrequentReplies(ctx context.Context, since time.Time, limit int) ([]ReplyCount, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT content, COUNT(*) FROM messages WHERE role = ? AND created_at >= ?
		GROUP BY content ORDER BY COUNT(*) DESC, content LIMIT ?`), RoleAssistant, since.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("frequent replies: %w", err)
	}
	defer rows.Close()
	var out []ReplyCount
	for rows.Next() {
		var rc ReplyCount
		if err := rows.Scan(&rc.Content, &rc.Count); err != nil {
			return nil, fmt.Errorf("frequent replies: %w", err)
		}
		out = append(out, rc)
	}
	return out, rows.Err()
}
