-- API keys. Portable SQL: runs on SQLite and PostgreSQL. Times are Unix milliseconds; 0 means
-- "never" (last_used_at) or "not revoked" (revoked_at).
--
-- The key itself is never stored: hash is the hex SHA-256 of the whole key, and prefix is its
-- first characters ("dm_" and 9 more), enough for a human to tell keys apart and for the
-- lookup to find the row before comparing the hash in constant time.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    plan         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX api_keys_hash ON api_keys (hash);
CREATE INDEX api_keys_prefix ON api_keys (prefix);
CREATE INDEX api_keys_user_created ON api_keys (user_id, created_at);
