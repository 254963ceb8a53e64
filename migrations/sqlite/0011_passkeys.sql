-- Passkeys (WebAuthn Level 2): each user's random user handle, their credentials, and the
-- single-use challenges of ceremonies in progress.
CREATE TABLE webauthn_users (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    user_handle BLOB NOT NULL UNIQUE
);

-- credential_id is the authenticator's id of the credential (WebAuthn 6.1, at most 1023 bytes).
CREATE TABLE webauthn_credentials (
    credential_id BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL,
    transports TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    backup_eligible INTEGER NOT NULL,
    backed_up INTEGER NOT NULL,
    aaguid TEXT NOT NULL
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- A challenge is deleted when it is used: each one verifies at most one ceremony.
CREATE TABLE webauthn_challenges (
    id TEXT PRIMARY KEY,
    challenge BLOB NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    binding BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX webauthn_challenges_expires_at ON webauthn_challenges (expires_at);
