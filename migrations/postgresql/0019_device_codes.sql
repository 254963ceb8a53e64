-- The device authorization grant (RFC 8628): each device code is kept under the SHA-256 of
-- the device code and of its normalised user code until it expires; the person's decision
-- (approved or denied, with the sign-in it was made in) and the client's polling (when it
-- last polled, and the interval it must keep) are written on the row.
CREATE TABLE device_codes (
    id text PRIMARY KEY,
    device_code_hash bytea NOT NULL UNIQUE,
    user_code_hash bytea NOT NULL UNIQUE,
    client_id text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope text NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    poll_interval integer NOT NULL,
    status text NOT NULL,
    last_polled_at double precision,
    user_id text,
    sid text,
    auth_time double precision,
    amr text NOT NULL DEFAULT '[]',
    acr text,
    decided_at double precision,
    redeemed_at double precision
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
