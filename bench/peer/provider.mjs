// The speed peer of bench/compare and bench/token_endpoint: oidc-provider (panva, OpenID
// Certified), one process, configured for the client_credentials grant with RFC 9068 JWT
// access tokens (ES256 or RS256), JWKS, discovery and token introspection (RFC 7662).
//   bench/peer/run [PORT]      (installs on first use, then serves on 127.0.0.1:PORT, default 39020)
// Clients (client_secret_basic, secret "peer-secret-0123456789abcdef"):
//   peer-es256, peer-rs256: JWT access tokens signed with ES256 / RS256;
//   peer-opaque: opaque access tokens, the only kind oidc-provider introspects (it answers
//   unsupported_token_type for its JWT access tokens).
// Resource (aud): https://api.example.test. Signing keys are generated at start (RSA 2048, P-256).
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const PORT = Number(process.argv[2] || process.env.PORT || 39020);
const ISSUER = `http://127.0.0.1:${PORT}`;
const SECRET = 'peer-secret-0123456789abcdef';
const RESOURCE = 'https://api.example.test';
const SCOPE = 'api:read api:write';

const jwk = (type, opts, alg, kid) => ({
  ...crypto.generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }), alg, kid, use: 'sig',
});
const jwks = {
  keys: [
    jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs256-active'),
    jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es256-active'),
  ],
};

const client = (id) => ({
  client_id: id,
  client_secret: SECRET,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPE,
});

const SIGNING = {
  'peer-rs256': { alg: 'RS256', kid: 'rs256-active' },
  'peer-es256': { alg: 'ES256', kid: 'es256-active' },
};

const resourceServer = (clientId) => {
  const info = { scope: SCOPE, audience: RESOURCE, accessTokenTTL: 600 };
  if (clientId === 'peer-opaque') return { ...info, accessTokenFormat: 'opaque' };
  return { ...info, accessTokenFormat: 'jwt', jwt: { sign: SIGNING[clientId] } };
};

const provider = new Provider(ISSUER, {
  clients: [client('peer-es256'), client('peer-rs256'), client('peer-opaque')],
  jwks,
  scopes: ['api:read', 'api:write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator, cl) => {
        if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return resourceServer(cl.clientId);
      },
    },
  },
});

const server = http.createServer(provider.callback());
server.keepAliveTimeout = 65000;
server.listen(PORT, '127.0.0.1', () => console.log(`oidc-provider listening on ${ISSUER}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
