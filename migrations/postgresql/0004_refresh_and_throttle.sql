-- Refresh tokens (rotated on every use, one family per grant) and login failure counters.
CREATE TABLE refresh_tokens (
    id text PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    family_id text NOT NULL,
    parent_id text,
    generation integer NOT NULL,
    client_id text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid text,
    scope text NOT NULL,
    auth_time double precision NOT NULL,
    offline boolean NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    rotated_at double precision,
    revoked_at double precision
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id, generation);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid) WHERE sid IS NOT NULL;
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- One row per throttled key: an account (hash of the normalised username) or a client address.
CREATE TABLE login_failures (
    key text PRIMARY KEY,
    failures integer NOT NULL,
    window_started_at double precision NOT NULL,
    last_failure_at double precision NOT NULL,
    locked_until double precision,
    expires_at double precision NOT NULL
);
CREATE INDEX login_failures_expires ON login_failures (expires_at);
