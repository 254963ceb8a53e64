-- A client's previous secret stays valid until previous_secret_expires_at after a rotation
-- with an overlap (idp clients rotate-secret --keep-old), so its deployments can be moved to
-- the new secret without downtime. Only the SHA-256 is kept, as for the current secret.
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at REAL;
