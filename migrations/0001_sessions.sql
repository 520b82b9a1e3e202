-- Portable SQL: the same migration runs on SQLite and PostgreSQL (sqlx Any driver).
-- Times are Unix milliseconds; booleans are 0/1 integers.

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    -- the dialog state as JSON (dialog id, step id, slots, history, version)
    state TEXT NOT NULL,
    -- optimistic concurrency: every save increments it; a save against a stale revision fails
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE transcripts (
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    -- ID-card and phone numbers are masked before they get here
    text TEXT NOT NULL,
    faq_id TEXT,
    dialog TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE unanswered (
    id TEXT PRIMARY KEY,
    session_id TEXT,
    question TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX unanswered_created ON unanswered (created_at);

CREATE TABLE feedback (
    id TEXT PRIMARY KEY,
    session_id TEXT,
    faq_id TEXT,
    helpful BIGINT NOT NULL,
    comment TEXT,
    created_at BIGINT NOT NULL
);
