"""HTML pages: Jinja2 templates, strict security headers, and the browser cookies."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from idp.config import Settings
from idp.sso.sessions import BROWSER_COOKIE, SESSION_COOKIE, cookie_name

TEMPLATES = Environment(
    loader=PackageLoader("idp", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)
STYLESHEET = resources.files("idp").joinpath("templates/idp.css").read_bytes()
WEBAUTHN_SCRIPT = resources.files("idp").joinpath("templates/webauthn.js").read_bytes()


def form_action_source(uri: str) -> str:
    """The CSP source that lets a form's redirect reach ``uri`` (CSP Level 3 form-action)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def security_headers(form_targets: Sequence[str] = (), *, scripts: bool = False) -> dict[str, str]:
    """Headers of every HTML page: strict CSP, no framing, no caching.

    A page has no script unless ``scripts``: then only our own files (``script-src 'self'``,
    never inline) and requests back to our origin (``connect-src 'self'``), which the
    passkey ceremony needs.
    """
    targets = " ".join(dict.fromkeys(form_action_source(t) for t in form_targets))
    form_action = f"form-action 'self' {targets}".rstrip()
    script = "script-src 'self'; connect-src 'self'; " if scripts else ""
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; {script}style-src 'self'; img-src 'self'; {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def page(
    template: str,
    context: dict[str, Any],
    status: int = 200,
    form_targets: Sequence[str] = (),
    *,
    scripts: bool = False,
) -> HTMLResponse:
    """Render a template with the security headers (``scripts``: see security_headers)."""
    body = TEMPLATES.get_template(template).render(**context)
    headers = security_headers(form_targets, scripts=scripts)
    return HTMLResponse(body, status_code=status, headers=headers)


def error_page(message: str, status: int = 400) -> HTMLResponse:
    """A plain error page for the person at the browser (never a redirect to a client)."""
    return page("error.html", {"message": message}, status)


def redirect(location: str, status: int = 303) -> RedirectResponse:
    """A redirect to a client, never cached and never leaking the referrer."""
    response = RedirectResponse(location, status_code=status)
    response.headers.update(
        {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}
    )
    return response


def stylesheet(request: Request) -> Response:
    """The one stylesheet (served from our origin: CSP style-src 'self')."""
    return Response(
        STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def webauthn_script(request: Request) -> Response:
    """The passkey ceremony's script (served from our origin: CSP script-src 'self')."""
    return Response(
        WEBAUTHN_SCRIPT,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def _set_cookie(
    response: Response, settings: Settings, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        cookie_name(settings, name),
        value,
        max_age=max_age,
        path="/",
        secure=settings.issuer_is_https,
        httponly=True,
        samesite="lax",
    )


def session_cookie(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(cookie_name(settings, SESSION_COOKIE))


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Path=/, Secure and __Host- on https.

    It lasts as long as the session may (IDP_SESSION_MAX_AGE); the idle timeout is kept
    in the store.
    """
    _set_cookie(response, settings, SESSION_COOKIE, value, settings.session_max_age)


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings, SESSION_COOKIE),
        path="/",
        secure=settings.issuer_is_https,
        httponly=True,
        samesite="lax",
    )


def browser_binding(request: Request, settings: Settings) -> tuple[str, bool]:
    """This browser's random CSRF binding value, and whether it must be set as a new cookie."""
    existing = request.cookies.get(cookie_name(settings, BROWSER_COOKIE))
    if existing and 20 <= len(existing) <= 64:
        return existing, False
    return secrets.token_urlsafe(32), True


def submitted_binding(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(cookie_name(settings, BROWSER_COOKIE))


def set_browser_binding(response: Response, settings: Settings, value: str) -> None:
    _set_cookie(response, settings, BROWSER_COOKIE, value)
