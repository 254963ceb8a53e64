-- Key-based client authentication (RFC 7523, OpenID Connect Core section 9, private_key_jwt):
-- a client's public keys, given inline (a JWK Set) or by URL, and the assertions already used,
-- kept by the SHA-256 of client id and jti until they expire, so none is accepted twice.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;

CREATE TABLE client_assertions (
    jti_hash BLOB PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX client_assertions_expires_at ON client_assertions (expires_at);
