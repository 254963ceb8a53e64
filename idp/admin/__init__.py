"""The admin service: every operation the ``idp`` command and the admin API offer.

Both adapters (:mod:`idp.cli` and :mod:`idp.http.admin`) parse their input, build an
:class:`~idp.admin.context.AdminContext` naming who acts, call one function here, and render
its outcome with :mod:`idp.admin.documents`. So an operation validates, audits and fails the
same way whichever adapter called it.

- ``context``: the context, and ``InvalidInput`` (refused input, whatever the adapter).
- ``clients``: register, list, show, update, delete clients.
- ``users``: create, list, show, update, disable, unlock, delete users.
- ``consents``: list the consents users gave clients, revoke one (and its refresh tokens).
- ``sessions``: list a user's browser sessions, end one or all (back-channel logout sent).
- ``keys``: list keys, ring status, rotate, revoke, import and rewrap keys.
- ``audit``: read the audit trail, page by page.
- ``documents``: what administrators see of each record.

The server's own key-ring work (rings at start, scheduled transitions) is in
:mod:`idp.keyring.changes`, below this package: it runs without an administrator.
"""
