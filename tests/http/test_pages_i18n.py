"""The browser pages over HTTP on both stores: the language they are served in
(Accept-Language, and ui_locales carried through sign-in, second factor and consent), the
brand on them, the operator's template overrides, the consent page's scope words, and the
error page a person sees for a broken request."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from idp.config import Settings
from tests.support.factors import enrol_totp, is_second_factor_page, submit_code, wrong_code
from tests.support.server import register_client
from tests.support.sso import (
    CONSENT_CB,
    PASSWORD,
    World,
    hidden_inputs,
    running_world,
    submit_login,
)

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.8"}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def html_lang(page: httpx.Response) -> str:
    found = re.search(r'<html lang="([^"]+)">', page.text)
    assert found, page.text[:200]
    return found.group(1)


def served_in(page: httpx.Response) -> str:
    """The language a page says it is in; its <html lang> and Content-Language agree."""
    assert page.headers["content-language"] == html_lang(page)
    return html_lang(page)


def start(
    world: World, browser: httpx.Client, client: str | None = None, **extra: str
) -> httpx.Response:
    page = browser.get(world.request(client, **extra).url())
    assert page.status_code == 200, page.text
    return page


def test_login_page_follows_accept_language(world: World) -> None:
    with world.browser() as browser:
        browser.headers.update(GERMAN)
        german = start(world, browser)
        assert served_in(german) == "de"
        assert "<h1>Anmelden</h1>" in german.text and "Benutzername" in german.text
        refused = submit_login(browser, german, "alice", "not the password")
        assert served_in(refused) == "de"
        assert "Benutzername oder Passwort ist falsch." in refused.text
        assert "Incorrect username" not in refused.text


@pytest.mark.parametrize(
    "accept",
    [None, "en-US,en;q=0.9", "fr-FR, fr;q=0.9", "de;q=0, en;q=0.5", "xx-*;;q=abc"],
)
def test_pages_are_english_otherwise(world: World, accept: str | None) -> None:
    with world.browser() as browser:
        if accept is not None:
            browser.headers["Accept-Language"] = accept
        page = start(world, browser)
        assert served_in(page) == "en"
        assert "<h1>Sign in</h1>" in page.text


def test_quality_values_choose_among_languages(world: World) -> None:
    with world.browser() as browser:
        browser.headers["Accept-Language"] = "fr;q=0.9, en;q=0.4, de-AT;q=0.8"
        assert served_in(start(world, browser)) == "de"
        browser.headers["Accept-Language"] = "fr;q=0.9, en;q=0.8, de;q=0.4"
        assert served_in(start(world, browser)) == "en"


def test_ui_locales_win_through_sign_in_and_consent(world: World) -> None:
    with world.browser() as browser:
        browser.headers.update(ENGLISH)
        login = start(world, browser, world.consenting, ui_locales="fr-CA de")
        assert served_in(login) == "de" and "<h1>Anmelden</h1>" in login.text
        consent = submit_login(browser, login, "alice", PASSWORD)
        assert consent.status_code == 200, consent.text
        assert served_in(consent) == "de"
        assert "Zugriff erlauben?" in consent.text and "Ihre E-Mail-Adresse sehen" in consent.text
        fields = hidden_inputs(consent.text)
        done = browser.post("/consent", data={**fields, "decision": "allow"})
        assert done.status_code == 303 and done.headers["location"].startswith(CONSENT_CB)


def test_ui_locales_carry_through_the_second_factor(world: World) -> None:
    secret, _ = enrol_totp(world.server.settings, world.user_id, world.clock)
    with world.browser() as browser:
        browser.headers.update(ENGLISH)
        login = start(world, browser, ui_locales="de")
        asked = submit_login(browser, login, "alice", PASSWORD)
        assert is_second_factor_page(asked), asked.text
        assert served_in(asked) == "de" and "Bestätigung in zwei Schritten" in asked.text
        again = submit_code(browser, asked, wrong_code(secret, world.clock))
        assert served_in(again) == "de" and "Dieser Code stimmt nicht" in again.text


def test_logout_and_signed_out_pages_in_german(world: World) -> None:
    with world.browser() as browser:
        browser.headers.update(GERMAN)
        login = start(world, browser)
        assert submit_login(browser, login, "alice", PASSWORD).status_code == 303
        confirm = browser.get("/logout")
        assert served_in(confirm) == "de" and "Abmelden?" in confirm.text
        fields = hidden_inputs(confirm.text)
        done = browser.post("/logout/confirm", data=fields)
        assert served_in(done) == "de" and "<h1>Abgemeldet</h1>" in done.text


def test_error_page_for_an_unknown_client_speaks_to_the_person(world: World) -> None:
    query = urlencode({"response_type": "code", "client_id": "no-such-app", "scope": "openid",
                       "redirect_uri": "https://app.example/cb"})  # fmt: skip
    with world.browser() as browser:
        page = browser.get(f"/authorize?{query}")
        assert page.status_code == 400
        assert served_in(page) == "en"
        assert "is not set up to sign in with us" in page.text
        assert "contact the people who run the application" in page.text
        technical = re.search(r'<p class="technical">(.*?)</p>', page.text, re.S)
        assert technical and "<code>invalid_request</code>" in technical.group(1)
        assert "client_id is not a registered client" in technical.group(1)
        assert "Traceback" not in page.text
        browser.headers.update(GERMAN)
        german = browser.get(f"/authorize?{query}")
        assert german.status_code == 400 and served_in(german) == "de"
        assert "Etwas ist schiefgelaufen" in german.text
        assert "nicht für die Anmeldung bei uns eingerichtet" in german.text
        assert "<code>invalid_request</code>" in german.text


def test_error_page_for_an_altered_form_in_the_requests_language(world: World) -> None:
    with world.browser() as browser:
        browser.headers.update(GERMAN)
        login = start(world, browser)
        fields = hidden_inputs(login.text)
        altered = browser.post(
            "/login", data={**fields, "request": fields["request"][:-4] + "AAAA",
                            "username": "alice", "password": PASSWORD},
        )  # fmt: skip
        assert altered.status_code == 400 and served_in(altered) == "de"
        assert "abgelaufen oder wurde verändert" in altered.text


@pytest.fixture
def branded(settings: Settings, port: int, tmp_path: Path) -> Iterator[World]:
    """A provider with a brand name, a local logo, an operator template and scope words."""
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "signed_out.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1 id="custom">{{ _("Signed out") }}</h1>'
        '<p id="who">{{ who }}</p><p>{{ brand_name }}</p>{% endblock %}'
    )
    (overrides / "account_message.html").write_text("{{ 1 // 0 }}")  # fails as it renders
    branded = replace(
        settings,
        brand_name="Acme <Login>",
        brand_logo_file=logo,
        templates_dir=overrides,
        scope_descriptions=(("notes:read", "read your notes"), ("email", "know where to write")),
    )
    yield from running_world(branded, port)


def test_brand_and_local_logo_on_every_page(branded: World) -> None:
    with branded.browser() as browser:
        login = start(branded, browser)
        for page in (login, browser.get("/authorize?client_id=nope"), browser.get("/account")):
            assert '<span class="brand-name">Acme &lt;Login&gt;</span>' in page.text, page.text
            assert '<img src="/assets/logo"' in page.text
            assert "img-src 'self';" in page.headers["content-security-policy"]
        logo = browser.get("/assets/logo")
        assert logo.status_code == 200 and logo.content == PNG
        assert logo.headers["content-type"] == "image/png"
        assert logo.headers["cache-control"] == "public, max-age=3600"
        assert logo.headers["x-content-type-options"] == "nosniff"


def test_an_https_logo_is_allowed_by_the_pages_csp(settings: Settings, port: int) -> None:
    remote = replace(settings, brand_logo_url="https://cdn.example.com/acme.svg")
    worlds = running_world(remote, port)
    try:
        with next(worlds).browser() as browser:
            page = browser.get("/account")
            assert '<img src="https://cdn.example.com/acme.svg"' in page.text
            csp = page.headers["content-security-policy"]
            assert "img-src 'self' https://cdn.example.com;" in csp
            assert browser.get("/assets/logo").status_code == 404
            assert '<span class="brand-name">Sign-in</span>' in page.text
    finally:
        worlds.close()


def test_operator_template_replaces_the_packaged_one_and_autoescapes(branded: World) -> None:
    with branded.browser() as browser:
        browser.headers.update(GERMAN)
        done = browser.get("/logout")
        assert done.status_code == 200
        assert '<h1 id="custom">Abgemeldet</h1>' in done.text
        assert "<p>Acme &lt;Login&gt;</p>" in done.text
        assert served_in(done) == "de"
        login = start(branded, browser)
        assert "<h1>Anmelden</h1>" in login.text, "templates not overridden stay the package's"


def test_scope_descriptions_on_the_consent_page(branded: World) -> None:
    client, _ = register_client(
        branded.server.settings, "notes", redirect_uris=[CONSENT_CB],
        grant_types=["authorization_code"], require_consent=True,
        scope="openid email profile notes:read",
    )  # fmt: skip
    with branded.browser() as browser:
        browser.headers.update(GERMAN)
        login = start(branded, browser, client, scope="openid profile email notes:read")
        consent = submit_login(browser, login, "alice", PASSWORD)
        assert consent.status_code == 200, consent.text
        assert '<span class="scope">notes:read</span> read your notes' in consent.text
        assert '<span class="scope">email</span> know where to write' in consent.text
        assert (
            '<span class="scope">profile</span> Ihren Namen und Benutzernamen sehen' in consent.text
        )


def test_a_failing_page_shows_the_error_page_and_no_trace(branded: World) -> None:
    with branded.browser() as browser:
        failed = browser.get("/account/totp")
        assert failed.status_code == 500
        assert "Something went wrong on our side" in failed.text
        assert "<code>server_error</code>" in failed.text
        assert f"request id {failed.headers['x-request-id']}" in failed.text
        assert "ZeroDivisionError" not in failed.text and "Traceback" not in failed.text
        assert "frame-ancestors 'none'" in failed.headers["content-security-policy"]
        api = browser.get("/userinfo", headers={"Authorization": "Bearer x"})
        assert api.status_code == 401, "other endpoints answer as before"
