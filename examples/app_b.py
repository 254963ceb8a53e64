"""App B: a second server-rendered web app on another origin, signed in by single sign-on.

Its session cookie is ``app_b_session``. With a live IdP session, "Sign in" comes back
signed in without a password form; when the user signs out at app A, the IdP's
back-channel logout token ends app B's session too.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from examples.relying_party import (
    AppConfig,
    LocalSession,
    RelyingParty,
    logout_form,
    page,
    signed_in_as,
)

COOKIE_NAME = "app_b_session"


async def home(request: Request, rp: RelyingParty, session: LocalSession | None) -> Response:
    if session is None:
        body = "<p id='status'>Not signed in.</p><p><a id='login' href='/login'>Sign in</a></p>"
        return page(rp.config, "App B", body)
    return page(rp.config, "App B", signed_in_as(session) + logout_form(rp, request))


def create_app(config: AppConfig) -> Starlette:
    """App B over ``config``."""
    return RelyingParty(config).app(home)


def from_environ() -> Starlette:
    """The app configured by ``EXAMPLE_*`` variables (``uvicorn --factory``)."""
    return create_app(AppConfig.from_environ("App B", COOKIE_NAME))
