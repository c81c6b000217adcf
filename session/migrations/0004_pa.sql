-- The personal assistant's records: tasks (and lists such as "shopping"), reminders, notes,
-- calendar events and contacts. Every row belongs to a user and every read and write is scoped
-- by user_id. Portable SQL (SQLite and PostgreSQL): times are Unix milliseconds in UTC, 0 means
-- none; booleans are INTEGER 0/1.

-- list names the list: "todo" (the default) or another ("shopping"). seq orders a user's tasks
-- as they were added, even within one millisecond.
CREATE TABLE pa_tasks (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    seq        BIGINT NOT NULL,
    list       TEXT NOT NULL DEFAULT '',
    title      TEXT NOT NULL,
    notes      TEXT NOT NULL DEFAULT '',
    done       INTEGER NOT NULL DEFAULT 0,
    due_at     BIGINT NOT NULL DEFAULT 0,
    done_at    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX pa_tasks_user_list ON pa_tasks (user_id, list, seq);

-- status is pending, fired or cancelled. The scheduler claims a due reminder by moving it from
-- pending to fired in one UPDATE, so two schedulers never fire it twice.
CREATE TABLE pa_reminders (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    text       TEXT NOT NULL,
    due_at     BIGINT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending',
    fired_at   BIGINT NOT NULL DEFAULT 0,
    time_zone  TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX pa_reminders_status_due ON pa_reminders (status, due_at);
CREATE INDEX pa_reminders_user_due ON pa_reminders (user_id, due_at);

CREATE TABLE pa_notes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    seq        BIGINT NOT NULL,
    title      TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX pa_notes_user_seq ON pa_notes (user_id, seq);

-- An all-day event covers whole days: start_at is the first day's midnight and end_at the
-- midnight after the last day, in time_zone. external_id is the event's id in a synced
-- calendar (Google Calendar), unique per user when set.
CREATE TABLE pa_events (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    location    TEXT NOT NULL DEFAULT '',
    start_at    BIGINT NOT NULL,
    end_at      BIGINT NOT NULL,
    all_day     INTEGER NOT NULL DEFAULT 0,
    time_zone   TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX pa_events_user_start ON pa_events (user_id, start_at);
CREATE UNIQUE INDEX pa_events_user_external ON pa_events (user_id, external_id) WHERE external_id <> '';

CREATE TABLE pa_contacts (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    phone      TEXT NOT NULL DEFAULT '',
    notes      TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX pa_contacts_user_name ON pa_contacts (user_id, name);
