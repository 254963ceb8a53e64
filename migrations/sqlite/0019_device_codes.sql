-- The device authorization grant (RFC 8628): each device code is kept under the SHA-256 of
-- the device code and of its normalised user code until it expires; the person's decision
-- (approved or denied, with the sign-in it was made in) and the client's polling (when it
-- last polled, and the interval it must keep) are written on the row.
CREATE TABLE device_codes (
    id TEXT PRIMARY KEY,
    device_code_hash BLOB NOT NULL UNIQUE,
    user_code_hash BLOB NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    poll_interval INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_polled_at REAL,
    user_id TEXT,
    sid TEXT,
    auth_time REAL,
    amr TEXT NOT NULL DEFAULT '[]',
    acr TEXT,
    decided_at REAL,
    redeemed_at REAL
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
