-- Authorization grants that ended before their tokens expired (RFC 6749 section 4.1.2,
-- RFC 7009 section 2.1): every access token carrying the grant id (or, for a session-bound
-- grant, the session's sid) is inactive from revoked_at on. A row is deleted once every
-- access token it covers has expired: the access-token lifetime after revoked_at.
CREATE TABLE revoked_grants (
    grant_id text PRIMARY KEY,
    revoked_at double precision NOT NULL
);
CREATE INDEX revoked_grants_revoked_at ON revoked_grants (revoked_at);
