"""Admin API key endpoints: list, ring status, rotate, revoke, import (over idp.admin.keys)."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin import keys
from idp.admin.documents import key_document, ring_document, rotation_document
from idp.admin.keys import MAX_PEM_BYTES
from idp.http.admin.routing import AdminCall, answer
from idp.http.json_body import STRING, Field, read_json

ROTATE_FIELDS = (Field("alg", STRING, "Rotate only this algorithm's ring (default: all)."),)
IMPORT_FIELDS = (
    Field("alg", STRING, "The ring to join: RS256 or ES256 (a configured one).", required=True),
    Field(
        "pem",
        STRING,
        "The private key as PEM text: unencrypted PKCS#8 or traditional; RSA of at least 2048 "
        "bits for RS256, P-256 for ES256.",
        required=True,
        limit=MAX_PEM_BYTES,
    ),
)


async def list_keys(call: AdminCall) -> Response:
    """List every key, with its next scheduled transition."""
    return answer([key_document(k, t) for k, t in await keys.list_keys(call.admin)])


async def ring_status(call: AdminCall) -> Response:
    """Per algorithm: when the ring rotates next, and whether verifiers are safe."""
    return answer([ring_document(r) for r in await keys.key_ring_status(call.admin)])


async def rotate(call: AdminCall) -> Response:
    """Rotate now: next becomes active, active becomes retired, a new next is made."""
    body = await read_json(call.request, ROTATE_FIELDS, optional=True)
    rotations = await keys.rotate_now(call.admin, body.get("alg"))
    return answer([rotation_document(r) for r in rotations])


async def revoke(call: AdminCall) -> Response:
    """Revoke a key at once: out of JWKS and signing; an active key is replaced."""
    return answer(key_document(await keys.revoke_key(call.admin, call.param("kid"))))


async def import_pem(call: AdminCall) -> Response:
    """Import a PEM private key into a ring as its next key, sealed and audited."""
    body = await read_json(call.request, IMPORT_FIELDS, optional=False)
    pem = body["pem"].encode("utf-8", "replace")  # a lone surrogate cannot be PEM anyway
    return answer(key_document(await keys.import_key(call.admin, body["alg"], pem)), 201)
