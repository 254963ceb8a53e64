"""Protected Resource Metadata (RFC 9728) in the verifier library: the document and its URL,
the Starlette route and middleware over real HTTP, ``resource_metadata`` in challenges, and a
client's discovery walk from a 401 to a live IdP and back to the API with a token from there."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from idp.verify import ResourceMetadata, TokenVerifier
from idp.verify.dpop import DPOP_ALGS
from idp.verify.errors import InvalidDpopToken
from idp.verify.resource_metadata import metadata_path, metadata_url
from idp.verify.starlette import BearerAuthMiddleware, requires_token, resource_metadata_route
from tests.support.dpop import DpopKey
from tests.support.server import LiveServer, free_port, register_client
from tests.support.verify import AUDIENCE, ISSUER, Signer, good_claims, jwks_server, serving

NOTES = AUDIENCE + "/notes"
WELL_KNOWN = "/.well-known/oauth-protected-resource"


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        ("https://api.example", "https://api.example/.well-known/oauth-protected-resource"),
        ("https://api.example/", "https://api.example/.well-known/oauth-protected-resource"),
        (
            "https://api.example/notes",
            "https://api.example/.well-known/oauth-protected-resource/notes",
        ),
        (
            "https://api.example:8443/v1/notes/",
            "https://api.example:8443/.well-known/oauth-protected-resource/v1/notes/",
        ),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/.well-known/oauth-protected-resource"),
        ("http://api.localhost/x", "http://api.localhost/.well-known/oauth-protected-resource/x"),
    ],
)
def test_the_metadata_url_inserts_the_well_known_path_after_the_host(
    resource: str, url: str
) -> None:
    assert metadata_url(resource) == url
    assert metadata_path(resource) == url[url.index("/.well-known") :]


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "api.example/notes",
        "ftp://api.example",
        "http://api.example",  # plain http outside loopback
        "https://api.example/notes?v=1",
        "https://api.example/notes#top",
        "https://api.example/?",
        "https://user:pw@api.example",
        "https://api.example:notaport",
        "https:///notes",
    ],
)
def test_a_resource_that_is_not_an_https_url_is_refused(resource: str) -> None:
    with pytest.raises(ValueError):
        metadata_url(resource)
    with pytest.raises(ValueError):
        ResourceMetadata(resource, (ISSUER,))


def test_the_metadata_of_a_verifier_names_its_audience_and_issuer() -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE)
    metadata = ResourceMetadata.for_verifier(verifier)
    assert metadata.url == AUDIENCE + WELL_KNOWN
    assert metadata.document() == {
        "resource": AUDIENCE,
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "dpop_bound_access_tokens_required": False,
    }
    several = TokenVerifier(ISSUER, [AUDIENCE, NOTES])
    with pytest.raises(ValueError, match="name the resource"):
        ResourceMetadata.for_verifier(several)
    with pytest.raises(ValueError, match="not an audience"):
        ResourceMetadata.for_verifier(several, "https://other.example")
    assert ResourceMetadata.for_verifier(several, NOTES).resource == NOTES
    with pytest.raises(ValueError, match="authorization server"):
        ResourceMetadata(AUDIENCE, ())


@pytest.fixture(scope="module")
def rsa() -> Signer:
    return Signer.rsa("rsa-1")


def notes_api(verifier: TokenVerifier, metadata: ResourceMetadata) -> Starlette:
    """The decorator on /notes with the metadata route; the middleware (which serves the
    metadata itself) on a second app."""

    @requires_token(verifier, scopes=["read"], realm="notes", resource_metadata=metadata)
    async def notes(request: Request) -> Response:
        return JSONResponse({"sub": request.state.access_token.subject})

    return Starlette(routes=[Route("/notes", notes), resource_metadata_route(metadata)])


def guarded_app(verifier: TokenVerifier, metadata: ResourceMetadata) -> Starlette:
    """A whole app behind the middleware, which answers the metadata path itself."""

    async def whoami(request: Request) -> Response:
        return JSONResponse({"client_id": request.state.access_token.client_id})

    return Starlette(
        routes=[Route("/whoami", whoami), Mount("/sub", routes=[Route("/whoami", whoami)])],
        middleware=[
            Middleware(
                BearerAuthMiddleware,
                verifier=verifier,
                realm="api",
                resource_metadata=metadata,
            )
        ],
    )


@pytest.fixture
def keys(rsa: Signer) -> Iterator[str]:
    with jwks_server([rsa.jwk()]) as server:
        yield server.jwks_uri


def test_the_document_of_a_resource_with_a_path(keys: str) -> None:
    verifier = TokenVerifier(ISSUER, [AUDIENCE, NOTES], jwks_uri=keys)
    metadata = ResourceMetadata.for_verifier(
        verifier,
        NOTES,
        scopes_supported=["read", "write"],
        resource_name="Notes",
        resource_documentation="https://docs.example.com/notes",
    )
    with serving(notes_api(verifier, metadata)) as url:
        assert httpx.get(url + WELL_KNOWN).status_code == 404  # the path belongs to the resource
        answer = httpx.get(url + WELL_KNOWN + "/notes")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["cache-control"] == "public, max-age=3600"
        assert answer.headers["access-control-allow-origin"] == "*"
        assert answer.json() == {
            "resource": NOTES,
            "authorization_servers": [ISSUER],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["read", "write"],
            "resource_name": "Notes",
            "resource_documentation": "https://docs.example.com/notes",
            "dpop_signing_alg_values_supported": list(DPOP_ALGS),
            "dpop_bound_access_tokens_required": False,
        }
        assert httpx.head(url + WELL_KNOWN + "/notes").status_code == 200
        assert httpx.post(url + WELL_KNOWN + "/notes").status_code == 405


def test_the_middleware_serves_the_document_without_a_token(keys: str, rsa: Signer) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_uri=keys)
    metadata = ResourceMetadata.for_verifier(verifier)
    with serving(guarded_app(verifier, metadata)) as url:
        answer = httpx.get(url + WELL_KNOWN)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["cache-control"] == "public, max-age=3600"
        assert answer.json()["resource"] == AUDIENCE
        assert answer.json()["authorization_servers"] == [ISSUER]
        # Only that path, only to read: everything else still needs a token.
        assert httpx.get(url + WELL_KNOWN + "/other").status_code == 401
        assert httpx.post(url + WELL_KNOWN).status_code == 401
        assert httpx.get(url + "/whoami").status_code == 401
        token = rsa.token(good_claims(now=time.time()))
        ok = httpx.get(url + "/sub/whoami", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text


def test_every_challenge_names_the_metadata(keys: str, rsa: Signer) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_uri=keys)
    metadata = ResourceMetadata.for_verifier(verifier)
    named = f'resource_metadata="{AUDIENCE}{WELL_KNOWN}"'
    expired = rsa.token(good_claims(now=time.time() - 3600))
    narrow = rsa.token(good_claims(now=time.time(), scope="write"))
    with (
        serving(notes_api(verifier, metadata)) as decorated,
        serving(guarded_app(verifier, metadata)) as guarded,
    ):
        for resource, realm in ((decorated + "/notes", "notes"), (guarded + "/whoami", "api")):
            bare = httpx.get(resource)
            assert bare.status_code == 401
            assert bare.headers["www-authenticate"] == f'Bearer realm="{realm}", {named}'
            refused = httpx.get(resource, headers={"Authorization": f"Bearer {expired}"})
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == (
                f'Bearer realm="{realm}", error="invalid_token", '
                f'error_description="the token has expired", {named}'
            )
            malformed = httpx.get(resource, headers={"Authorization": "Bearer a b"})
            assert malformed.status_code == 400
            assert malformed.headers["www-authenticate"].endswith(named)
        scant = httpx.get(decorated + "/notes", headers={"Authorization": f"Bearer {narrow}"})
        assert scant.status_code == 403
        assert scant.headers["www-authenticate"].endswith(f'scope="read", {named}')


def test_dpop_challenges_name_the_metadata_too(keys: str, rsa: Signer) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_uri=keys)
    metadata = ResourceMetadata.for_verifier(verifier)
    named = f'resource_metadata="{AUDIENCE}{WELL_KNOWN}"'
    key = DpopKey()
    token = rsa.token(good_claims(now=time.time(), cnf={"jkt": key.jkt}))
    with serving(notes_api(verifier, metadata)) as url:
        wrong_url = key.proof("GET", url + "/elsewhere", access_token=token)
        refused = httpx.get(
            url + "/notes", headers={"Authorization": f"DPoP {token}", "DPoP": wrong_url}
        )
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith(f'DPoP realm="notes", algs="{" ".join(DPOP_ALGS)}"')
        assert 'error="invalid_dpop_proof"' in challenge
        assert challenge.endswith(named)
        as_bearer = httpx.get(url + "/notes", headers={"Authorization": f"Bearer {token}"})
        assert as_bearer.headers["www-authenticate"].startswith("DPoP ")
        assert as_bearer.headers["www-authenticate"].endswith(named)
        proof = key.proof("GET", url + "/notes", access_token=token)
        ok = httpx.get(url + "/notes", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
        assert ok.status_code == 200, ok.text


def test_a_resource_that_requires_dpop_says_so(keys: str, rsa: Signer) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks_uri=keys, require_dpop=True)
    metadata = ResourceMetadata.for_verifier(verifier)
    named = f'resource_metadata="{AUDIENCE}{WELL_KNOWN}"'
    key = DpopKey("EdDSA")
    with serving(notes_api(verifier, metadata)) as url:
        document = httpx.get(url + WELL_KNOWN).json()
        assert document["dpop_bound_access_tokens_required"] is True
        assert document["dpop_signing_alg_values_supported"] == list(DPOP_ALGS)
        bare = httpx.get(url + "/notes")
        assert bare.status_code == 401
        assert bare.headers["www-authenticate"] == (
            f'DPoP realm="notes", algs="{" ".join(DPOP_ALGS)}", {named}'
        )
        unbound = rsa.token(good_claims(now=time.time()))
        with pytest.raises(InvalidDpopToken, match="only DPoP-bound"):
            verifier.verify(unbound)
        refused = httpx.get(url + "/notes", headers={"Authorization": f"Bearer {unbound}"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("DPoP ")
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        bound = rsa.token(good_claims(now=time.time(), cnf={"jkt": key.jkt}))
        proof = key.proof("GET", url + "/notes", access_token=bound)
        ok = httpx.get(url + "/notes", headers={"Authorization": f"DPoP {bound}", "DPoP": proof})
        assert ok.status_code == 200, ok.text


def walk_to_a_token(api: str, client_id: str, secret: str, key: DpopKey) -> tuple[str, str]:
    """What a client that knows only the API does (RFC 9728 sections 5.1, 3.3 and 7.6): call
    it, follow the challenge's resource_metadata, check the document, discover the first
    authorization server (OpenID Connect Discovery 1.0) and get a token for the resource,
    DPoP-bound to ``key`` when the document asks for that. Returns the token's scheme and it."""
    refused = httpx.get(api, timeout=10)
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    marker = 'resource_metadata="'
    assert marker in challenge, challenge
    url = challenge[challenge.index(marker) + len(marker) :].split('"', 1)[0]
    document = httpx.get(url, timeout=10).json()
    # Section 3.3: the document is for the resource the URL was built from.
    assert metadata_url(document["resource"]) == url
    assert api.startswith(document["resource"])
    issuer = document["authorization_servers"][0]
    discovery = httpx.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == issuer  # RFC 8414 section 3.3
    token_endpoint = discovery["token_endpoint"]
    bound = document["dpop_bound_access_tokens_required"]
    assert key.alg in document["dpop_signing_alg_values_supported"]
    issued = httpx.post(
        token_endpoint,
        data={"grant_type": "client_credentials", "resource": document["resource"]},
        headers={"DPoP": key.proof("POST", token_endpoint)} if bound else {},
        auth=(client_id, secret),
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == ("DPoP" if bound else "Bearer")
    return ("DPoP" if bound else "Bearer"), issued.json()["access_token"]


@pytest.mark.parametrize("require_dpop", [False, True], ids=["bearer", "dpop"])
def test_a_client_finds_the_idp_from_a_401_and_its_token_opens_the_api(
    live_server: LiveServer, require_dpop: bool
) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/notes"
    verifier = TokenVerifier(live_server.url, resource, require_dpop=require_dpop)
    metadata = ResourceMetadata.for_verifier(verifier, scopes_supported=["read"])
    client_id, secret = register_client(
        live_server.settings,
        name=f"caller-{secrets.token_hex(4)}",
        scope="read",
        # The resource asked for is not the first audience: without it the token would not fit.
        audiences=["https://other.example.com", resource],
    )
    key = DpopKey()
    with serving(notes_api(verifier, metadata), port=port) as url:
        assert url + "/notes" == resource
        scheme, token = walk_to_a_token(resource, client_id, secret, key)
        headers = {"Authorization": f"{scheme} {token}"}
        if scheme == "DPoP":
            headers["DPoP"] = key.proof("GET", resource, access_token=token)
        answer = httpx.get(resource, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"sub": client_id}
