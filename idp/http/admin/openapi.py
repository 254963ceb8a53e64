"""The OpenAPI 3.1 description of the admin API, made from the same table as its routes
(idp/http/admin/operations.py): paths, query and body fields, answers and their schemas."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import idp
from idp.http.json_body import object_schema

if TYPE_CHECKING:
    from idp.http.admin.routing import Operation

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "adminToken"
_PATH_PARAMETER = re.compile(r"{([a-z_]+)}")

_ERROR_DESCRIPTIONS = {
    400: "Bad JSON, a wrong type, an unknown member, or metadata that breaks a rule.",
    401: "No bearer token, or one that is malformed, expired, wrongly signed, not ours, "
    "or issued for a user rather than the client itself.",
    403: "A valid token without the idp:admin scope.",
    404: "No such key, client, user, consent, live session or initial access token.",
    405: "Method not allowed on this path.",
    409: "The name is taken, or the key is already in the ring or already revoked.",
}

_PARAMETER_DESCRIPTIONS = {
    "kid": "The key id (its RFC 7638 thumbprint).",
    "client_id": "The client's id.",
    "user_id": "The user's id.",
    "sid": "The session's public id (the sid its ID tokens carry), as the session list shows.",
    "token_id": "The initial access token's id, as the token list shows.",
}


def _string(description: str, *, nullable: bool = False, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"] if nullable else "string"}
    if fmt:
        schema["format"] = fmt
    schema["description"] = description
    return schema


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


def _schemas() -> dict[str, Any]:
    time = "date-time"
    key = _object(
        {
            "kid": _string("Key id: the RFC 7638 thumbprint."),
            "alg": _string("RS256 or ES256."),
            "state": {
                "type": "string",
                "enum": ["next", "active", "retired", "revoked", "expired"],
            },
            "created_at": _string("When the key was made.", fmt=time),
            "activated_at": _string("When it started signing.", nullable=True, fmt=time),
            "retired_at": _string("When it stopped signing.", nullable=True, fmt=time),
            "revoked_at": _string("When it was revoked.", nullable=True, fmt=time),
            "next_transition": _string(
                "activate, retire or expire; null for a final key or one waiting behind another.",
                nullable=True,
            ),
            "next_transition_at": _string("When that happens.", nullable=True, fmt=time),
        },
        ["kid", "alg", "state", "created_at", "activated_at", "retired_at", "revoked_at"],
    )
    rotation = _object(
        {
            "alg": _string("The algorithm whose ring rotated."),
            "active_kid": _string("The key that signs from now on."),
            "retired_kid": _string(
                "The key that stopped signing (null for a new ring).", nullable=True
            ),
            "next_kid": _string("The key published to sign next."),
            "warning": _string(
                "Set when the promoted key had been published for less than "
                "IDP_KEY_PREPUBLISH; null otherwise.",
                nullable=True,
            ),
        },
        ["alg", "active_kid", "retired_kid", "next_kid", "warning"],
    )
    client_properties = {
        "client_id": _string("The client's id."),
        "client_secret": _string("Only in the answer to creation, and only this once."),
        "name": _string("Unique name."),
        "redirect_uris": _strings("Exact redirect URIs."),
        "post_logout_redirect_uris": _strings("Exact post-logout redirect URIs."),
        "grant_types": _strings("Grant types the client may use."),
        "scope": _string("Space-separated scopes."),
        "audiences": _strings("Audiences the client may address tokens to."),
        "token_endpoint_auth_method": _string("How the client authenticates."),
        "access_token_alg": _string("Algorithm of its access tokens."),
        "id_token_alg": _string("Algorithm of its ID tokens."),
        "created_at": _string("When it was registered.", fmt=time),
        "require_mfa": {"type": "boolean", "description": "Sign-ins need a second factor."},
        "require_par": {
            "type": "boolean",
            "description": "Authorization requests only by pushed request (RFC 9126).",
        },
        "jwks": {
            "type": ["object", "null"],
            "description": "private_key_jwt: the client's public keys (a JWK Set).",
        },
        "jwks_uri": _string(
            "private_key_jwt: where the client publishes its JWK Set.", nullable=True
        ),
        "require_dpop": {
            "type": "boolean",
            "description": "Token requests need a DPoP proof (RFC 9449).",
        },
        "token_exchange_subject_clients": _strings(
            "Token exchange (RFC 8693): clients whose tokens it may exchange; empty: any."
        ),
    }
    client = _object(client_properties, [n for n in client_properties if n != "client_secret"])
    user = _object(
        {
            "id": _string("The user's id."),
            "username": _string("Login name."),
            "email": _string("Email address.", nullable=True),
            "name": _string("Display name.", nullable=True),
            "disabled": {"type": "boolean"},
            "created_at": _string("When the account was made.", fmt=time),
        },
        ["id", "username", "email", "name", "disabled", "created_at"],
    )
    error = _object(
        {
            "error": _string("An error code (RFC 6749 section 5.2, RFC 6750 section 3.1)."),
            "error_description": _string("What went wrong, for a person."),
        },
        ["error", "error_description"],
    )
    return {
        **_user_outcomes(user),
        **_ring_and_audit(),
        **_consents_and_sessions(),
        "Key": key,
        "Keys": {"type": "array", "items": _ref("Key")},
        "Rotation": rotation,
        "Rotations": {"type": "array", "items": _ref("Rotation")},
        "Client": client,
        "Clients": {"type": "array", "items": _ref("Client")},
        "ClientSecret": _object(
            {
                "client_id": _string("The client's id."),
                "client_secret": _string("The new secret, in this answer only."),
                "previous_secret_expires_at": _string(
                    "Until when the old secret works too; null: it stopped at once.",
                    nullable=True,
                    fmt=time,
                ),
            },
            ["client_id", "client_secret", "previous_secret_expires_at"],
        ),
        "InitialAccessToken": _object(
            {
                "id": _string("The token's id (in the audit trail)."),
                "initial_access_token": _string(
                    "The Bearer token for POST /register (RFC 7591 section 3), in this answer only."
                ),
                "expires_at": _string("When it stops working.", fmt=time),
                "uses": {
                    "type": ["integer", "null"],
                    "description": "How many registrations it allows; null: any until it expires.",
                },
            },
            ["id", "initial_access_token", "expires_at", "uses"],
        ),
        "InitialAccessTokenSummary": _object(
            {
                "id": _string("The token's id (in the audit trail)."),
                "created_at": _string("When it was made.", fmt=time),
                "expires_at": _string("When it stops working.", fmt=time),
                "uses_left": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "How many more registrations it allows; null: any until "
                    "it expires.",
                },
            },
            ["id", "created_at", "expires_at", "uses_left"],
        ),
        "InitialAccessTokenSummaries": {
            "type": "array",
            "items": _ref("InitialAccessTokenSummary"),
        },
        "User": user,
        "Users": {"type": "array", "items": _ref("User")},
        "Error": error,
        "OpenAPI": {"type": "object", "description": "An OpenAPI 3.1 document."},
    }


def _user_outcomes(user: dict[str, Any]) -> dict[str, Any]:
    """The answers of ``disable`` and ``unlock``."""
    disabled = {**user["properties"], "sessions_ended": _count("Sessions that ended.")}
    unlocked = {
        "id": _string("The user's id."),
        "username": _string("Login name."),
        "unlocked": {"type": "boolean", "const": True},
        "cleared": {"type": "boolean", "description": "False when nothing was to forget."},
    }
    return {
        "DisabledUser": _object(disabled, [*user["required"], "sessions_ended"]),
        "Unlocked": _object(unlocked, list(unlocked)),
        **_mfa_outcomes(),
    }


def _mfa_outcomes() -> dict[str, Any]:
    """A user's second factors (as ``idp users mfa --json``), and the answer to a reset."""
    status = {
        "id": _string("The user's id."),
        "username": _string("Login name."),
        "totp": {"type": "string", "enum": ["none", "pending", "active"]},
        "recovery_codes_left": _count("Unused recovery codes."),
        "mfa_required": {"type": "boolean", "description": "Every sign-in needs one."},
    }
    reset = {**status, "reset": {"type": "boolean", "description": "False: there was none."}}
    return {
        "MfaStatus": _object(status, list(status)),
        "MfaReset": _object(reset, list(reset)),
    }


