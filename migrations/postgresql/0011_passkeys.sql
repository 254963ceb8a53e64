-- Passkeys (WebAuthn Level 2): each user's random user handle, their credentials, and the
-- single-use challenges of ceremonies in progress.
CREATE TABLE webauthn_users (
    user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    user_handle bytea NOT NULL UNIQUE
);

-- credential_id is the authenticator's id of the credential (WebAuthn 6.1, at most 1023 bytes).
CREATE TABLE webauthn_credentials (
    credential_id bytea PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key bytea NOT NULL,
    sign_count bigint NOT NULL,
    transports text NOT NULL,
    name text NOT NULL,
    created_at double precision NOT NULL,
    last_used_at double precision,
    backup_eligible boolean NOT NULL,
    backed_up boolean NOT NULL,
    aaguid text NOT NULL
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- A challenge is deleted when it is used: each one verifies at most one ceremony.
CREATE TABLE webauthn_challenges (
    id text PRIMARY KEY,
    challenge bytea NOT NULL,
    purpose text NOT NULL,
    user_id text REFERENCES users (id) ON DELETE CASCADE,
    binding bytea NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX webauthn_challenges_expires_at ON webauthn_challenges (expires_at);
