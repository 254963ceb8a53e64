"""Entry points for servers: build the app from the process environment (ASGI or RSGI)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from idp.config import load_settings
from idp.http.app import create_app
from idp.http.rsgi import RsgiApp
from idp.logs import configure_logging


def app_from_environment() -> Starlette:
    """The app for ``IDP_*`` variables of this process (used by each server worker)."""
    settings = load_settings(os.environ)
    configure_logging(log_format=settings.log_format)
    return create_app(settings)


def rsgi_app_from_environment() -> RsgiApp:
    """The same app behind granian's RSGI interface (what ``idp serve`` runs in each worker)."""
    return RsgiApp(app_from_environment())
