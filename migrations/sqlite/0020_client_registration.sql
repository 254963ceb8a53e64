-- Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): a client
-- registered at /register keeps the SHA-256 of its registration access token; initial access
-- tokens, made by an administrator, are kept by their SHA-256 until they expire or are used up
-- (uses_left NULL: any number of uses until they expire).
ALTER TABLE clients ADD COLUMN registration_token_hash BLOB;

CREATE TABLE initial_access_tokens (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    uses_left INTEGER
);
CREATE INDEX initial_access_tokens_expires_at ON initial_access_tokens (expires_at);
