-- Access tokens revoked before their expiry (RFC 7009), by jti. Introspection reports them
-- inactive; a row is kept only until the token would have expired anyway.
CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    revoked_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
