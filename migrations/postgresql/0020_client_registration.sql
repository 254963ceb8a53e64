-- Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): a client
-- registered at /register keeps the SHA-256 of its registration access token; initial access
-- tokens, made by an administrator, are kept by their SHA-256 until they expire or are used up
-- (uses_left NULL: any number of uses until they expire).
ALTER TABLE clients ADD COLUMN registration_token_hash bytea;

CREATE TABLE initial_access_tokens (
    id text PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    uses_left integer
);
CREATE INDEX initial_access_tokens_expires_at ON initial_access_tokens (expires_at);
