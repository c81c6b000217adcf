-- Scheduled jobs: session cleanup and archival, the hourly analytics roll-up, and the run log
-- that lets replicas run each job once per interval. Portable SQL (SQLite and PostgreSQL):
-- times are Unix milliseconds, 0 means "never".

-- archived_at: when the archival job moved the session's messages to the blob store (at
-- archive_key) and deleted them here. state_cleared_at: when the cleanup job last cleared the
-- session's short-lived state (its rolling summaries in KV); a session is due again only
-- after new activity (updated_at > state_cleared_at).
ALTER TABLE sessions ADD COLUMN archived_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN archive_key TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN state_cleared_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sessions_archived_updated ON sessions (archived_at, updated_at);

-- The archive of a session carries its costs.
CREATE INDEX costs_session ON costs (session_id);

-- analytics_events rolled up per UTC hour. hour is the hour's first millisecond, day its UTC
-- date; intent comes from the event's data, tier from its data ("tier") else the user's plan.
-- Re-aggregating an hour replaces its rows, so late events are counted by the next run.
CREATE TABLE analytics_hourly (
    hour          BIGINT NOT NULL,
    day           TEXT NOT NULL,
    agent_id      TEXT NOT NULL DEFAULT '',
    event_type    TEXT NOT NULL,
    intent        TEXT NOT NULL DEFAULT '',
    tier          TEXT NOT NULL DEFAULT '',
    events        BIGINT NOT NULL DEFAULT 0,
    cached        BIGINT NOT NULL DEFAULT 0,
    cost_usd      DOUBLE PRECISION NOT NULL DEFAULT 0,
    processing_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, agent_id, event_type, intent, tier)
);
CREATE INDEX analytics_hourly_day ON analytics_hourly (day);

-- One row per scheduled job: when it last ran, where, and how it went.
CREATE TABLE job_runs (
    name             TEXT PRIMARY KEY,
    last_started_at  BIGINT NOT NULL DEFAULT 0,
    last_finished_at BIGINT NOT NULL DEFAULT 0,
    last_success_at  BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    last_replica     TEXT NOT NULL DEFAULT '',
    runs             BIGINT NOT NULL DEFAULT 0,
    failures         BIGINT NOT NULL DEFAULT 0
);
