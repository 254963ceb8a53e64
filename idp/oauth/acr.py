"""Authentication context classes and methods this provider names in ID tokens.

``amr`` values are those of RFC 8176 section 2: ``pwd`` (a password), ``otp`` (a one-time
code: a TOTP code or a recovery code), ``hwk`` and ``swk`` (a device-bound or a synced
passkey), ``user`` (user presence) and ``mfa`` (more than one factor). The ``acr`` values
(OpenID Connect Core 1.0 section 2: an absolute URI or a registered name) are ours, listed
in discovery as ``acr_values_supported``; a client asks for a second factor with
``acr_values=urn:idp:acr:mfa`` (section 3.1.2.1).
"""

from __future__ import annotations

from collections.abc import Mapping

ACR_PASSWORD = "urn:idp:acr:pwd"
"""A password alone."""
ACR_MFA = "urn:idp:acr:mfa"
"""A password and a second factor (a TOTP code, a recovery code or a passkey)."""
ACR_VALUES = (ACR_PASSWORD, ACR_MFA)
AMR_PASSWORD = ("pwd",)
AMR_MFA = ("pwd", "otp", "mfa")


def check_acr_values(params: Mapping[str, str]) -> tuple[str, ...]:
    """The space-separated ``acr_values`` of a request, in order of preference (OIDC Core
    3.1.2.1); values we do not know are kept and simply not met (the claim is voluntary)."""
    return tuple(dict.fromkeys(v for v in params.get("acr_values", "").split(" ") if v))
