// openid-client (panva) against the IdP: discovery, a DPoP-bound client_credentials token
// (answering the server's use_dpop_nonce on its own), and the token used at the
// introspection endpoint. Prints one JSON line for the Python test to check.
import * as client from 'openid-client';

const [issuer, clientId, clientSecret] = process.argv.slice(2);
const auth = client.ClientSecretBasic(clientSecret);
const config = await client.discovery(new URL(issuer), clientId, undefined, auth, {
  execute: [client.allowInsecureRequests],
});
const keyPair = await client.randomDPoPKeyPair('ES256');
const DPoP = client.getDPoPHandle(config, keyPair);
const tokens = await client.clientCredentialsGrant(config, { scope: 'read' }, { DPoP });
const second = await client.clientCredentialsGrant(config, { scope: 'read' }, { DPoP });
const introspected = await client.tokenIntrospection(config, tokens.access_token);
console.log(JSON.stringify({
  token_type: tokens.token_type,
  access_token: tokens.access_token,
  second_token_type: second.token_type,
  cnf: introspected.cnf,
}));
