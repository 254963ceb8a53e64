-- Second factors: TOTP credentials (RFC 6238), recovery codes, the per-user and per-client
-- requirement, and the authentication methods (RFC 8176 amr) and acr of sessions and codes.
ALTER TABLE users ADD COLUMN mfa_required boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN require_mfa boolean NOT NULL DEFAULT false;
ALTER TABLE sessions ADD COLUMN amr text NOT NULL DEFAULT '["pwd"]';
ALTER TABLE sessions ADD COLUMN acr text;
ALTER TABLE sessions ADD COLUMN second_factor_at double precision;
ALTER TABLE authorization_codes ADD COLUMN amr text NOT NULL DEFAULT '[]';
ALTER TABLE authorization_codes ADD COLUMN acr text;

-- secret_sealed is the shared secret under the key-encryption key (AES-GCM, the user id as
-- associated data); last_step is the newest RFC 6238 time step accepted, so each is used once.
CREATE TABLE totp_credentials (
    user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed bytea NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'active')),
    created_at double precision NOT NULL,
    activated_at double precision,
    last_step bigint
);

-- code_hash is the SHA-256 of the user id and the code; a used code keeps its row.
CREATE TABLE recovery_codes (
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    created_at double precision NOT NULL,
    used_at double precision,
    PRIMARY KEY (user_id, code_hash)
);
