"""DPoP in the verifier library (RFC 9449 section 7): ``verify(token, dpop_proof=..., method=...,
url=...)``, its bounded in-memory replay cache, and the Starlette integration over real HTTP;
and a bound token of a live IdP verified the way a resource server would."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from idp.verify import TokenVerifier
from idp.verify.dpop import DpopNonces, DpopProof, ReplayCache
from idp.verify.errors import (
    InsufficientScope,
    InvalidDpopProof,
    InvalidDpopToken,
    UseDpopNonce,
)
from idp.verify.starlette import BearerAuthMiddleware, requires_token
from tests.support.dpop import DpopKey
from tests.support.server import LiveServer, basic, register_client
from tests.support.verify import AUDIENCE, ISSUER, Signer, good_claims, jwks_server, serving

API = "https://api.example.com/things"


@pytest.fixture(scope="module")
def rsa() -> Signer:
    return Signer.rsa("rsa-1")


@pytest.fixture
def verifier(rsa: Signer) -> Iterator[TokenVerifier]:
    with jwks_server([rsa.jwk()]) as keys:
        yield TokenVerifier(ISSUER, AUDIENCE, jwks_uri=keys.jwks_uri)


def bound_token(rsa: Signer, key: DpopKey) -> str:
    return rsa.token(good_claims(now=time.time(), cnf={"jkt": key.jkt}))


def test_a_bound_token_needs_a_proof_of_its_key(rsa: Signer, verifier: TokenVerifier) -> None:
    key = DpopKey()
    token = bound_token(rsa, key)
    proof = key.proof("GET", API, access_token=token)
    verified = verifier.verify(token, dpop_proof=proof, method="GET", url=API, scopes=["read"])
    assert verified.claims["cnf"] == {"jkt": key.jkt}
    with pytest.raises(InvalidDpopProof, match="already been used"):
        verifier.verify(token, dpop_proof=proof, method="GET", url=API)
    with pytest.raises(InvalidDpopToken):
        verifier.verify(token)
    with pytest.raises(InvalidDpopProof, match="ath"):
        verifier.verify(token, dpop_proof=key.proof("GET", API), method="GET", url=API)
    with pytest.raises(InvalidDpopProof, match="htm"):
        verifier.verify(
            token, dpop_proof=key.proof("POST", API, access_token=token), method="GET", url=API
        )
    with pytest.raises(InvalidDpopProof, match="htu"):
        other = key.proof("GET", API + "/1", access_token=token)
        verifier.verify(token, dpop_proof=other, method="GET", url=API)
    thief = DpopKey().proof("GET", API, access_token=token)
    with pytest.raises(InvalidDpopProof, match="bound to"):
        verifier.verify(token, dpop_proof=thief, method="GET", url=API)
    with pytest.raises(InsufficientScope):
        fresh = key.proof("GET", API, access_token=token)
        verifier.verify(token, dpop_proof=fresh, method="GET", url=API, scopes=["admin"])


def test_an_unbound_token_with_a_proof_is_refused(rsa: Signer, verifier: TokenVerifier) -> None:
    token = rsa.token(good_claims(now=time.time()))
    assert verifier.verify(token).subject == "client-1"
    proof = DpopKey().proof("GET", API, access_token=token)
    with pytest.raises(InvalidDpopToken):
        verifier.verify(token, dpop_proof=proof, method="GET", url=API)


def test_the_replay_cache_is_bounded_and_forgets_expired_proofs() -> None:
    cache = ReplayCache(capacity=2)
    proof = lambda jti: DpopProof(jkt="k", jti=jti, issued_at=100.0, nonce=None)  # noqa: E731
    cache.accept(proof("a"), 200.0, 100.0)
    cache.accept(proof("b"), 300.0, 100.0)
    with pytest.raises(InvalidDpopProof, match="already"):
        cache.accept(proof("a"), 200.0, 150.0)
    with pytest.raises(InvalidDpopProof, match="too many"):
        cache.accept(proof("c"), 300.0, 150.0)
    cache.accept(proof("c"), 300.0, 200.0)  # "a" expired and made room
    assert len(cache) == 2
    cache.accept(proof("a"), 400.0, 300.0)  # expired proofs are not remembered
    with pytest.raises(ValueError):
        ReplayCache(capacity=0)


def api_app(verifier: TokenVerifier) -> Starlette:
    @requires_token(verifier, scopes=["read"], realm="api", base_url="https://api.example.com")
    async def things(request: Request) -> Response:
        return JSONResponse({"sub": request.state.access_token.subject})

    async def whoami(request: Request) -> Response:
        return JSONResponse({"client_id": request.state.access_token.client_id})

    protected = Starlette(
        routes=[Route("/whoami", whoami)],
        middleware=[Middleware(BearerAuthMiddleware, verifier=verifier, realm="api")],
    )
    return Starlette(routes=[Route("/things", things), Mount("/mw", app=protected)])


def test_starlette_checks_dpop_from_the_request(rsa: Signer, verifier: TokenVerifier) -> None:
    key = DpopKey()
    token = bound_token(rsa, key)
    with serving(api_app(verifier)) as url:
        proof = key.proof("GET", API, access_token=token)
        ok = httpx.get(f"{url}/things", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
        assert ok.status_code == 200, ok.text
        replay = httpx.get(
            f"{url}/things", headers={"Authorization": f"DPoP {token}", "DPoP": proof}
        )
        assert replay.status_code == 401
        challenge = replay.headers["www-authenticate"]
        assert challenge.startswith('DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"')
        assert 'error="invalid_dpop_proof"' in challenge

        as_bearer = httpx.get(f"{url}/things", headers={"Authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401
        assert 'error="invalid_token"' in as_bearer.headers["www-authenticate"]
        assert as_bearer.headers["www-authenticate"].startswith("DPoP ")

        no_proof = httpx.get(f"{url}/things", headers={"Authorization": f"DPoP {token}"})
        assert no_proof.status_code == 401
        assert 'error="invalid_dpop_proof"' in no_proof.headers["www-authenticate"]

        # The middleware takes the request's own URL.
        own = key.proof("GET", f"{url}/mw/whoami", access_token=token)
        mw = httpx.get(f"{url}/mw/whoami", headers={"Authorization": f"DPoP {token}", "DPoP": own})
        assert mw.status_code == 200, mw.text
        wrong = key.proof("GET", f"{url}/mw/other", access_token=token)
        refused = httpx.get(
            f"{url}/mw/whoami", headers={"Authorization": f"DPoP {token}", "DPoP": wrong}
        )
        assert refused.status_code == 401


def test_a_bound_token_of_the_idp_verifies_with_its_proof(live_server: LiveServer) -> None:
    client_id, secret = register_client(
        live_server.settings, "caller", scope="read", audiences=[AUDIENCE]
    )
    key = DpopKey("EdDSA")
    issued = httpx.post(
        f"{live_server.url}/token",
        data={"grant_type": "client_credentials"},
        headers={**basic(client_id, secret), "DPoP": key.proof("POST", f"{live_server.url}/token")},
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    verifier = TokenVerifier(live_server.url, AUDIENCE)
    proof = key.proof("GET", API, access_token=token)
    verified = verifier.verify(token, dpop_proof=proof, method="GET", url=API)
    assert verified.client_id == client_id
    with pytest.raises(InvalidDpopToken):
        verifier.verify(token)


def test_a_resource_server_can_require_its_own_nonces(rsa: Signer) -> None:
    """RFC 9449 section 9: with dpop_nonces, a proof without the current nonce gets
    use_dpop_nonce and the nonce to use, in the error and, over HTTP, a DPoP-Nonce header;
    a nonce is good for its slot and the next one."""
    now = [1_800_000_000.0]
    nonces = DpopNonces(b"shared by every replica of the API", lifetime=60)
    key = DpopKey()
    with jwks_server([rsa.jwk()]) as keys:
        verifier = TokenVerifier(
            ISSUER, AUDIENCE, jwks_uri=keys.jwks_uri, dpop_nonces=nonces, clock=lambda: now[0]
        )
        token = rsa.token(good_claims(now=now[0], cnf={"jkt": key.jkt}))
        with pytest.raises(UseDpopNonce) as missing:
            proof = key.proof("GET", API, access_token=token, iat=now[0])
            verifier.verify(token, dpop_proof=proof, method="GET", url=API)
        nonce = missing.value.nonce
        assert nonce == nonces.current(now[0])
        with_nonce = key.proof("GET", API, access_token=token, iat=now[0], nonce=nonce)
        assert verifier.verify(token, dpop_proof=with_nonce, method="GET", url=API)
        now[0] += 61  # the next slot: the nonce is still good
        later = key.proof("GET", API, access_token=token, iat=now[0], nonce=nonce)
        assert verifier.verify(token, dpop_proof=later, method="GET", url=API)
        now[0] += 60  # two slots on: stale
        stale = key.proof("GET", API, access_token=token, iat=now[0], nonce=nonce)
        with pytest.raises(UseDpopNonce, match="stale") as refused:
            verifier.verify(token, dpop_proof=stale, method="GET", url=API)
        assert refused.value.nonce == nonces.current(now[0]) != nonce
        assert not DpopNonces(b"another secret", lifetime=60).accepts(refused.value.nonce, now[0])

        with serving(api_app(verifier)) as url:
            bare = key.proof("GET", API, access_token=token, iat=now[0])
            answer = httpx.get(
                f"{url}/things", headers={"Authorization": f"DPoP {token}", "DPoP": bare}
            )
            assert answer.status_code == 401
            assert 'error="use_dpop_nonce"' in answer.headers["www-authenticate"]
            fresh = answer.headers["dpop-nonce"]
            retry = key.proof("GET", API, access_token=token, iat=now[0], nonce=fresh)
            ok = httpx.get(
                f"{url}/things", headers={"Authorization": f"DPoP {token}", "DPoP": retry}
            )
            assert ok.status_code == 200, ok.text
