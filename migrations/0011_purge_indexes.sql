-- The retention purge finds old conversations and tokens by their times, a batch at a time
-- (issue 24): without these indexes each batch would read every session or token row.
CREATE INDEX sessions_updated ON sessions (updated_at);
CREATE INDEX session_tokens_created ON session_tokens (created_at);
