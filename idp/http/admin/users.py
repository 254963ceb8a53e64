"""Admin API user endpoints: create, list, show, change, disable, unlock, delete (over
idp.admin.users)."""

from __future__ import annotations

from starlette.responses import Response

from idp.admin import users
from idp.admin.documents import disabled_document, unlock_document, user_document
from idp.admin.users import UserRef, UserUpdate
from idp.http.admin.routing import AdminCall, answer, no_content
from idp.http.json_body import BOOLEAN, NULLABLE_STRING, STRING, Field, read_json
from idp.store.security_events import SecurityEvent

CREATE_FIELDS = (
    Field(
        "username",
        STRING,
        "Unique login name (compared case-insensitively, NFKC); no spaces, control, format or "
        "zero-width characters.",
        required=True,
    ),
    Field(
        "password",
        STRING,
        "At least IDP_PASSWORD_MIN_LENGTH characters; stored only as an argon2id hash.",
        required=True,
    ),
    Field("email", NULLABLE_STRING, "Email address."),
    Field("name", NULLABLE_STRING, "Display name."),
)
UPDATE_FIELDS = (
    Field("email", NULLABLE_STRING, "Email address (null clears it)."),
    Field("name", NULLABLE_STRING, "Display name (null clears it)."),
    Field("disabled", BOOLEAN, "A disabled user cannot sign in."),
    Field("password", STRING, "A new password of at least IDP_PASSWORD_MIN_LENGTH characters."),
)


def _ref(call: AdminCall) -> UserRef:
    return UserRef(id=call.param("user_id"))


async def list_users(call: AdminCall) -> Response:
    """List users (never a password hash)."""
    return answer([user_document(u) for u in await users.list_users(call.admin)])


async def create(call: AdminCall) -> Response:
    """Create a user (the password is hashed with argon2id, never returned)."""
    body = await read_json(call.request, CREATE_FIELDS, optional=False)
    username, password = body.pop("username"), body.pop("password")
    return answer(
        user_document(await users.create_user(call.admin, username, password, **body)), 201
    )


async def show(call: AdminCall) -> Response:
    """Show one user."""
    return answer(user_document(await users.get_user(call.admin, _ref(call))))


async def update(call: AdminCall) -> Response:
    """Change a user's email, name, disabled flag or password."""
    body = await read_json(call.request, UPDATE_FIELDS, optional=False)
    return answer(
        user_document(await users.update_user(call.admin, _ref(call), UserUpdate(**body)))
    )


async def disable(call: AdminCall) -> Response:
    """Disable a user, end their sessions and refresh tokens; say how many sessions ended."""
    user, ended = await users.disable_user(call.admin, _ref(call))
    return answer(disabled_document(user, ended))


async def unlock(call: AdminCall) -> Response:
    """Forget the account's failed logins from every address, ending any pause or lock."""
    user, cleared = await users.unlock_user(call.admin, _ref(call))
    if cleared:
        # Its audit row (``user.unlock``) was written with the change; count it too.
        unlocked = SecurityEvent("user.unlock", "success", call.actor, user.id)
        call.services.events.counted(unlocked)
    return answer(unlock_document(user, cleared))


async def delete(call: AdminCall) -> Response:
    """Delete a user, ending their sessions first."""
    await users.delete_user(call.admin, _ref(call))
    return no_content()