def _consents_and_sessions() -> dict[str, Any]:
    """A consent and a session (as ``idp consents list --json`` and ``idp sessions list
    --json`` show them), and the answer to ending a user's sessions."""
    time = "date-time"
    consent = {
        "user_id": _string("The user's id."),
        "username": _string("The user's login name."),
        "client_id": _string("The client's id."),
        "client_name": _string("The client's name."),
        "scope": _string("Space-separated scopes the user granted."),
        "granted_at": _string("When scopes were last added to it.", fmt=time),
    }
    session = {
        "sid": _string("The public session id (as in ID tokens); never the cookie."),
        "user_id": _string("The user's id."),
        "username": _string("The user's login name."),
        "auth_time": _string("When the user signed in.", fmt=time),
        "created_at": _string("When the session started.", fmt=time),
        "last_seen_at": _string("When the session was last used.", fmt=time),
        "idle_expires_at": _string("When it ends unless used again.", fmt=time),
        "expires_at": _string("When it ends at the latest.", fmt=time),
        "amr": _strings("How the user signed in (RFC 8176 values)."),
        "acr": _string("The authentication context class reached.", nullable=True),
        "clients": _strings("The clients that received tokens through the session."),
    }
    ended = {
        "id": _string("The user's id."),
        "username": _string("Login name."),
        "sessions_ended": _count("Sessions that ended."),
    }
    return {
        "Consent": _object(consent, list(consent)),
        "Consents": {"type": "array", "items": _ref("Consent")},
        "Session": _object(session, list(session)),
        "Sessions": {"type": "array", "items": _ref("Session")},
        "SessionsEnded": _object(ended, list(ended)),
    }


