-- Portable SQL (SQLite and PostgreSQL), like 0001.
-- Login sessions of hotline agents on the console (/console). The cookie holds a random
-- session id; only its SHA-256 hash (lower-case hex) is stored. `agent` is the configured
-- SHA-256 digest of the agent token used to log in (not a secret: it is in the configuration),
-- so that removing a token from the configuration ends its sessions. Times are Unix ms.

CREATE TABLE agent_sessions (
    id_hash TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX agent_sessions_expires ON agent_sessions (expires_at);
