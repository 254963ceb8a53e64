-- Key-based client authentication (RFC 7523, OpenID Connect Core section 9, private_key_jwt):
-- a client's public keys, given inline (a JWK Set) or by URL, and the assertions already used,
-- kept by the SHA-256 of client id and jti until they expire, so none is accepted twice.
ALTER TABLE clients ADD COLUMN jwks text;
ALTER TABLE clients ADD COLUMN jwks_uri text;

CREATE TABLE client_assertions (
    jti_hash bytea PRIMARY KEY,
    expires_at double precision NOT NULL
);
CREATE INDEX client_assertions_expires_at ON client_assertions (expires_at);
