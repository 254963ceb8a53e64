"""Headless Chromium from Debian's package, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")


ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

LOCALHOST_ARGS = [
    *(arg for arg in ARGS if not arg.startswith("--host-resolver-rules=")),
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]
"""As ARGS, with ``localhost`` resolving too: WebAuthn needs a domain as relying-party id."""

ARTIFACTS = Path(__file__).resolve().parents[1] / "e2e" / "artifacts"
"""Where a failed browser test leaves its screenshot."""


@contextmanager
def phone_page(name: str, args: Sequence[str] = ARGS) -> Iterator[tuple[Page, list[str]]]:
    """A phone-sized page of headless Chromium and the console messages it logs; on a
    failure inside the block, a full-page screenshot ``ARTIFACTS/<name>.png``. Start it
    after anything that runs its own event loop."""
    assert CHROMIUM.exists(), "Debian's chromium package is missing: run scripts/test"
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(args)
        )
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.on("console", lambda message: console.append(message.text))
            try:
                yield page, console
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                raise
        finally:
            browser.close()
