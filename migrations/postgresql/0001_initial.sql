-- Clients, users and the signing-key ring (PostgreSQL store).
CREATE TABLE clients (
    client_id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    secret_hash bytea,
    redirect_uris text NOT NULL,
    post_logout_redirect_uris text NOT NULL,
    grant_types text NOT NULL,
    scope text NOT NULL,
    audiences text NOT NULL,
    token_endpoint_auth_method text NOT NULL,
    access_token_alg text NOT NULL,
    id_token_alg text NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE users (
    id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    email text,
    name text,
    disabled boolean NOT NULL DEFAULT false,
    created_at double precision NOT NULL
);

CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL,
    state text NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked', 'expired')),
    public_jwk text NOT NULL,
    private_key_sealed bytea,
    created_at double precision NOT NULL,
    activated_at double precision,
    retired_at double precision,
    revoked_at double precision
);

-- At most one active key per algorithm, enforced by the database itself.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';

CREATE TABLE key_ring_version (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO key_ring_version (id, version) VALUES (1, 0);
