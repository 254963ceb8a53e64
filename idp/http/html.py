"""HTML pages: Jinja2 templates, strict security headers, and the browser cookies.

Templates come from the operator's IDP_TEMPLATES_DIR first, then from the package (a file
there of the same name replaces ours); each is rendered in the language chosen for the
request (:mod:`idp.http.i18n`) through Jinja2's i18n extension, with autoescaping on, and
every page gets the brand (IDP_BRAND_NAME, IDP_BRAND_LOGO_URL) and its language.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    select_autoescape,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Scope

from idp.config import LOGO_PATH, Settings, logo_media_type
from idp.http.i18n import choose_language, html_tag, translate, translations
from idp.http.services import services
from idp.sso.outcomes import ShowError
from idp.sso.sessions import BROWSER_COOKIE, SESSION_COOKIE, cookie_name
from idp.sso.text import N_, PageText


@cache
def templates(templates_dir: Path | None, language: str) -> Environment:
    """The templates in ``language``: the operator's directory first, then the package's."""
    loaders: list[BaseLoader] = [PackageLoader("idp", "templates")]
    if templates_dir is not None:
        loaders.insert(0, FileSystemLoader(str(templates_dir)))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return environment


STYLESHEET = resources.files("idp").joinpath("templates/idp.css").read_bytes()
WEBAUTHN_SCRIPT = resources.files("idp").joinpath("templates/webauthn.js").read_bytes()


def form_action_source(uri: str) -> str:
    """The CSP source that lets a form's redirect reach ``uri`` (CSP Level 3 form-action)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def security_headers(
    form_targets: Sequence[str] = (), *, scripts: bool = False, image_source: str | None = None
) -> dict[str, str]:
    """Headers of every HTML page: strict CSP, no framing, no caching.

    A page has no script unless ``scripts``: then only our own files (``script-src 'self'``,
    never inline) and requests back to our origin (``connect-src 'self'``), which the
    passkey ceremony needs. Images come from our origin, and from ``image_source`` (the
    origin of an https brand logo) when given.
    """
    targets = " ".join(dict.fromkeys(form_action_source(t) for t in form_targets))
    form_action = f"form-action 'self' {targets}".rstrip()
    script = "script-src 'self'; connect-src 'self'; " if scripts else ""
    images = f"img-src 'self' {image_source}" if image_source else "img-src 'self'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; {script}style-src 'self'; {images}; {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def brand_logo(settings: Settings) -> str | None:
    """Where a page loads the brand logo from: the https URL, our own path, or None."""
    if settings.brand_logo_file is not None:
        return LOGO_PATH
    return settings.brand_logo_url


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    status: int = 200,
    form_targets: Sequence[str] = (),
    *,
    scripts: bool = False,
    ui_locales: Sequence[str] = (),
) -> HTMLResponse:
    """Render a template in the request's language with the security headers (``scripts``:
    see security_headers); ``ui_locales`` are the pending request's, which win over the
    browser's Accept-Language. Every :class:`PageText` value is translated."""
    settings = services(request).settings
    language = choose_language(request.headers.get("accept-language"), ui_locales)
    values = {name: _localised(language, value) for name, value in context.items()}
    values |= {
        "lang": html_tag(language),
        "brand_name": settings.brand_name,
        "brand_logo": brand_logo(settings),
    }
    environment = templates(settings.templates_dir, language)
    body = environment.get_template(template).render(values)
    image_source = form_action_source(settings.brand_logo_url) if settings.brand_logo_url else None
    headers = security_headers(form_targets, scripts=scripts, image_source=image_source)
    headers["Content-Language"] = html_tag(language)
    return HTMLResponse(body, status_code=status, headers=headers)


def _localised(language: str, value: Any) -> Any:
    """``value`` with every :class:`PageText` in it (in lists and tuples too) translated."""
    if isinstance(value, PageText):
        return translate(language, value)
    if isinstance(value, list | tuple):
        return type(value)(_localised(language, item) for item in value)
    return value


WHAT_TO_DO = N_(
    "Go back to the application and try again. If it keeps happening, contact the people "
    "who run the application."
)


def error_page(
    request: Request,
    error: ShowError | str,
    status: int = 400,
    *,
    ui_locales: Sequence[str] = (),
) -> HTMLResponse:
    """A plain error page for the person at the browser (never a redirect to a client).

    It says what happened and what they can do; the technical error code and detail, for
    whoever they ask for help, come last and small. Nothing else (no trace) is shown.
    """
    shown = error if isinstance(error, ShowError) else ShowError(error)
    context = {
        "message": shown.message,
        "advice": shown.advice or WHAT_TO_DO,
        "error_code": shown.error_code or "invalid_request",
        "detail": shown.detail,
    }
    return page(request, "error.html", context, status, ui_locales=ui_locales)


PAGE_PATHS = ("/authorize", "/login", "/consent", "/logout", "/account")
"""The paths a person sees in a browser: a failure there gets the error page, not JSON."""
FAILURES = {
    500: (
        "server_error",
        N_("Something went wrong on our side, and your request was not completed."),
    ),
    503: (
        "temporarily_unavailable",
        N_("The sign-in service is unavailable for a moment, and your request was not completed."),
    ),
}
TRY_LATER = N_(
    "Wait a moment and try again from the application. If it keeps happening, contact the "
    "people who run the application."
)
log = logging.getLogger("idp.http")


def failure_page(scope: Scope, status: int, request_id: str) -> Response | None:
    """The error page for a browser page that failed unexpectedly (500) or while the store
    was out of reach (503), naming the request id; None for any other path or status, or
    if the page itself cannot be shown (the caller then answers in JSON). Never a trace."""
    path = str(scope.get("path", ""))
    if status not in FAILURES or "app" not in scope or not path.startswith(PAGE_PATHS):
        return None
    code, message = FAILURES[status]
    try:
        failure = ShowError(message, code, f"request id {request_id}", TRY_LATER)
        return error_page(Request(scope), failure, status)
    except Exception:  # a broken operator template must not hide the first failure
        log.exception("request %s: the error page could not be shown", request_id)
        return None


def redirect(location: str, status: int = 303) -> RedirectResponse:
    """A redirect to a client, never cached and never leaking the referrer."""
    response = RedirectResponse(location, status_code=status)
    response.headers.update(
        {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}
    )
    return response


def logo(request: Request) -> Response:
    """The brand logo from a local file (IDP_BRAND_LOGO_URL as a path), served by us at
    LOGO_PATH with its image type; 404 when the logo is not a local file."""
    settings = services(request).settings
    if settings.brand_logo_file is None:
        return Response(status_code=404)
    body, media_type = _logo_file(settings.brand_logo_file)
    return Response(
        body,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@cache
def _logo_file(path: Path) -> tuple[bytes, str]:
    return path.read_bytes(), logo_media_type(path)


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
