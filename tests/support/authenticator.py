"""A software WebAuthn authenticator for service tests: real ES256 keys, real CBOR.

It answers the options the service hands out as a browser and an authenticator would
(WebAuthn Level 2 sections 6.1, 6.5.4, 7.1, 7.2): ``none`` attestation, a counter it keeps
itself (tests may set it), and flags for user presence, user verification and backup.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    """One discoverable credential the authenticator holds."""

    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """Makes and uses credentials for ``origin``; ``verifies_user`` sets the UV flag."""

    origin: str
    verifies_user: bool = True
    backup_eligible: bool = False
    credentials: list[SoftCredential] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str) -> bytes:
        document = {
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": False,
        }
        return json.dumps(document).encode()

    def _flags(self) -> int:
        flags = UP | (UV if self.verifies_user else 0)
        return flags | (BE | BS if self.backup_eligible else 0)

    def create(self, options: dict[str, Any]) -> str:
        """The RegistrationResponseJSON for PublicKeyCredentialCreationOptionsJSON."""
        rp_id = options["rp"]["id"]
        credential = SoftCredential(
            secrets.token_bytes(16), ec.generate_private_key(ec.SECP256R1()), rp_id,
            unb64url(options["user"]["id"]),
        )  # fmt: skip
        self.credentials.append(credential)
        numbers = credential.key.public_key().public_numbers()
        cose = {
            1: 2,
            3: -7,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags() | AT])
            + (0).to_bytes(4, "big")
            + bytes(16)
            + len(credential.credential_id).to_bytes(2, "big")
            + credential.credential_id
            + cbor2.dumps(cose)
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
            }
        )

    def get(self, options: dict[str, Any], credential: SoftCredential | None = None) -> str:
        """The AuthenticationResponseJSON for PublicKeyCredentialRequestOptionsJSON, signed by
        ``credential`` (by default the first one the options allow)."""
        allowed = {unb64url(d["id"]) for d in options.get("allowCredentials", [])}
        if credential is None:
            credential = next(
                c for c in self.credentials if not allowed or c.credential_id in allowed
            )
        credential.sign_count += 1
        auth_data = (
            hashlib.sha256(credential.rp_id.encode()).digest()
            + bytes([self._flags()])
            + credential.sign_count.to_bytes(4, "big")
        )
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = credential.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": b64url(credential.credential_id),
                "rawId": b64url(credential.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(credential.user_handle),
                },
                "clientExtensionResults": {},
            }
        )
