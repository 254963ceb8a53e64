-- DPoP (RFC 9449). dpop_proofs holds the SHA-256 of each accepted proof's key thumbprint and
-- jti until the proof's iat window has passed, so a proof is accepted once on every replica
-- (section 11.1); housekeeping deletes expired rows. A client with require_dpop must send a
-- proof with every token request (section 5.2, dpop_bound_access_tokens); a refresh token of
-- a public client keeps the thumbprint of the key it is bound to in dpop_jkt (section 5).
CREATE TABLE dpop_proofs (
    jti_hash bytea PRIMARY KEY,
    expires_at double precision NOT NULL
);
CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires_at);
ALTER TABLE clients ADD COLUMN require_dpop boolean NOT NULL DEFAULT false;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt text;
