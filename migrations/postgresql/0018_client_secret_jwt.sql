-- client_secret_jwt (RFC 7523 section 2.2, OpenID Connect Core section 9): the client signs
-- an assertion with its secret (HS256), so for such clients only the secret itself is kept
-- too, sealed with AES-256-GCM under the key-encryption key, the client id bound in.
ALTER TABLE clients ADD COLUMN secret_sealed bytea;
