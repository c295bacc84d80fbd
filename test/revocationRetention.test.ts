/**
 * A revoked session stays revoked for the data plane while any token it issued can still be
 * accepted — including the verifier's clock skew past `exp` — even after a sign-in purges expired
 * sessions. And tokens are capped at the session's maximum age.
 */
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { decodeJwt } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { ownIssuerConfig } from "../src/identity/tokens/ownIssuer.js";
import { createTokenVerifier } from "../src/identity/tokens/verify.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { type ControlPlaneHarness, startControlPlane } from "./helpers/browser.js";
import { controlPlaneClient } from "./helpers/controlPlaneClient.js";

let h: ControlPlaneHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const { post } = controlPlaneClient(() => h!.port);

async function signIn(key: SoftAuthenticator) {
  const options = await post("/auth/webauthn/login/options", { username: "admin" });
  const res = await post("/auth/webauthn/login/verify", {
    response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
  });
  expect(res.status).toBe(200);
  return res;
}

describe("a revoked session's tokens stay refused after its row would have been purged", () => {
  it("within the verifier's clock skew past the session's end, a sign-in's purge does not un-revoke", async () => {
    h = await startControlPlane();
    const key = createSoftAuthenticator({ rpId: "localhost", origin: h.origin });
    const options = await post("/auth/webauthn/register/options", { invite: h.adminInvite() });
    const enrolled = await post("/auth/webauthn/register/verify", {
      response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
    });
    expect(enrolled.status).toBe(200);
    const { identity } = h;

    const first = await signIn(key);
    const session = identity.store.getSession(String(decodeJwt(first.json.access_token).sid))!;
    h.advance(12 * 3_600_000 - 2 * 60_000);
    const refreshed = await post("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: first.json.refresh_token,
      client_id: "cosmosgate-cli",
    });
    expect(refreshed.status).toBe(200);
    const token: string = refreshed.json.access_token;
    const claims = decodeJwt(token);
    expect((claims.exp as number) * 1000).toBeLessThanOrEqual(session.expiresAt); // capped
    expect(refreshed.json.expires_in).toBe((claims.exp as number) - (claims.iat as number));

    const verifier = createTokenVerifier({
      issuers: [
        ownIssuerConfig({
          keyring: identity.keyring,
          issuer: identity.issuerUrl,
          audience: String(claims.aud),
        }),
      ],
      clock: h.now,
    });
    const dataPlaneAccepts = async () =>
      identity.revocation.revokedBy(await verifier.verify(token)) === undefined;
    expect(await dataPlaneAccepts()).toBe(true);
    await post("/oauth/revoke", { token: refreshed.json.refresh_token, client_id: "cosmosgate-cli" });
    expect(await dataPlaneAccepts()).toBe(false);

    // 10 s past the session's end: the token is still inside the verifier's 30 s skew.
    h.advance(session.expiresAt + 10_000 - h.now());
    const other = await signIn(key); // purges expired sessions
    await post("/auth/logout", {}, other.cookie); // bumps the revocation epoch
    expect(await dataPlaneAccepts(), "a token of a revoked session is accepted again").toBe(false);
    expect(identity.store.getSession(session.id)?.revokedAt).toBeDefined();
  });
});
