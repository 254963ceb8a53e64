"""Single sign-on at the provider: sessions, sign-in, the login throttle, passwords, logout.

This floor sits between the HTTP handlers above and the protocol (``idp.oauth``) and storage
(``idp.store``) below: a handler calls one function here and renders what it returns.

- ``signin``: the /authorize decision and the login form's sign-in, one call each;
  ``consent``: consent asked, remembered or refused; ``logout``: RP-initiated logout.
  They return the values of ``outcomes`` and never see HTTP.
- Beneath them: ``sessions`` (start, resume, end; an ending revokes the session's grants
  and calls ``backchannel``), ``login`` (the password check, over ``passwords``) and
  ``throttle`` (counters in the store, rules in ``throttle_policy``).
"""
