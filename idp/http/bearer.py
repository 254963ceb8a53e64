"""Bearer token refusals answered over HTTP (RFC 6750 section 3).

The checks (:mod:`idp.oauth.bearer`) raise the verifier library's errors; an endpoint that
takes our access tokens turns one into an OAuth error answer carrying the same
``WWW-Authenticate`` challenge a resource server using :mod:`idp.verify` sends.
"""

from __future__ import annotations

from idp.oauth.errors import OAuthError
from idp.verify.errors import VerificationError, challenge

REALM = "idp"


def bearer_refusal(refused: VerificationError) -> OAuthError:
    """The answer to a refused bearer token: its code, status and challenge."""
    answer = OAuthError(
        refused.description, headers={"WWW-Authenticate": challenge(REALM, refused)}
    )
    answer.error, answer.status = refused.error, refused.status
    return answer
