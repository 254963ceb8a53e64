"""The sign-in services called directly over each store: every kind of answer they give.

No HTTP here: :mod:`idp.sso.signin` and :mod:`idp.sso.consent` take plain values and
return :mod:`idp.sso.outcomes` values, and the store shows what they did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from idp.admin.context import AdminContext
from idp.admin.users import create_user
from idp.config import Settings
from idp.sso import outcomes
from idp.sso.consent import CLIENT_GONE, SIGNED_OUT, submit_consent
from idp.sso.login import LOGIN_FAILED
from idp.sso.sessions import NewSession, resume_session, session_id_of
from idp.sso.signin import answer_authorization_request, sign_in
from idp.store.base import Store, UserRecord
from tests.support.records import a_refresh_token, a_web_client
from tests.support.signin import SignInParts, signin_services
from tests.support.sso import PASSWORD, pkce_pair, query_of

pytestmark = pytest.mark.anyio

REDIRECT_URI = "https://app.example/cb"


@pytest.fixture
async def parts(settings: Settings, store: Store) -> AsyncIterator[SignInParts]:
    async with signin_services(settings, store) as services:
        yield services


@pytest.fixture
async def alice(settings: Settings, store: Store) -> UserRecord:
    return await create_user(AdminContext(store, settings), "alice", PASSWORD)


def params(client_id: str = "web", **extra: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def authorize(
    parts: SignInParts, cookie: str | None = None, client_id: str = "web", **extra: str
) -> outcomes.AuthorizeOutcome:
    """What /authorize answers a browser with ``cookie`` (None: no session)."""
    return await answer_authorization_request(
        parts, params(client_id, **extra), session_cookie=cookie
    )


async def pending(parts: SignInParts, **extra: str) -> outcomes.ShowLoginForm:
    """The login form /authorize answers a browser without a session with."""
    outcome = await authorize(parts, **extra)
    assert isinstance(outcome, outcomes.ShowLoginForm), outcome
    return outcome


async def type_password(
    parts: SignInParts,
    form: outcomes.ShowLoginForm,
    typed: str = PASSWORD,
    cookie: str | None = None,
) -> outcomes.SignInOutcome:
    """What /login answers alice typing ``typed`` into ``form``."""
    return await sign_in(
        parts,
        form.request,
        username="alice",
        password=typed,
        client_address="192.0.2.7",
        session_cookie=cookie,
    )


async def asked_consent(
    parts: SignInParts, store: Store
) -> tuple[outcomes.ShowLoginForm, outcomes.ConsentNeeded]:
    """A client that needs consent, and the question alice's sign-in to it gets."""
    await store.create_client(a_web_client(require_consent=True))
    form = await pending(parts)
    asked = await type_password(parts, form)
    assert isinstance(asked, outcomes.ConsentNeeded), asked
    return form, asked


def signed_in(outcome: outcomes.SignInOutcome) -> NewSession:
    assert isinstance(outcome, outcomes.RedirectWithCode | outcomes.ConsentNeeded), outcome
    assert outcome.new_session is not None
    return outcome.new_session


async def test_without_a_session_the_login_form_is_shown_with_the_login_hint(
    parts: SignInParts, store: Store
) -> None:
    await store.create_client(a_web_client())
    form = await pending(parts, login_hint="alice")
    assert (form.client_name, form.username, form.error) == ("app web", "alice", None)
    assert form.request.state == "xyz" and form.request.scope == ("openid",)


async def test_an_unknown_client_is_an_error_page_and_prompt_none_an_error_redirect(
    parts: SignInParts, store: Store
) -> None:
    unknown = await authorize(parts, client_id="nobody")
    assert isinstance(unknown, outcomes.ShowError)
    assert (unknown.error_code, unknown.detail) == (
        "invalid_request",
        "the client_id is not a registered client",
    )
    await store.create_client(a_web_client())
    refused = await authorize(parts, prompt="none")
    assert isinstance(refused, outcomes.RedirectWithError) and refused.new_session is None
    assert query_of(refused.location)["error"] == "login_required"


async def test_a_wrong_password_shows_the_form_again_with_an_error(
    parts: SignInParts, store: Store, alice: UserRecord
) -> None:
    await store.create_client(a_web_client())
    form = await pending(parts)
    again = await type_password(parts, form, "not the password")
    assert again == outcomes.ShowLoginForm("app web", form.request, "alice", LOGIN_FAILED)


