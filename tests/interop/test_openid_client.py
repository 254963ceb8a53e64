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

from tests.support.sso import PASSWORD, WEB_CB, World, query_of, submit_login

HERE = Path(__file__).resolve().parent / "openid-client"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (HERE / "node_modules" / "openid-client").is_dir(),
    reason="Node.js or tests/interop/openid-client/node_modules is missing (scripts/test "
    "installs it)",
)


def openid_client(step: str, **values: str) -> dict[str, Any]:
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
