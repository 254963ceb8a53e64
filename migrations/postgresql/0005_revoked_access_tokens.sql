-- Access tokens revoked before their expiry (RFC 7009), by jti. Introspection reports them
-- inactive; a row is kept only until the token would have expired anyway.
CREATE TABLE revoked_access_tokens (
    jti text PRIMARY KEY,
    client_id text NOT NULL,
    revoked_at double precision NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
