// An OAuth 2.0 client built only from npm's oauth4webapi (independent of
// tessera): discovery (RFC 8414), the refresh grant (RFC 6749 §6),
// introspection (RFC 7662) and revocation (RFC 7009) against a tessera
// authority, for tests/integration/test_http.py's TestOAuthClients.
//
// node oauth_client.mjs ISSUER   (REFRESH_TOKEN and API_KEY in the environment)
// Prints one JSON object of what each step saw. Never a token.
import * as oauth from "oauth4webapi";

const issuer = new URL(process.argv[2]);
const insecure = { [oauth.allowInsecureRequests]: true };  // loopback http in the tests
const client = { client_id: "tessera-interop" };
const auth = oauth.None();
const out = {};

const as = await oauth
  .discoveryRequest(issuer, { ...insecure, algorithm: "oauth2" })
  .then((r) => oauth.processDiscoveryResponse(issuer, r));
out.issuer = as.issuer;
out.token_endpoint = as.token_endpoint;

let r = await oauth.refreshTokenGrantRequest(as, client, auth, process.env.REFRESH_TOKEN, insecure);
const tokens = await oauth.processRefreshTokenResponse(as, client, r);
out.refreshed = {
  token_type: tokens.token_type,
  expires_in: tokens.expires_in,
  access_token: typeof tokens.access_token === "string" && tokens.access_token.length > 0,
  rotated: typeof tokens.refresh_token === "string" && tokens.refresh_token !== process.env.REFRESH_TOKEN,
};

// Introspection needs the service's API key: as an OAuth client secret.
r = await oauth.introspectionRequest(
  as, client, oauth.ClientSecretBasic(process.env.API_KEY), tokens.access_token, insecure);
const intro = await oauth.processIntrospectionResponse(as, client, r);
out.introspection = { active: intro.active, sub: intro.sub, token_type: intro.token_type };

r = await oauth.revocationRequest(as, client, auth, tokens.refresh_token, insecure);
await oauth.processRevocationResponse(r);
out.revoked = true;

try {
  r = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure);
  await oauth.processRefreshTokenResponse(as, client, r);
  out.after_revocation = "accepted";
} catch (e) {
  out.after_revocation = e instanceof oauth.ResponseBodyError ? e.error : String(e.name);
  out.after_revocation_status = e.status;
}
console.log(JSON.stringify(out));
