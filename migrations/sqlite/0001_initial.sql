-- Clients, users and the signing-key ring (embedded SQLite store).
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scope TEXT NOT NULL,
    audiences TEXT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    access_token_alg TEXT NOT NULL,
    id_token_alg TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email TEXT,
    name TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked', 'expired')),
    public_jwk TEXT NOT NULL,
    private_key_sealed BLOB,
    created_at REAL NOT NULL,
    activated_at REAL,
    retired_at REAL,
    revoked_at REAL
);

-- At most one active key per algorithm, enforced by the database itself.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';

CREATE TABLE key_ring_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO key_ring_version (id, version) VALUES (1, 0);
