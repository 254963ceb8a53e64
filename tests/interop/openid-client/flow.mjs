// openid-client 6 as a relying party, one step per run, for tests/interop/test_openid_client.py.
// Input: one JSON object on stdin; output: one JSON object on stdout.
//   {"step": "par", issuer, client_id, redirect_uri, scope}
//     -> {url, code_verifier, state, nonce}: the /authorize URL after a pushed request
//   {"step": "jar", issuer, client_id, redirect_uri, scope, jwk, kid}
//     -> the same, for a request object signed with the private ES256 `jwk` (RFC 9101)
//   {"step": "redeem", issuer, client_id, callback_url, code_verifier, state, nonce}
//     -> {access_token, id_token, claims}: the code redeemed, ID token checked by the library
//   {"step": "exchange", issuer, client_id, client_secret, parameters, dpop}
//     -> {response, introspection}: a token exchange (RFC 8693) through genericGrantRequest,
//        with `parameters` as the form (subject_token, subject_token_type, actor_token, ...),
//        DPoP-bound when `dpop`; the issued token then introspected by the same client
import * as client from 'openid-client';

async function readInput() {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

async function configuration(input) {
  return client.discovery(new URL(input.issuer), input.client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });
}

async function par(input) {
  const config = await configuration(input);
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: input.redirect_uri,
    scope: input.scope,
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url: url.href, code_verifier, state, nonce };
}

async function jar(input) {
  const config = await configuration(input);
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const key = await crypto.subtle.importKey(
    'jwk', input.jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'],
  );
  const url = await client.buildAuthorizationUrlWithJAR(
    config,
    {
      redirect_uri: input.redirect_uri,
      scope: input.scope,
      code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    },
    { key, kid: input.kid },
  );
  return { url: url.href, code_verifier, state, nonce };
}

async function redeem(input) {
  const config = await configuration(input);
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.code_verifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  });
  return { access_token: tokens.access_token, id_token: tokens.id_token, claims: tokens.claims() };
}

async function exchange(input) {
  const config = await client.discovery(
    new URL(input.issuer),
    input.client_id,
    undefined,
    client.ClientSecretBasic(input.client_secret),
    { execute: [client.allowInsecureRequests] },
  );
  const options = input.dpop
    ? { DPoP: client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')) }
    : undefined;
  const response = await client.genericGrantRequest(
    config,
    'urn:ietf:params:oauth:grant-type:token-exchange',
    input.parameters,
    options,
  );
  const introspection = await client.tokenIntrospection(config, response.access_token);
  return { response, introspection };
}

const input = await readInput();
const steps = { par, jar, redeem, exchange };
try {
  process.stdout.write(JSON.stringify(await steps[input.step](input)));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error), code: error.code, cause: String(error.cause ?? '') }));
  process.exitCode = 1;
}
