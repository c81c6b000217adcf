-- Portable SQL: runs on SQLite and PostgreSQL. Times are Unix milliseconds, JSON is TEXT.
CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    plan       TEXT NOT NULL DEFAULT 'free',
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    agent_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq        BIGINT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX messages_session_seq ON messages (session_id, seq);

CREATE TABLE analytics_events (
    type       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    session_id TEXT NOT NULL DEFAULT '',
    agent_id   TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX analytics_events_created ON analytics_events (created_at);
CREATE INDEX analytics_events_user ON analytics_events (user_id, created_at);
