"""Single sign-on at the provider: sessions, sign-in, the login throttle, passwords, logout.

This floor sits between the HTTP handlers above and the protocol (``idp.oauth``) and storage
(``idp.store``) below: a handler calls one function here and renders what it returns.
"""
