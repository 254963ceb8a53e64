"""openid-client 6 (Node), a certified relying-party library, against a real server on both
stores: it finds the PAR endpoint in discovery, pushes its request, and redeems the code.

scripts/test installs the library (tests/interop/openid-client, npm ci from its lock file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from idp.config import Settings
from tests.support.server import register_client
from tests.support.sso import PASSWORD, WEB_CB, World, query_of, submit_login

HERE = Path(__file__).resolve().parent / "openid-client"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (HERE / "node_modules" / "openid-client").is_dir(),
    reason="Node.js or tests/interop/openid-client/node_modules is missing (scripts/test "
    "installs it)",
)


def openid_client(step: str, **values: Any) -> dict[str, Any]:
    """Run one step of flow.mjs; its JSON answer."""
    done = subprocess.run(
        ["node", "flow.mjs"],
        cwd=HERE,
        input=json.dumps({"step": step, **values}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    answer: dict[str, Any] = json.loads(done.stdout or "{}")
    assert done.returncode == 0, (answer, done.stderr)
    return answer


def test_openid_client_pushes_its_request_and_redeems_the_code(world: World) -> None:
    common = {"issuer": world.url, "client_id": world.web}
    started = openid_client("par", redirect_uri=WEB_CB, scope="openid profile", **common)
    url = started["url"]
    assert url.startswith(f"{world.url}/authorize?")
    query = query_of(url)
    assert set(query) == {"client_id", "request_uri"}
    assert query["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")

    with world.browser() as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303, done.text
    callback = done.headers["location"]
    assert callback.startswith(WEB_CB + "?")

    tokens = openid_client(
        "redeem",
        callback_url=callback,
        code_verifier=started["code_verifier"],
        state=started["state"],
        nonce=started["nonce"],
        **common,
    )
    assert tokens["claims"]["sub"] == world.user_id
    assert tokens["claims"]["iss"] == world.url
    assert tokens["access_token"]


def test_openid_client_signs_a_request_object_and_redeems_the_code(
    world: World, settings: Settings
) -> None:
    """buildAuthorizationUrlWithJAR: a request object signed with the client's ES256 key."""
    key = ECKey.generate_key("P-256", private=True)
    public = {**key.as_dict(private=False), "kid": "jar-1", "alg": "ES256"}
    client_id, _ = register_client(
        settings,
        "jar",
        public=True,
        redirect_uris=[WEB_CB],
        grant_types=["authorization_code"],
        jwks=json.dumps({"keys": [public]}),
    )
    common = {"issuer": world.url, "client_id": client_id}
    started = openid_client(
        "jar",
        redirect_uri=WEB_CB,
        scope="openid",
        jwk=key.as_dict(private=True),  # type: ignore[arg-type]
        kid="jar-1",
        **common,
    )
    assert set(query_of(started["url"])) >= {"client_id", "request"}
    with world.browser() as browser:
        page = browser.get(started["url"])
        assert page.status_code == 200, page.text
        done = submit_login(browser, page, "alice", PASSWORD)
    assert done.status_code == 303, done.text
    tokens = openid_client(
        "redeem",
        callback_url=done.headers["location"],
        code_verifier=started["code_verifier"],
        state=started["state"],
        nonce=started["nonce"],
        **common,
    )
    assert tokens["claims"]["sub"] == world.user_id
