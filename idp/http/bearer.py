"""Bearer token refusals answered over HTTP (RFC 6750 section 3).

The checks (:mod:`idp.oauth.bearer`) raise the verifier library's errors; an endpoint that
takes our access tokens turns one into an OAuth error answer carrying the same
``WWW-Authenticate`` challenge a resource server using :mod:`idp.verify` sends.
"""

from __future__ import annotations

from idp.oauth.dpop import DPOP_ALGS
from idp.oauth.errors import OAuthError
from idp.verify.errors import DpopError, VerificationError, challenge

REALM = "idp"


def bearer_refusal(refused: VerificationError, *, dpop: bool = False) -> OAuthError:
    """The answer to a refused bearer token: its code, status and challenge; the ``DPoP``
    challenge (RFC 9449 section 7.1) when the request used that scheme (``dpop``) or the
    refusal is about DPoP."""
    if dpop or isinstance(refused, DpopError):
        value = challenge(REALM, refused, scheme="DPoP", algs=DPOP_ALGS)
    else:
        value = challenge(REALM, refused)
    answer = OAuthError(refused.description, headers={"WWW-Authenticate": value})
    answer.error, answer.status = refused.error, refused.status
    return answer
