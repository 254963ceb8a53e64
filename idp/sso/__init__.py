"""Single sign-on at the provider: sessions, sign-in, the login throttle, passwords, logout.

This floor sits between the HTTP handlers above and the protocol (``idp.oauth``) and storage
(``idp.store``) below: a handler calls one function here and renders what it returns.

- ``signin``: the /authorize decision and the login form's sign-in, one call each;
  ``consent``: consent asked, remembered or refused; ``logout``: RP-initiated logout.
  They return the values of ``outcomes`` and never see HTTP.
- ``second_factor``: the code step after the password, and step-up of a live session;
  ``reauth``: a fresh sign-in before account changes; ``factors``: TOTP (``totp``) and
  recovery codes, enrolment, checks and when a second factor is needed.
- Beneath them: ``sessions`` (start, resume, end; an ending revokes the session's grants
  and calls ``backchannel``), ``login`` (the password check, over ``passwords``) and
  ``throttle`` (counters in the store, rules in ``throttle_policy``).
"""
