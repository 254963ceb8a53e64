"""App A: a server-rendered web app that signs in through the IdP and calls the notes API.

It keeps its own session cookie (``app_a_session``), shows who is signed in, calls the API
with the user's access token (addressed to the API with the ``resource`` parameter) and
signs out at the IdP too (RP-initiated logout), which ends app B's session through
back-channel logout.
"""

from __future__ import annotations

import json
from html import escape

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from examples.relying_party import (
    AppConfig,
    LocalSession,
    RelyingParty,
    logout_form,
    page,
    signed_in_as,
)

COOKIE_NAME = "app_a_session"


async def home(request: Request, rp: RelyingParty, session: LocalSession | None) -> Response:
    if session is None:
        body = "<p id='status'>Not signed in.</p><p><a id='login' href='/login'>Sign in</a></p>"
        return page(rp.config, "App A", body)
    body = (
        signed_in_as(session)
        + "<p><a id='call-api' href='/api'>Call the notes API</a></p>"
        + logout_form(rp, request)
    )
    return page(rp.config, "App A", body)


def create_app(config: AppConfig) -> Starlette:
    """App A over ``config``; its extra page ``/api`` shows what the API answers."""
    rp = RelyingParty(config)

    async def call_api(request: Request) -> Response:
        session = rp.current(request)
        if session is None:
            return RedirectResponse("/", status_code=303)
        try:
            answer = await rp.http.get(
                f"{config.api_url}/notes",
                headers={"Authorization": f"Bearer {session.access_token}"},
            )
        except httpx.HTTPError as exc:
            reason = escape(type(exc).__name__)
            body = f"<p id='api-error'>The API could not be reached ({reason}).</p>"
            return page(config, "Notes API", body, 502)
        try:
            shown = json.dumps(answer.json(), indent=2, sort_keys=True)
        except ValueError:
            shown = answer.text[:2000]
        body = (
            signed_in_as(session)
            + f"<p>The API answered <strong id='api-status'>{answer.status_code}</strong>:</p>"
            + f"<pre id='api-result'>{escape(shown)}</pre><p><a href='/'>Back</a></p>"
        )
        return page(config, "Notes API", body)

    return rp.app(home, [Route("/api", call_api)])


def from_environ() -> Starlette:
    """The app configured by ``EXAMPLE_*`` variables (``uvicorn --factory``)."""
    return create_app(AppConfig.from_environ("App A", COOKIE_NAME))
