-- Pushed authorization requests (RFC 9126): a validated request kept under the SHA-256 of its
-- request_uri until /authorize uses it once or it expires; and clients that must use them.
CREATE TABLE pushed_authorization_requests (
    request_uri_hash bytea PRIMARY KEY,
    client_id text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    request text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX pushed_authorization_requests_expires_at ON pushed_authorization_requests (expires_at);

ALTER TABLE clients ADD COLUMN require_par boolean NOT NULL DEFAULT false;
