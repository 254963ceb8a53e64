-- Refresh tokens (rotated on every use, one family per grant) and login failure counters.
CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    parent_id TEXT,
    generation INTEGER NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid TEXT,
    scope TEXT NOT NULL,
    auth_time REAL NOT NULL,
    offline INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    rotated_at REAL,
    revoked_at REAL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id, generation);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid) WHERE sid IS NOT NULL;
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- One row per throttled key: an account (hash of the normalised username) or a client address.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_started_at REAL NOT NULL,
    last_failure_at REAL NOT NULL,
    locked_until REAL,
    expires_at REAL NOT NULL
);
CREATE INDEX login_failures_expires ON login_failures (expires_at);
