-- Authorization request parameters carried into the code and its tokens. resources: the
-- resource indicators (RFC 8707) accepted at /authorize or /par, as a JSON list: the audiences
-- of the code's access tokens, which /token may narrow; the code's refresh tokens keep them
-- for every refresh. dpop_jkt: the JWK thumbprint of the DPoP key the code is bound to
-- (RFC 9449 section 10): its redemption must prove that key.
ALTER TABLE authorization_codes ADD COLUMN resources text NOT NULL DEFAULT '[]';
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt text;
ALTER TABLE refresh_tokens ADD COLUMN resources text NOT NULL DEFAULT '[]';
