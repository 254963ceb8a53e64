"""``idp serve`` with the page settings: the brand from the environment and
``--scope-description`` words over IDP_SCOPE_DESCRIPTIONS, in every worker process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from idp.config import Settings
from tests.support.processes import serving
from tests.support.server import register_client, with_store
from tests.support.sso import CONSENT_CB, PASSWORD, AuthorizeParams, add_user, submit_login

pytestmark = pytest.mark.slow


def test_serve_shows_scope_words_from_the_command_line_and_the_environment(
    settings: Settings, env: dict[str, str], port: int, tmp_path: Path
) -> None:
    with_store(settings.database_url, lambda store: store.migrate())
    add_user(settings)
    client, _ = register_client(
        settings, "notes", redirect_uris=[CONSENT_CB], grant_types=["authorization_code"],
        require_consent=True, scope="openid notes:read notes:write",
    )  # fmt: skip
    env = {
        **env,
        "IDP_BRAND_NAME": "Acme Notes",
        "IDP_SCOPE_DESCRIPTIONS": json.dumps({"notes:read": "old words", "notes:write": "write"}),
    }
    words = 'notes:read="read your notes"'
    with serving(env, tmp_path, port, "--workers", "2", "--scope-description", words) as server:
        request = AuthorizeParams(client, CONSENT_CB, scope="openid notes:read notes:write")
        for _ in range(3):  # whichever worker answers
            with httpx.Client(base_url=server.url, timeout=30) as browser:
                login = browser.get(request.url())
                assert login.status_code == 200 and "Acme Notes" in login.text
                consent = submit_login(browser, login, "alice", PASSWORD)
                assert consent.status_code == 200, consent.text
                assert '<span class="scope">notes:read</span> read your notes' in consent.text
                assert '<span class="scope">notes:write</span> write' in consent.text
