// openid-client 6's dynamicClientRegistration (RFC 7591), one step per run, for
// tests/interop/test_openid_client_registration.py.
// Input: one JSON object on stdin; output: one JSON object on stdout.
//   {"step": "machine", issuer, initial_access_token, client_name}
//     -> {client_id, access_token, expires_in}: a client_secret_post client registered with
//        the initial access token, then a client_credentials grant with the configuration
//        the registration returned
//   {"step": "native", issuer, redirect_uri, scope}
//     -> {client_id, url, code_verifier, state, nonce}: a public client registered without a
//        token (open registration), and its /authorize URL
//   {"step": "redeem", issuer, client_id, callback_url, code_verifier, state, nonce}
//     -> {access_token, claims}: the code redeemed by the registered client, ID token checked
import * as client from 'openid-client';

const insecure = { execute: [client.allowInsecureRequests] };

async function readInput() {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

async function machine(input) {
  const config = await client.dynamicClientRegistration(
    new URL(input.issuer),
    {
      client_name: input.client_name,
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
    },
    undefined,
    { ...insecure, initialAccessToken: input.initial_access_token },
  );
  const tokens = await client.clientCredentialsGrant(config);
  return {
    client_id: config.clientMetadata().client_id,
    access_token: tokens.access_token,
    expires_in: tokens.expires_in,
  };
}

async function native(input) {
  const config = await client.dynamicClientRegistration(
    new URL(input.issuer),
    {
      client_name: 'Interop desktop app',
      redirect_uris: [input.redirect_uri],
      token_endpoint_auth_method: 'none',
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
    },
    client.None(),
    insecure,
  );
  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: input.redirect_uri,
    scope: input.scope,
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { client_id: config.clientMetadata().client_id, url: url.href, code_verifier, state, nonce };
}

async function redeem(input) {
  const config = await client.discovery(
    new URL(input.issuer), input.client_id, undefined, client.None(), insecure,
  );
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.code_verifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  });
  return { access_token: tokens.access_token, claims: tokens.claims() };
}

const input = await readInput();
const steps = { machine, native, redeem };
try {
  process.stdout.write(JSON.stringify(await steps[input.step](input)));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error), code: error.code, cause: String(error.cause ?? '') }));
  process.exitCode = 1;
}
