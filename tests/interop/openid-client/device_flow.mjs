// openid-client 6 as a device (RFC 8628), one step per run, for
// tests/interop/test_openid_client_device.py. Input: one JSON object on stdin; output: one
// JSON object on stdout.
//   {"step": "initiate", issuer, client_id, scope}
//     -> the device authorization response, as initiateDeviceAuthorization returns it
//   {"step": "poll", issuer, client_id, response}
//     -> {access_token, id_token, refresh_token, claims}: pollDeviceAuthorizationGrant on
//        `response` (it waits `interval` between polls), ID token checked by the library
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

async function initiate(input) {
  const config = await configuration(input);
  return await client.initiateDeviceAuthorization(config, { scope: input.scope });
}

async function poll(input) {
  const config = await configuration(input);
  const tokens = await client.pollDeviceAuthorizationGrant(config, input.response, undefined, {
    signal: AbortSignal.timeout(90_000),
  });
  return {
    access_token: tokens.access_token,
    id_token: tokens.id_token,
    refresh_token: tokens.refresh_token,
    claims: tokens.claims(),
  };
}

const input = await readInput();
const steps = { initiate, poll };
try {
  process.stdout.write(JSON.stringify(await steps[input.step](input)));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error), code: error.code, cause: String(error.cause ?? '') }));
  process.exitCode = 1;
}
