"""The pushed authorization request endpoint, POST /par (RFC 9126 section 2).

The client authenticates as at the token endpoint; the rest of the form is an
authorization request, answered with 201 and a one-time request_uri, or with an OAuth
error as JSON (section 2.3). A DPoP proof sent with the push (``htu`` this endpoint) binds
the code to its key (RFC 9449 section 10.1); while server nonces are required, the proof
needs one as at the token endpoint, and a successful answer carries the next (section 8).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from idp.http.client_auth import authenticated_client, one_authorization
from idp.http.forms import read_form
from idp.http.responses import NO_STORE, json_response
from idp.http.services import Services, services
from idp.oauth.dpop_proofs import accepted_proof
from idp.sso.pushed_requests import push_authorization_request

CLIENT_AUTH_PARAMS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})
"""Form fields that authenticate the client and are not part of the request itself."""


async def proved_key(request: Request, found: Services) -> str | None:
    """The thumbprint of the key the push's DPoP proof proves, if it sent one (RFC 9449
    section 10.1): ``htu`` is this endpoint; used once, with a server nonce when required
    (section 8), as at the token endpoint."""
    proof = await accepted_proof(
        request.headers.getlist("dpop"),
        found.store,
        found.dpop,
        method="POST",
        url=f"{found.settings.issuer}/par",
        now=found.clock(),
        nonce_required=True,
    )
    return proof.jkt if proof is not None else None


async def par(request: Request) -> Response:
    """RFC 9126 section 2.1 and 2.2: authenticate, check, keep; 201 with the request_uri."""
    found = services(request)
    form = await read_form(request)
    client = await authenticated_client(one_authorization(request), form, found, "/par")
    params = {k: v for k, v in form.params.items() if k not in CLIENT_AUTH_PARAMS}
    pushed = await push_authorization_request(
        found,
        client,
        params,
        resources=form.resources,
        proved_jkt=await proved_key(request, found),
    )
    document = {"request_uri": pushed.request_uri, "expires_in": pushed.expires_in}
    nonces = found.dpop.nonces
    headers = (
        NO_STORE if nonces is None else {**NO_STORE, "DPoP-Nonce": nonces.current(found.clock())}
    )
    return json_response(document, status=201, headers=headers)
