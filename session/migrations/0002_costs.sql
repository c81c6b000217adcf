-- One row per priced request (LLM turn, TTS, STT). Costs are USD; day is the UTC date.
CREATE TABLE costs (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    agent_id            TEXT NOT NULL DEFAULT '',
    session_id          TEXT NOT NULL DEFAULT '',
    kind                TEXT NOT NULL,
    provider            TEXT NOT NULL DEFAULT '',
    model               TEXT NOT NULL DEFAULT '',
    input_tokens        BIGINT NOT NULL DEFAULT 0,
    cached_input_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens  BIGINT NOT NULL DEFAULT 0,
    output_tokens       BIGINT NOT NULL DEFAULT 0,
    units               BIGINT NOT NULL DEFAULT 0,
    cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
    cached              INTEGER NOT NULL DEFAULT 0,
    day                 TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX costs_day ON costs (day);
CREATE INDEX costs_user_day ON costs (user_id, day);
CREATE INDEX costs_agent_day ON costs (agent_id, day);
