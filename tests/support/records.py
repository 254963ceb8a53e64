"""Record factories for store tests: clients, users, sessions, codes, refresh tokens,
passkeys and WebAuthn challenges.

Each returns a valid record with plain defaults; keyword changes make the variant a test needs.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace

from idp.store.base import (
    AuthorizationCodeRecord,
    ClientRecord,
    PasskeyRecord,
    RefreshTokenRecord,
    SessionRecord,
    UserRecord,
    WebAuthnChallengeRecord,
)


def a_client(name: str = "billing", client_id: str = "c1") -> ClientRecord:
    """A confidential client_credentials service with a secret and an audience."""
    return ClientRecord(
        client_id=client_id,
        name=name,
        secret_hash=hashlib.sha256(b"s").digest(),
        redirect_uris=("https://app.example/cb",),
        post_logout_redirect_uris=(),
        grant_types=("client_credentials",),
        scope=("read", "write"),
        audiences=("https://api.example",),
        token_endpoint_auth_method="client_secret_basic",
        access_token_alg="ES256",
        id_token_alg="RS256",
        created_at=1000.5,
    )


def a_web_client(client_id: str = "web", **changes: object) -> ClientRecord:
    """A public authorization-code client (a browser app, no secret)."""
    client = ClientRecord(
        client_id=client_id,
        name=f"app {client_id}",
        secret_hash=None,
        redirect_uris=("https://app.example/cb",),
        post_logout_redirect_uris=(),
        grant_types=("authorization_code",),
        scope=("openid",),
        audiences=(),
        token_endpoint_auth_method="none",
        access_token_alg="RS256",
        id_token_alg="RS256",
        created_at=10.0,
    )
    return replace(client, **changes)  # type: ignore[arg-type]


def a_user(user_id: str = "u1", username: str = "alice") -> UserRecord:
    """An enabled user with a placeholder password hash."""
    return UserRecord(
        id=user_id,
        username=username,
        password_hash="$argon2id$placeholder",
        email="alice@example.org",
        name="Alice",
        created_at=5.0,
    )


def a_session(key: bytes = b"cookie", user_id: str = "u1", **changes: object) -> SessionRecord:
    """A live browser session, stored under the hash of its cookie ``key``."""
    session = SessionRecord(
        id=hashlib.sha256(key).digest(),
        sid=f"sid-{key.hex()}",
        user_id=user_id,
        auth_time=100.0,
        created_at=100.0,
        last_seen_at=100.0,
        idle_expires_at=200.0,
        expires_at=1000.0,
    )
    return replace(session, **changes)  # type: ignore[arg-type]


def a_code(code: bytes = b"code", **changes: object) -> AuthorizationCodeRecord:
    """An unconsumed authorization code for ``a_web_client()``, stored under its hash."""
    record = AuthorizationCodeRecord(
        id=f"row-{code.hex()}",
        code_hash=hashlib.sha256(code).digest(),
        client_id="web",
        redirect_uri="https://app.example/cb",
        user_id="u1",
        sid="sid-1",
        scope=("openid", "email"),
        nonce="n-0S6",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
        auth_time=100.0,
        created_at=100.0,
        expires_at=160.0,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def a_bare_client(client_id: str) -> ClientRecord:
    """The smallest valid client: no secret, no redirect URIs, client_credentials only."""
    return ClientRecord(
        client_id, client_id, None, (), (), ("client_credentials",), (), (), "none", "ES256",
        "ES256", 1.0,
    )  # fmt: skip


def a_refresh_token(family: str, sid: str, offline: bool) -> RefreshTokenRecord:
    """The first refresh token of ``family`` for client c1 and user u1."""
    return RefreshTokenRecord(
        f"rt-{family}", secrets.token_bytes(32), family, None, 0, "c1", "u1", sid, ("openid",),
        1.0, offline, 1.0, 10_000.0,
    )  # fmt: skip


def a_passkey(
    credential_id: bytes = b"cred-1", user_id: str = "u1", **changes: object
) -> PasskeyRecord:
    """A registered passkey of ``user_id`` whose counter stands at 5."""
    record = PasskeyRecord(
        credential_id=credential_id,
        user_id=user_id,
        public_key=b"\xa5public-key",
        sign_count=5,
        transports=("internal", "hybrid"),
        name="Laptop",
        created_at=10.0,
        last_used_at=None,
        backup_eligible=True,
        backed_up=False,
        aaguid="00000000-0000-0000-0000-000000000000",
    )
    return replace(record, **changes)  # type: ignore[arg-type]


def a_challenge(challenge_id: str = "ch-1", **changes: object) -> WebAuthnChallengeRecord:
    """A usernameless sign-in challenge that expires at 200."""
    record = WebAuthnChallengeRecord(
        id=challenge_id,
        challenge=b"c" * 32,
        purpose="authenticate",
        user_id=None,
        binding=b"b" * 32,
        created_at=100.0,
        expires_at=200.0,
    )
    return replace(record, **changes)  # type: ignore[arg-type]
