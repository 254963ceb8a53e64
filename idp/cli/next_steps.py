"""What ``idp serve --next-steps`` (and so ``scripts/serve``) prints after its banner: the
commands that make a machine client, a user and a web client, and a sign-in to try in a
browser with the authorization code flow and PKCE (RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shlex
import sys
from urllib.parse import urlencode

from idp.oauth.codes import CODE_LIFETIME

TRY_REDIRECT_URI = "http://127.0.0.1:9999/callback"
"""Where the browser is sent with the code: nothing listens there, so the code stays in the
address bar for the operator to copy."""


def idp_program() -> str:
    """How the operator runs this same ``idp``: the path it was started by, or ``python -m``."""
    started_as = sys.argv[0] if sys.argv else ""
    if os.path.basename(started_as) == "idp":
        return shlex.quote(started_as)
    return f"{shlex.quote(sys.executable)} -m idp"


def pkce_s256() -> tuple[str, str]:
    """A fresh code verifier and its S256 challenge (RFC 7636 sections 4.1 and 4.2)."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def next_steps(issuer: str, idp: str) -> list[str]:
    """The lines to print: shell comments and commands, ready to paste in order."""
    verifier, challenge = pkce_s256()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "CLIENT_ID",
            "redirect_uri": TRY_REDIRECT_URI,
            "scope": "openid profile",
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    ).replace("CLIENT_ID", "$CLIENT_ID")
    return [
        "# a machine client (client_credentials); it prints its client_id and client_secret:",
        f"{idp} clients create --name my-service --scope reports:read "
        "--audience https://api.example.com",
        "# a user; type a password of at least 8 characters, then Enter:",
        "read -rsp 'password for alice: ' PASSWORD && echo && printf '%s\\n' \"$PASSWORD\" "
        f"| {idp} users create --username alice --password-stdin",
        "# a web client (authorization code with PKCE); its id is kept in CLIENT_ID, note its "
        "client_secret:",
        f"CLIENT_ID=$({idp} clients create --name my-web-app --redirect-uri {TRY_REDIRECT_URI} "
        "| tee /dev/stderr | sed -n 's/^client_id: //p')",
        "# open this URL in a browser and sign in as alice:",
        f'echo "{issuer}/authorize?{query}"',
        f"# the browser then fails to load {TRY_REDIRECT_URI}?code=...: nothing listens there. "
        f"Within {CODE_LIFETIME} s, redeem that code (put it and the secret in place of CODE "
        "and CLIENT_SECRET):",
        f'curl -s -u "$CLIENT_ID:CLIENT_SECRET" -d grant_type=authorization_code -d code=CODE '
        f"-d redirect_uri={TRY_REDIRECT_URI} -d code_verifier={verifier} {issuer}/token",
        "# PKCE (RFC 7636): the URL carries code_challenge = BASE64URL(SHA-256(code_verifier)), "
        "so only who holds code_verifier can redeem the code; this pair is new at each start.",
    ]
