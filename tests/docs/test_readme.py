"""The README runs as written: a newcomer's first hour, from ``scripts/serve`` to a sign-in.

Every fenced block of README.md is either run or deliberately shown only:

- the ``sh`` block that is ``scripts/serve`` is started as the README says, with ``--port`` on a
  free port, and stopped at the end;
- every other ``sh`` block runs in bash, in order, from the checkout, as if typed into one
  terminal: the variables a block sets are there for the next (``set -a`` and ``env -0``);
  a ``read`` prompt is answered as the reader would (the password, or the code the browser
  was sent back with);
- every ``python`` block runs with the virtual environment's Python, with that terminal's
  variables;
- a ``text`` block (``scripts/test`` itself, which runs this test) is shown only.

Where the README says to open the printed ``/authorize`` URL in a browser, headless Chromium
(Debian's, driven by Playwright) signs in on the login page and the request to the callback,
where nothing listens, is caught and aborted, which leaves the code to paste.

Everything is hermetic: ``127.0.0.1:8000`` becomes the free port, and the store, its
key-encryption key, ``HOME`` and ``TMPDIR`` are in the test's temporary directory. The store
plays no part in what is tested here (the newcomer's path is SQLite), as in
tests/e2e/test_serve_start.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import sync_playwright

from tests.support.browser import ARGS, CHROMIUM
from tests.support.processes import CLI_TIMEOUT, ServeProcess, child_env
from tests.support.server import free_port
from tests.support.sso import query_of, verify_jwt

REPOSITORY = Path(__file__).resolve().parents[2]
README = REPOSITORY / "README.md"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

SHELL = "sh"
PYTHON = "python"
SHOWN_ONLY = "text"
README_ADDRESS = "127.0.0.1:8000"
PASSWORD = "a newcomer's first password"
FENCE = re.compile(r"^```([\w-]*)[ \t]*$")
PROMPT = re.compile(r"\bread\s+-\w+\s+'([^']+)'")
AUTHORIZE_URL = re.compile(r"http://127\.0\.0\.1:\d+/authorize\?\S+")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    """One fenced block of a markdown file."""

    language: str
    code: str
    line: int

    def is_server(self) -> bool:
        return self.language == SHELL and self.code.strip().startswith("scripts/serve")


def fenced_blocks(markdown: str) -> list[Block]:
    """The fenced blocks, in order; an unclosed fence is an error."""
    blocks: list[Block] = []
    opened: tuple[str, int] | None = None
    lines: list[str] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        fence = FENCE.match(line)
        if opened is None and fence:
            opened, lines = (fence[1], number), []
        elif opened is not None and line.rstrip() == "```":
            blocks.append(Block(opened[0], "\n".join(lines) + "\n", opened[1]))
            opened = None
        elif opened is not None:
            lines.append(line)
    assert opened is None, f"README.md: the block opened on line {opened[1]} is not closed"
    return blocks


def readme_blocks() -> list[Block]:
    return fenced_blocks(README.read_text(encoding="utf-8"))


# -- the README's shape -----------------------------------------------------------------------


def test_the_readme_is_a_five_minute_read() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the reference goes in docs/"
    long = [n for n, line in enumerate(lines, start=1) if len(line) > 200]
    assert not long, f"README.md lines over 200 characters: {long}"


def test_every_block_is_run_or_marked_as_shown_only() -> None:
    """A block in any other language would be skipped silently: mark it, or make it run."""
    blocks = readme_blocks()
    assert blocks
    for block in blocks:
        assert block.language in (SHELL, PYTHON, SHOWN_ONLY), (
            f"README.md line {block.line}: ```{block.language} is neither run ({SHELL}, "
            f"{PYTHON}) nor marked as shown only ({SHOWN_ONLY})"
        )
    assert [b for b in blocks if b.is_server()], "README.md never starts scripts/serve"


def test_the_readmes_links_reach_files_in_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t)]
    assert local
    missing = [t for t in local if not (REPOSITORY / unquote(t)).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


# -- the tour, run -----------------------------------------------------------------------------


@dataclass
class Terminal:
    """The reader's second terminal: bash in the checkout, variables kept between blocks."""

    env: dict[str, str]
    state: Path

    def run(self, code: str, stdin: str) -> subprocess.CompletedProcess[str]:
        script = f"set -a\n{code}\nenv -0 > {shlex.quote(str(self.state))}\n"
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env=self.env,
            cwd=REPOSITORY,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        pairs = self.state.read_bytes().decode().split("\0")
        self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        return done

    def python(self, code: str, path: Path) -> subprocess.CompletedProcess[str]:
        path.write_text(code, encoding="utf-8")
        done = subprocess.run(
            [str(REPOSITORY / ".venv" / "bin" / "python"), str(path)],
            env=self.env,
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done


@pytest.fixture
def serve_from_readme(tmp_path: Path) -> Iterator[tuple[ServeProcess, dict[str, str]]]:
    """``scripts/serve`` as the README starts it, on a free port and a temporary store."""
    marker = REPOSITORY / ".venv" / ".idp-installed"
    pyproject = REPOSITORY / "pyproject.toml"
    if not marker.exists() or marker.stat().st_mtime < pyproject.stat().st_mtime:
        pytest.skip("scripts/serve would install into .venv first (scripts/test leaves it done)")
    (server_block,) = [b for b in readme_blocks() if b.is_server()]
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    env = child_env(
        {
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "IDP_DATABASE_URL": f"sqlite:///{tmp_path}/store/idp.db",
        }
    )
    port = free_port()
    command = [*shlex.split(server_block.code), "--port", str(port)]
    out, err = tmp_path / "serve.stdout.log", tmp_path / "serve.stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=REPOSITORY,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    server = ServeProcess(process, f"http://127.0.0.1:{port}", out, err)
    try:
        server.wait_ready()
        yield server, env
    finally:
        server.stop()


def sign_in_with_chromium(authorize_url: str, redirect_prefix: str, name: str) -> str:
    """Open the URL, sign in as alice, and return the callback URL the browser was sent to
    (the request is aborted there: nothing listens, as the README says)."""
    assert CHROMIUM.exists(), "Debian's chromium package is missing: run scripts/test"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page()
            page.route(f"{redirect_prefix}**", lambda route: route.abort())
            try:
                page.goto(authorize_url)
                assert page.title() == "Sign in", page.content()
                page.fill("input[name=username]", "alice")
                page.fill("input[name=password]", PASSWORD)
                with page.expect_request(lambda r: r.url.startswith(redirect_prefix)) as sent:
                    page.click("button[type=submit]")
                return sent.value.url
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                raise
        finally:
            browser.close()


def test_the_readme_tour_runs_as_written(
    serve_from_readme: tuple[ServeProcess, dict[str, str]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    server, env = serve_from_readme
    port = server.url.rsplit(":", 1)[1]
    store_before = (REPOSITORY / "var" / "idp.db").exists()
    terminal = Terminal(env, tmp_path / "terminal.env")
    printed: list[str] = []
    callbacks: list[str] = []

    def code_from_browser() -> str:
        url = AUTHORIZE_URL.findall("\n".join(printed))[-1]
        redirect = query_of(url)["redirect_uri"]
        callback = sign_in_with_chromium(url, redirect, request.node.name)
        callbacks.append(callback)
        return query_of(callback)["code"]

    answers: dict[str, Callable[[], str]] = {
        "password for alice: ": lambda: PASSWORD,
        "code: ": code_from_browser,
    }
    blocks = [b for b in readme_blocks() if b.language in (SHELL, PYTHON) and not b.is_server()]
    assert any(README_ADDRESS in b.code for b in blocks)
    for number, block in enumerate(blocks):
        code = block.code.replace(README_ADDRESS, f"127.0.0.1:{port}")
        try:
            if block.language == PYTHON:
                done = terminal.python(code, tmp_path / f"block{number}.py")
            else:
                prompts = PROMPT.findall(code)
                unknown = [p for p in prompts if p not in answers]
                assert not unknown, f"no answer for the prompts {unknown}"
                done = terminal.run(code, "".join(answers[p]() + "\n" for p in prompts))
        except AssertionError as exc:
            raise AssertionError(f"README.md block at line {block.line}: {exc}") from None
        printed.append(done.stdout)

    last_lines = [o.strip().splitlines()[-1] for o in printed if o.strip()]
    machine, signed_in = [json.loads(line) for line in last_lines if line.startswith("{")]
    assert machine["token_type"] == "Bearer" and machine["expires_in"] == 600, machine
    checked = next(o for o in printed if "may read reports" in o)
    assert "scopes: reports:read" in checked
    assert "refused: insufficient_scope: " in checked
    assert signed_in["access_token"] and signed_in["refresh_token"]
    _, claims = verify_jwt(server.url, signed_in["id_token"])
    assert claims["preferred_username"] == "alice"
    assert claims["iss"] == server.url
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert terminal.env["WEB_ID"] in audiences
    (callback,) = callbacks
    assert query_of(callback)["state"] == "tour" and query_of(callback)["iss"] == server.url
    assert (tmp_path / "store" / "idp.db").exists()
    assert (REPOSITORY / "var" / "idp.db").exists() == store_before, "the tour left the checkout"