def _count(description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "description": description}


def _ring_and_audit() -> dict[str, Any]:
    """The ring status (as ``idp keys status --json``) and the audit trail's page."""
    ring = {
        "alg": _string("The algorithm."),
        "active_kid": _string("The signing key.", nullable=True),
        "next_kid": _string("The key the next rotation promotes.", nullable=True),
        "rotation_due_at": _string("When a rotation is due.", nullable=True, fmt="date-time"),
        "rotation_at": _string("When it happens (pre-publication waited for).", nullable=True),
        "next_key_published_for_at_rotation": {"type": ["number", "null"]},
        "verifiers_safe": {"type": "boolean"},
        "manual_rotation_safe_now": {"type": "boolean"},
        "retired_kids": _strings("Retired keys still published."),
        "summary": _string("The same in words."),
    }
    entry = {
        "id": {"type": "integer"},
        "at": _string("When.", fmt="date-time"),
        "actor": _string("cli:<login>, admin:<client_id>, system, scheduler or anonymous."),
        "action": _string("For example client.create or key.activate."),
        "target": _string("The id of what was acted on."),
        "outcome": {"type": "string", "enum": ["success", "failure"]},
        "detail": {"type": "object"},
        "subject": _string("The admin token's sub.", nullable=True),
        "count": _count("How many refused calls a counted row stands for."),
    }
    page = {
        "entries": {"type": "array", "items": _ref("AuditEntry")},
        "next_cursor": _string("The cursor of the older page; null at the start.", nullable=True),
    }
    return {
        "RingStatus": _object(ring, list(ring)),
        "RingStatuses": {"type": "array", "items": _ref("RingStatus")},
        "AuditEntry": _object(entry, list(entry)),
        "AuditPage": _object(page, list(page)),
    }


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if status in (401, 403):
        response["headers"] = {
            "WWW-Authenticate": {
                "description": "The RFC 6750 challenge: invalid_token or insufficient_scope.",
                "schema": {"type": "string"},
            }
        }
    return response


def _operation(operation: Operation) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": operation.action.replace(".", "_"),
        "summary": operation.summary,
        "security": [{SECURITY_SCHEME: []}] if operation.authenticated else [],
    }
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": _PARAMETER_DESCRIPTIONS.get(name, name),
            "schema": {"type": "string"},
        }
        for name in _PATH_PARAMETER.findall(operation.path)
    ]
    parameters += [
        {"name": f.name, "in": "query", "required": f.required, "schema": f.schema()}
        for f in operation.query
    ]
    if parameters:
        document["parameters"] = parameters
    if operation.body is not None:
        document["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": object_schema(operation.body)}},
        }
    success: dict[str, Any] = {"description": "Done."}
    if operation.response is not None:
        success["content"] = {"application/json": {"schema": _ref(operation.response)}}
    responses: dict[str, Any] = {str(operation.status): success}
    for status in operation.errors:
        responses[str(status)] = _error_response(status)
    document["responses"] = responses
    return document


def openapi_document(operations: Sequence[Operation], issuer: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document with every admin path, method, body, answer and the scheme."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "idp admin API",
            "version": idp.__version__,
            "description": (
                "Keys, clients, users, consents, sessions and the audit trail of this identity "
                "provider. Call it with an access token of this server (client_credentials, "
                "from a client made with `idp clients create --admin`) carrying the scope "
                "idp:admin and the audience "
                f"{issuer}/admin. Every change and every refused call is in the audit trail "
                "(refusals before authentication counted per source address and minute)."
            ),
        },
        "servers": [{"url": issuer}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "An RFC 9068 access token of this server with scope idp:admin and "
                        "audience <issuer>/admin, issued to the client itself "
                        "(client_credentials): a user's token is refused."
                    ),
                }
            },
        },
    }