async def test_too_many_failures_are_throttled_and_the_password_is_not_checked(
    parts: SignInParts, store: Store, alice: UserRecord
) -> None:
    await store.create_client(a_web_client())
    form = await pending(parts)
    for _ in range(parts.settings.login_max_failures):
        assert isinstance(await type_password(parts, form, "wrong"), outcomes.ShowLoginForm)
    refused = await type_password(parts, form)  # the right one, too late
    assert isinstance(refused, outcomes.Throttled), refused
    assert refused.retry_after >= 1
    assert refused.form.error is not None and refused.form.error.startswith("Too many")
    assert refused.form.username == "alice" and refused.form.request == form.request


async def test_a_right_password_redirects_with_a_code_in_a_new_session(
    parts: SignInParts, store: Store, alice: UserRecord
) -> None:
    await store.create_client(a_web_client())
    form = await pending(parts)
    outcome = await type_password(parts, form)
    assert isinstance(outcome, outcomes.RedirectWithCode), outcome
    query = query_of(outcome.location)
    assert outcome.location.startswith(REDIRECT_URI + "?")
    assert query["state"] == "xyz" and query["iss"] == parts.settings.issuer and query["code"]
    session = signed_in(outcome).record
    assert session.user_id == alice.id
    assert await store.list_session_clients(session.id) == ["web"]
    # The session now answers /authorize by itself, with no new session.
    again = await authorize(parts, signed_in(outcome).cookie_value)
    assert isinstance(again, outcomes.RedirectWithCode) and again.new_session is None


async def test_a_new_sign_in_replaces_the_session_and_revokes_its_grants(
    parts: SignInParts, store: Store, alice: UserRecord
) -> None:
    await store.create_client(a_web_client())
    form = await pending(parts)
    first = signed_in(await type_password(parts, form))
    token = replace(
        a_refresh_token("f1", first.record.sid, offline=False),
        client_id="web",
        user_id=alice.id,
        expires_at=parts.clock() + 3600,
    )
    await store.create_refresh_token(token)
    second = signed_in(await type_password(parts, form, cookie=first.cookie_value))
    assert second.cookie_value != first.cookie_value
    assert second.record.sid != first.record.sid
    old = await store.get_session(session_id_of(first.cookie_value))
    assert old is not None and old.ended_at is not None
    args = (store, parts.settings, parts.clock)
    assert await resume_session(*args, first.cookie_value) is None
    assert await resume_session(*args, second.cookie_value) is not None
    revoked = await store.get_refresh_token(token.token_hash)
    assert revoked is not None and revoked.revoked_at is not None


async def test_consent_is_asked_then_remembered(
    parts: SignInParts, store: Store, alice: UserRecord
) -> None:
    form, asked = await asked_consent(parts, store)
    session = signed_in(asked)
    assert (asked.client_name, asked.username) == ("app web", "alice")
    assert asked.sid == session.record.sid and asked.request == form.request
    decide = {"sid": asked.sid, "session_cookie": session.cookie_value}
    assert await submit_consent(
        parts, form.request, decision="maybe", **decide
    ) == outcomes.ShowError("Choose Allow or Deny.", "invalid_request")
    allowed = await submit_consent(parts, form.request, decision="allow", **decide)
    assert isinstance(allowed, outcomes.RedirectWithCode) and query_of(allowed.location)["code"]
    assert await store.get_consent(alice.id, "web") == ("openid",)
    # Granted once, the session is answered without asking again.
    again = await authorize(parts, session.cookie_value)
    assert isinstance(again, outcomes.RedirectWithCode)


async def test_consent_denied_or_from_another_session_gets_no_code(
    parts: SignInParts, store: Store, alice: UserRecord
) -> None:
    form, asked = await asked_consent(parts, store)
    cookie = signed_in(asked).cookie_value
    stranger = await submit_consent(
        parts, form.request, sid="another", decision="allow", session_cookie=cookie
    )
    assert stranger == outcomes.ShowError(SIGNED_OUT, "login_required")
    denied = await submit_consent(
        parts, form.request, sid=asked.sid, decision="deny", session_cookie=cookie
    )
    assert isinstance(denied, outcomes.RedirectWithError)
    assert query_of(denied.location)["error"] == "access_denied"
    assert await store.get_consent(alice.id, "web") == ()


async def test_a_client_deleted_while_the_form_was_open_is_an_error_page(
    parts: SignInParts, store: Store, alice: UserRecord
) -> None:
    await store.create_client(a_web_client())
    form = await pending(parts)
    await store.delete_client("web")
    assert await type_password(parts, form) == outcomes.ShowError(CLIENT_GONE, "invalid_client")
