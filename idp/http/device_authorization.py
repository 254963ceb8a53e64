"""The device authorization endpoint, POST /device_authorization (RFC 8628 section 3.1).

The client authenticates as at the token endpoint (a public client names itself by
client_id); the answer is the device authorization response as JSON (section 3.2), or an
OAuth error as at the token endpoint.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.client_auth import authenticated_client, one_authorization
from idp.http.forms import read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import services
from idp.oauth.device_authorization import authorize_device


async def device_authorization(request: Request) -> Response:
    """RFC 8628 section 3.1 and 3.2: authenticate, check the scope, answer with the codes."""
    found = services(request)
    form = await read_form(request)
    client = await authenticated_client(
        one_authorization(request), form, found, "/device_authorization"
    )
    answer = await authorize_device(
        found.store, found.clock, found.settings.issuer, client, form.params
    )
    return json_response(answer.body(), headers=NO_STORE)
