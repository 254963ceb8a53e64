-- Single sign-on: browser sessions, authorization codes, consents, and client options.
ALTER TABLE clients ADD COLUMN require_consent boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN backchannel_logout_uri text;

-- id is the SHA-256 of the cookie's random value; sid is the public session id in ID tokens.
CREATE TABLE sessions (
    id bytea PRIMARY KEY,
    sid text NOT NULL UNIQUE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time double precision NOT NULL,
    created_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    idle_expires_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    ended_at double precision
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);

CREATE TABLE session_clients (
    session_id bytea NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    client_id text NOT NULL,
    first_used_at double precision NOT NULL,
    PRIMARY KEY (session_id, client_id)
);

-- code_hash is the SHA-256 of the code; only the hash is kept.
CREATE TABLE authorization_codes (
    id text PRIMARY KEY,
    code_hash bytea NOT NULL UNIQUE,
    client_id text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    redirect_uri text NOT NULL,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid text NOT NULL,
    scope text NOT NULL,
    nonce text,
    code_challenge text,
    code_challenge_method text,
    auth_time double precision NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    consumed_at double precision
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE consents (
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope text NOT NULL,
    granted_at double precision NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
