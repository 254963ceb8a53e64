"""DPoP at the IdP's own protected resources (UserInfo): RFC 9449 section 7.

A DPoP-bound access token (one whose ``cnf.jkt`` names a key, section 6.1) is accepted only
with the ``DPoP`` authorization scheme and a proof of that key made for this request and
this token (``ath``, section 4.2), accepted once like every proof. The same token sent as a
bearer token is refused (section 7.2), as is a token that is not bound sent with the DPoP
scheme. Refusals are the verifier library's DPoP errors, answered with a ``DPoP`` challenge.
"""

from __future__ import annotations

from collections.abc import Sequence

from idp.oauth.bearer import DPOP
from idp.oauth.dpop_proofs import DpopPolicy, accepted_proof
from idp.oauth.errors import OAuthError
from idp.store.base import DpopProofStore
from idp.verify.dpop import bound_key
from idp.verify.errors import InvalidDpopProof, InvalidDpopToken
from idp.verify.result import VerifiedToken


async def check_token_binding(
    token: VerifiedToken,
    raw_token: str,
    scheme: str,
    proofs: Sequence[str],
    store: DpopProofStore,
    policy: DpopPolicy,
    *,
    method: str,
    url: str,
    now: float,
) -> None:
    """Refuse ``token`` (presented with ``scheme``) unless its binding holds (section 7.1).

    A bound token needs the DPoP scheme and one proof for ``method`` and ``url`` whose
    ``ath`` is the token's hash and whose key is the bound one; a token that is not bound
    needs the Bearer scheme (proofs sent with it are not looked at).
    """
    jkt = bound_key(token.claims)
    if scheme != DPOP:
        if jkt is not None:
            raise InvalidDpopToken(
                "a DPoP-bound access token must be sent with the DPoP scheme",
                client_id=token.client_id,
            )
        return
    if jkt is None:
        raise InvalidDpopToken(
            "the access token is not DPoP-bound: send it with the Bearer scheme",
            client_id=token.client_id,
        )
    try:
        proof = await accepted_proof(
            proofs, store, policy, method=method, url=url, now=now, access_token=raw_token
        )
    except OAuthError as exc:
        raise InvalidDpopProof(exc.description, client_id=token.client_id) from None
    if proof is None:
        raise InvalidDpopProof("a DPoP proof is required", client_id=token.client_id)
    if proof.jkt != jkt:
        raise InvalidDpopProof(
            "the DPoP proof is not of the key the access token is bound to",
            client_id=token.client_id,
        )
