-- The audit trail records the subject of the admin token behind a row, and refused
-- unauthenticated admin calls are counted in one row per source address, actor and minute
-- (bucket) instead of one row each, so that nobody can grow the table at will.
ALTER TABLE audit_log ADD COLUMN subject text;
ALTER TABLE audit_log ADD COLUMN count integer NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN bucket text;
CREATE UNIQUE INDEX audit_log_bucket ON audit_log (bucket);
