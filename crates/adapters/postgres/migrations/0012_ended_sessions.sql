-- Signed-in sessions ended (signed out) before their expiry, by their token's SHA-256: the
-- cookie is signed, not stored, so ending one early must be remembered until it expires.
CREATE TABLE ended_sessions (
    token_hash TEXT   PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ended_sessions_by_expiry ON ended_sessions (expires_at);
