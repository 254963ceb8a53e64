"""The token exchange grant (RFC 8693 section 2): a client trades a user's token for its own.

A service holding a token issued to someone else (the subject token) asks for an access
token of its own for the same person, addressed to a resource it may reach: impersonation,
or with an actor token, delegation (``act``, section 4.1). The checks run in order, each
named in :mod:`idp.oauth.token_exchange`. The new token keeps the subject token's grant and
session claims, so ending the subject's grant (its consent, its refresh token family, its
session) ends the exchanged token too. No refresh token is issued (section 2.2.1 allows it).
"""

from __future__ import annotations

from idp.oauth.errors import InvalidRequest
from idp.oauth.grants.base import (
    GrantContext,
    TokenRequest,
    TokenResponse,
    check_grant_allowed,
    issue_access_token,
    required_param,
)
from idp.oauth.registration import TOKEN_EXCHANGE
from idp.oauth.resources import check_resource_form, resolve_audiences
from idp.oauth.scopes import grant_scope
from idp.oauth.token_exchange import (
    ISSUED_TOKEN_TYPE,
    PresentedToken,
    TokenCheck,
    check_requested_token_type,
    check_subject,
    check_token_type,
    delegation_act,
    presented_token,
    scope_ceiling,
)
from idp.store.base import ClientRecord
from idp.store.security_events import SecurityEvent


def requested_targets(request: TokenRequest) -> list[str]:
    """Every ``audience`` and every ``resource`` asked for (RFC 8693 section 2.1, RFC 8707):
    both name where the token is meant to be used, so both are held to the client's
    registered audiences."""
    for resource in request.resources:
        check_resource_form(resource)
    return [*request.audiences, *request.resources]


async def actor_of(request: TokenRequest, check: TokenCheck) -> PresentedToken | None:
    """The actor token, when one is given with its type (RFC 8693 section 2.1: the type is
    required with the token, and must not come without it)."""
    actor_token = request.get("actor_token")
    actor_type = request.get("actor_token_type")
    if actor_token is None:
        if actor_type is not None:
            raise InvalidRequest("actor_token_type is given without an actor_token")
        return None
    token_type = check_token_type(actor_type, "actor_token_type")
    return await presented_token(actor_token, token_type, check, "actor token")


async def report_exchange(
    context: GrantContext, client: ClientRecord, subject: PresentedToken, act: object
) -> None:
    """Audit an exchange (``token.exchange``): who now holds a token for whom, from which
    client's token, and who acts; never a token."""
    detail: dict[str, object] = {"subject_client": subject.client_id}
    if act is not None:
        detail["act"] = act
    event = SecurityEvent(
        "token.exchange",
        "success",
        client.client_id,
        subject.subject,
        client.client_id,
        context.client_address,
        detail,
    )
    await context.events.record(event)


class TokenExchangeGrant:
    """Exchange a subject token (and an actor token) for an RFC 9068 access token."""

    grant_type = TOKEN_EXCHANGE

    async def handle(
        self, request: TokenRequest, client: ClientRecord, context: GrantContext
    ) -> TokenResponse:
        check_grant_allowed(client, self.grant_type)
        subject_token = required_param(request, "subject_token")
        subject_type = check_token_type(request.get("subject_token_type"), "subject_token_type")
        check_requested_token_type(request.get("requested_token_type"))
        targets = requested_targets(request)
        check = TokenCheck(context.settings.issuer, context.ring, context.clock, context.store)
        subject = await presented_token(subject_token, subject_type, check, "subject token")
        check_subject(subject, client)
        actor = await actor_of(request, check)
        ceiling = scope_ceiling(subject, client)
        scope = grant_scope(request.get("scope"), ceiling, "scope beyond the subject token's")
        audiences = resolve_audiences(targets, client, context.settings.issuer)
        act = delegation_act(actor, subject)
        token = issue_access_token(
            context,
            client,
            subject=subject.subject,
            audiences=audiences,
            scope=scope,
            auth_time=subject.auth_time,
            grant_id=subject.grant_id,
            sid=subject.sid,
            acr=subject.acr,
            act=act,
        )
        await report_exchange(context, client, subject, act)
        return TokenResponse(
            access_token=token,
            expires_in=context.settings.access_token_ttl,
            scope=scope,
            extra={"issued_token_type": ISSUED_TOKEN_TYPE},
        )
