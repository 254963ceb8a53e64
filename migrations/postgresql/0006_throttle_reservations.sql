-- One canonical form per username (Unicode NFKC, case-folded; see idp/usernames.py), unique,
-- so `Alice` and `alice` are one account. SQL cannot compute the form, so the store fills it
-- for the existing rows right after migrating, oldest account first; a younger account
-- whose form an older one already holds keeps NULL: nobody can sign in to it (the name
-- reaches the older account), and `idp migrate` names it in a warning so that an
-- administrator can delete it.
ALTER TABLE users ADD COLUMN canonical_username text;
CREATE UNIQUE INDEX users_canonical_username ON users (canonical_username);
