-- Second factors: TOTP credentials (RFC 6238), recovery codes, the per-user and per-client
-- requirement, and the authentication methods (RFC 8176 amr) and acr of sessions and codes.
ALTER TABLE users ADD COLUMN mfa_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '["pwd"]';
ALTER TABLE sessions ADD COLUMN acr TEXT;
ALTER TABLE sessions ADD COLUMN second_factor_at REAL;
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
ALTER TABLE authorization_codes ADD COLUMN acr TEXT;

-- secret_sealed is the shared secret under the key-encryption key (AES-GCM, the user id as
-- associated data); last_step is the newest RFC 6238 time step accepted, so each is used once.
CREATE TABLE totp_credentials (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'active')),
    created_at REAL NOT NULL,
    activated_at REAL,
    last_step INTEGER
);

-- code_hash is the SHA-256 of the user id and the code; a used code keeps its row.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    created_at REAL NOT NULL,
    used_at REAL,
    PRIMARY KEY (user_id, code_hash)
);
