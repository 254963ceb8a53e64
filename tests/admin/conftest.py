"""Fixtures of the admin tests: an admin API client and its token."""

from __future__ import annotations

import httpx
import pytest

from tests.support.admin_api import bearer, get_token, register_admin
from tests.support.server import LiveServer


@pytest.fixture
def admin(live_server: LiveServer, http: httpx.Client) -> tuple[str, dict[str, str]]:
    """An admin client's id and the headers carrying its token."""
    client_id, secret = register_admin(live_server)
    return client_id, bearer(get_token(http, client_id, secret))
