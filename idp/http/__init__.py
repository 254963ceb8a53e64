"""The HTTP floor: Starlette routes that parse requests and render the answers of services.

One module per endpoint (``authorize``, ``login``, ``consent``, ``logout``, ``token`` ...):
a handler parses the request, calls one function of ``idp.sso``, ``idp.oauth`` or the admin
service, and renders what it returns; plumbing (``forms``, ``sealed_forms``, ``html``,
``signin_pages``, ``responses``, ``middleware``) is shared. Nothing below imports this floor.
"""
