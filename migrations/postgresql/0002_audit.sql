-- The audit trail: one row per administrative change or refused admin call, written in the
-- same transaction as the change it records.
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
    detail text NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_log_at ON audit_log (at);
