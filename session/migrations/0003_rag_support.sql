-- Knowledge bases (retrieval for the agents) and support tickets. Portable SQL: runs on SQLite
-- and PostgreSQL. Times are Unix milliseconds, JSON is TEXT. Vectors are BYTEA: PostgreSQL's
-- binary type; SQLite stores the bytes unchanged as a BLOB (pgvector is a later job).

-- A knowledge base is named ("default", "support", ...): global or one per agent. Documents
-- are not a user's data; they belong to the operator.
CREATE TABLE kb_documents (
    id           TEXT PRIMARY KEY,
    kb           TEXT NOT NULL,
    name         TEXT NOT NULL,
    title        TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    chunks       INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX kb_documents_kb_name ON kb_documents (kb, name);

CREATE TABLE kb_chunks (
    id          TEXT PRIMARY KEY,
    document_id TEXT NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
    kb          TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    section     TEXT NOT NULL DEFAULT '',
    content     TEXT NOT NULL,
    tokens      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX kb_chunks_document_seq ON kb_chunks (document_id, seq);
CREATE INDEX kb_chunks_kb ON kb_chunks (kb);

-- Bumped in the transaction that changes a knowledge base, so a process holding its vectors
-- in memory knows with one small read whether they are stale.
CREATE TABLE kb_revisions (
    kb       TEXT PRIMARY KEY,
    revision BIGINT NOT NULL
);

-- The embedding cache: key = hex sha256(model, text); a text is never embedded twice by one
-- model. vector is float32 little-endian.
CREATE TABLE kb_embeddings (
    key        TEXT PRIMARY KEY,
    model      TEXT NOT NULL,
    dims       INTEGER NOT NULL,
    vector     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- Support tickets belong to a user. number is the human reference (TKT-1001), unique across
-- the deployment; every read is scoped by user_id.
CREATE TABLE tickets (
    id                    TEXT PRIMARY KEY,
    number                BIGINT NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users(id),
    agent_id              TEXT NOT NULL DEFAULT '',
    session_id            TEXT NOT NULL DEFAULT '',
    subject               TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL,
    priority              TEXT NOT NULL,
    reason                TEXT NOT NULL DEFAULT '',
    first_response_due_at BIGINT NOT NULL,
    resolution_due_at     BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    closed_at             BIGINT NOT NULL DEFAULT 0,
    metadata              TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX tickets_number ON tickets (number);
CREATE INDEX tickets_user_created ON tickets (user_id, created_at);
CREATE INDEX tickets_status_due ON tickets (status, first_response_due_at);
