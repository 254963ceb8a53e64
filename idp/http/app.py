"""The ASGI application: routes, error rendering, and start-up/shut-down of shared services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from idp.clock import Clock, system_clock
from idp.config import LOGO_PATH, ConfigError, Settings
from idp.http import (
    account,
    account_reauth,
    account_totp,
    authorize,
    consent,
    device,
    device_authorization,
    discovery,
    health,
    introspect,
    jwks,
    login,
    logout,
    metrics,
    par,
    passkeys,
    registration,
    revoke,
    second_factor,
    token,
    userinfo,
)
from idp.http.access_log import AccessLog
from idp.http.admin import operations as admin_operations
from idp.http.direct import DirectRoutes
from idp.http.html import logo, stylesheet, webauthn_script
from idp.http.metrics import timed
from idp.http.middleware import RequestGuard, StrictTransportSecurity, TrustedProxies
from idp.http.responses import error_body, json_bytes, json_response, oauth_error_response
from idp.http.sealed_forms import FormRejected, form_rejected
from idp.http.services import Services
from idp.keyring.changes import ensure_key_rings
from idp.keyring.kek import check_store
from idp.keyring.ring import KeyRingService
from idp.keyring.scheduler import KeyRingScheduler
from idp.metrics import Metrics
from idp.oauth.errors import OAuthError
from idp.oauth.metadata import server_metadata
from idp.store import make_store
from idp.store.base import SchemaOutdated, Store
from idp.store.housekeeping import housekeeping_loop, store_collectors

log = logging.getLogger("idp.http")


async def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    names = {404: "not_found", 405: "method_not_allowed"}
    description = {404: "no such endpoint", 405: "method not allowed"}
    return json_response(
        error_body(
            names.get(exc.status_code, "invalid_request"),
            description.get(exc.status_code, str(exc.detail)),
        ),
        exc.status_code,
        dict(exc.headers or {}),
    )


async def prepare_store(store: Store, settings: Settings) -> None:
    """Refuse an out-of-date schema or a key-encryption key that does not open the ring,
    and create key rings where none exist yet."""
    status = await store.schema_status()
    if not status.up_to_date:
        raise SchemaOutdated(
            f"the database schema is out of date in {store.description} (missing migrations "
            f"{list(status.pending)}); run `idp migrate`"
        )
    if settings.key_encryption_key_missing:
        raise ConfigError(
            f"IDP_KEY_ENCRYPTION_KEY: not set and {settings.key_encryption_key_file} does not exist"
        )
    await check_store(store, settings)
    keys = await store.list_keys()
    active = {k.alg for k in keys if k.state == "active"}
    if any(alg not in active for alg in settings.signing_algs):
        await ensure_key_rings(store, settings)


def create_app(
    settings: Settings, *, store: Store | None = None, clock: Clock = system_clock
) -> Starlette:
    """Build the token service for the given settings (the store is opened at start-up)."""
    the_store = store or make_store(settings.database_url)
    keys = KeyRingService(
        the_store,
        settings.key_encryption_key,
        settings.key_ring_poll_interval,
        settings.key_prepublish,
    )
    found = Services(
        settings=settings,
        store=the_store,
        keys=keys,
        clock=clock,
        metrics=Metrics(keys, settings, clock),
        discovery=json_bytes(
            server_metadata(
                settings.issuer, settings.signing_algs, require_par=settings.require_par
            )
        ),
    )
    keys.events = found.events

    # Expired rows each kind of record leaves behind, deleted in batches in the background.
    collectors = store_collectors(the_store, settings.access_token_ttl)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not settings.issuer_is_https:
            log.warning(
                "the issuer %s is not https: session cookies are sent without Secure and "
                "without the __Host- prefix; use https outside local development",
                settings.issuer,
            )
        await the_store.open()
        try:
            await prepare_store(the_store, settings)
            await found.keys.load()
            scheduler = KeyRingScheduler(the_store, settings, clock, found.keys.changed)
            tasks = [
                asyncio.create_task(found.keys.watch(), name="idp-key-ring-watcher"),
                asyncio.create_task(the_store.cache_clients(), name="idp-client-cache"),
                asyncio.create_task(scheduler.run(), name="idp-key-ring-scheduler"),
                asyncio.create_task(
                    housekeeping_loop(collectors, clock, settings.housekeeping_interval),
                    name="idp-housekeeping",
                ),
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            await found.notifier.aclose()
            await the_store.close()

    routes = [
        Route("/.well-known/openid-configuration", discovery.metadata, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", discovery.metadata, methods=["GET"]),
        Route("/jwks.json", jwks.jwks, methods=["GET"]),
        Route("/token", token.token, methods=["POST"]),
        Route("/introspect", introspect.introspect, methods=["POST"]),
        Route("/revoke", revoke.revoke, methods=["POST"]),
        Route("/par", par.par, methods=["POST"]),
        Route("/register", registration.register, methods=["POST"]),
        Route(
            "/register/{client_id}",
            registration.configuration,
            methods=["GET", "PUT", "DELETE"],
        ),
        Route(
            "/device_authorization",
            device_authorization.device_authorization,
            methods=["POST"],
        ),
        Route("/device", device.device_page, methods=["GET"]),
        Route("/device", device.device_code, methods=["POST"]),
        Route("/device/decision", device.device_decision, methods=["POST"]),
        Route("/authorize", timed("authorize", authorize.authorize), methods=["GET", "POST"]),
        Route("/login", timed("login", login.login), methods=["POST"]),
        Route("/login/second-factor", second_factor.second_factor, methods=["POST"]),
        Route(
            "/login/second-factor/passkey/options",
            second_factor.passkey_options,
            methods=["POST"],
        ),
        Route(
            "/login/second-factor/passkey", second_factor.second_factor_passkey, methods=["POST"]
        ),
        Route("/consent", consent.consent, methods=["POST"]),
        Route("/account/totp", account_totp.totp_page, methods=["GET"]),
        Route("/account/totp", account_totp.confirm, methods=["POST"]),
        Route("/account/totp/remove", account_totp.remove, methods=["POST"]),
        Route("/account/recovery-codes", account_totp.new_recovery_codes, methods=["POST"]),
        Route("/account/reauth", account_reauth.reauth_page, methods=["GET"]),
        Route("/account/reauth", account_reauth.reauth, methods=["POST"]),
        Route("/userinfo", userinfo.userinfo, methods=["GET", "POST"]),
        Route("/logout", logout.end_session_endpoint, methods=["GET", "POST"]),
        Route("/logout/confirm", logout.confirm_logout_endpoint, methods=["POST"]),
        Route("/login/passkey/options", passkeys.login_options, methods=["POST"]),
        Route("/login/passkey", passkeys.login_with_passkey, methods=["POST"]),
        Route("/account", account.account, methods=["GET"]),
        Route("/account/login", account.account_login_form, methods=["GET"]),
        Route("/account/login", account.account_login, methods=["POST"]),
        Route("/account/login/passkey/options", passkeys.account_login_options, methods=["POST"]),
        Route("/account/login/passkey", passkeys.account_login_with_passkey, methods=["POST"]),
        Route("/account/password", account.password, methods=["POST"]),
        Route("/account/passkeys/options", passkeys.registration_options, methods=["POST"]),
        Route("/account/passkeys", passkeys.register_passkey, methods=["POST"]),
        Route("/account/passkeys/remove", account.passkey_remove, methods=["POST"]),
        Route("/account/sessions/end", account.session_end, methods=["POST"]),
        Route("/account/sessions/end-others", account.sessions_end_others, methods=["POST"]),
        Route("/account/apps/revoke", account.app_revoke, methods=["POST"]),
        Route("/assets/idp.css", stylesheet, methods=["GET"]),
        Route("/assets/webauthn.js", webauthn_script, methods=["GET"]),
        Route(LOGO_PATH, logo, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        *admin_operations.routes(),
    ]
    # The busiest endpoints skip the router (see idp.http.direct); the routes above stay.
    direct: dict[tuple[str, str], ASGIApp] = {
        ("GET", "/.well-known/openid-configuration"): discovery.metadata,
        ("GET", "/.well-known/oauth-authorization-server"): discovery.metadata,
        ("GET", "/jwks.json"): jwks.jwks,
        ("POST", "/token"): token.token,
        ("POST", "/introspect"): introspect.introspect,
    }
    hsts = [Middleware(StrictTransportSecurity, max_age=settings.hsts_max_age)]
    access_log = [Middleware(AccessLog)] if settings.log_format == "json" else []
    app = Starlette(
        routes=routes,
        middleware=[
            *access_log,
            *(hsts if settings.hsts else []),
            Middleware(RequestGuard, read_timeout=settings.body_read_timeout),
            Middleware(TrustedProxies, trusted=settings.trusted_proxies),
            Middleware(DirectRoutes, routes=direct),
        ],
        exception_handlers={
            OAuthError: _oauth_error,
            HTTPException: _http_error,
            FormRejected: form_rejected,
        },
        lifespan=lifespan,
    )
    app.state.services = found
    return app
