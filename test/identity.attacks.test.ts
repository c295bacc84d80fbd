/**
 * Security review: attacks on the passkey identity provider. Each test tries an attack and asserts
 * the refusal the gateway owes; a failing test is a defect.
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
import { type ControlPlaneResponse, controlPlaneClient } from "./helpers/controlPlaneClient.js";

let h: ControlPlaneHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const { post, send } = controlPlaneClient(() => h!.port);

const newKey = () => createSoftAuthenticator({ rpId: "localhost", origin: h!.origin });

async function enrollAdmin(key: SoftAuthenticator): Promise<{ cookie: string; id: string }> {
  const options = await post("/auth/webauthn/register/options", { invite: h!.adminInvite() });
  expect(options.status, options.text).toBe(200);
  const verify = await post("/auth/webauthn/register/verify", {
    response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
  });
  expect(verify.status, verify.text).toBe(200);
  expect(verify.cookie).toBeDefined();
  return { cookie: verify.cookie!, id: verify.json.credentialId };
}

async function addKey(cookie: string, key: SoftAuthenticator): Promise<string> {
  const options = await post("/auth/webauthn/register/options", {}, cookie);
  expect(options.status, options.text).toBe(200);
  const verify = await post(
    "/auth/webauthn/register/verify",
    { response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON) },
    cookie,
  );
  expect(verify.status, verify.text).toBe(200);
  return verify.json.credentialId;
}

async function signIn(key: SoftAuthenticator, username?: string): Promise<ControlPlaneResponse> {
  const options = await post("/auth/webauthn/login/options", username ? { username } : {});
  expect(options.status, options.text).toBe(200);
  const res = await post("/auth/webauthn/login/verify", {
    response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
  });
  expect(res.status, res.text).toBe(200);
  return res;
}

describe("review: a registration started on a session finishes only while that session is good", () => {
  it("refuses to register a key after the session that asked for the options was signed out", async () => {
    h = await startControlPlane();
    const owner = await enrollAdmin(newKey());
    // The attacker, holding the admin's session (stolen cookie), asks for registration options...
    const options = await post("/auth/webauthn/register/options", {}, owner.cookie);
    expect(options.status, options.text).toBe(200);
    // ... the session is then signed out (or revoked by an administrator) ...
    const out = await post("/auth/logout", {}, owner.cookie);
    expect(out.status).toBe(200);
    expect((await send("GET", "/api/me", owner.cookie)).status).toBe(401);
    // ... yet the attacker's key still registers on the account, without any session.
    const attackerKey = newKey();
    const verify = await post("/auth/webauthn/register/verify", {
      response: attackerKey.register(options.json as PublicKeyCredentialCreationOptionsJSON),
      nickname: "backdoor",
    });
    expect(verify.status, `registered after sign-out: ${verify.text}`).toBeGreaterThanOrEqual(400);
    expect(h.identity.store.listCredentials(h.identity.store.getUserByName("admin")!.id)).toHaveLength(1);
  });

  it("refuses to register a key once the key that opened the session was removed (stolen-key clean-up)", async () => {
    h = await startControlPlane();
    const ownerKey = newKey();
    const owner = await enrollAdmin(ownerKey);
    const stolenKey = newKey();
    const stolenId = await addKey(owner.cookie, stolenKey);
    // The thief signs in with the stolen key and starts adding a key of their own.
    const thief = await signIn(stolenKey, "admin");
    const pending = await post("/auth/webauthn/register/options", {}, thief.cookie);
    expect(pending.status, pending.text).toBe(200);
    // The owner notices and removes the stolen key: the thief's session is revoked.
    const options = await post(
      `/api/me/keys/${encodeURIComponent(stolenId)}/remove/options`,
      {},
      owner.cookie,
    );
    expect(options.status, options.text).toBe(200);
    const removed = await send("DELETE", `/api/me/keys/${encodeURIComponent(stolenId)}`, owner.cookie, {
      response: ownerKey.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
    });
    expect(removed.status, removed.text).toBe(200);
    expect((await send("GET", "/api/me", thief.cookie)).status).toBe(401);
    // Within the 5-minute challenge window the thief completes the registration anyway.
    const backdoor = newKey();
    const verify = await post("/auth/webauthn/register/verify", {
      response: backdoor.register(pending.json as PublicKeyCredentialCreationOptionsJSON),
    });
    expect(verify.status, `persistence after revocation: ${verify.text}`).toBeGreaterThanOrEqual(400);
  });
});

describe("review: a revoked session stays revoked for the data plane until its tokens expire", () => {
  it("a token of a revoked session is not accepted again once the session row expires and is purged", async () => {
    h = await startControlPlane();
    const key = newKey();
    await enrollAdmin(key);
    const { identity } = h;

    // Near the end of the 12 h session the CLI refreshes: a 10-minute token outliving the session.
    const first = await signIn(key, "admin");
    h.advance(12 * 3_600_000 - 2 * 60_000);
    const refreshed = await post("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: first.json.refresh_token,
      client_id: "cosmosgate-cli",
    });
    expect(refreshed.status, refreshed.text).toBe(200);
    const token: string = refreshed.json.access_token;
    const claims = decodeJwt(token);

    // The data plane's verifier and revocation check, built exactly as gateway.ts builds them.
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
    const dataPlaneAccepts = async () => {
      const p = await verifier.verify(token);
      return identity.revocation.revokedBy(p) === undefined;
    };
    expect(await dataPlaneAccepts()).toBe(true);

    // The user signs out of the CLI: RFC 7009 revocation of the session.
    const revoked = await post("/oauth/revoke", {
      token: refreshed.json.refresh_token,
      client_id: "cosmosgate-cli",
    });
    expect(revoked.status).toBe(200);
    expect(await dataPlaneAccepts()).toBe(false);

    // Just after the session's maximum age — its token is capped at that instant but still inside
    // the verifier's 30 s clock skew — someone signs in (which purges expired sessions) and some
    // other revocation bumps the epoch.
    const session = identity.store.getSession(String(claims.sid))!;
    h.advance(session.expiresAt + 10_000 - h.now());
    const other = await signIn(key, "admin");
    await post("/auth/logout", {}, other.cookie);

    // Without the revocation, the data plane would still accept this token (within the skew).
    await expect(verifier.verify(token)).resolves.toMatchObject({ session: String(claims.sid) });
    expect(await dataPlaneAccepts(), "a token of a revoked session is accepted again").toBe(false);
  });

  it("an access token never outlives its session's maximum age", async () => {
    h = await startControlPlane();
    const key = newKey();
    await enrollAdmin(key);
    const first = await signIn(key, "admin");
    const session = h.identity.store.getSession(String(decodeJwt(first.json.access_token).sid))!;
    h.advance(12 * 3_600_000 - 60_000);
    const refreshed = await post("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: first.json.refresh_token,
      client_id: "cosmosgate-cli",
    });
    expect(refreshed.status, refreshed.text).toBe(200);
    const exp = decodeJwt(refreshed.json.access_token).exp as number;
    expect(exp * 1000, "token exp is past the session's maxAge").toBeLessThanOrEqual(session.expiresAt);
  });
});

describe("review: a write made with a session cookie needs that session's CSRF token", () => {
  const noToken = { csrf: false } as const;

  it("refuses writes without the token (403 ERR_CSRF) and changes nothing", async () => {
    h = await startControlPlane();
    const key = newKey();
    const owner = await enrollAdmin(key);
    const spare = await addKey(owner.cookie, newKey());
    const userId = h.identity.store.getUserByName("admin")!.id;
    const path = `/api/me/keys/${encodeURIComponent(spare)}`;

    const rename = await send("PATCH", path, owner.cookie, { nickname: "renamed by a forged page" }, noToken);
    expect(rename.status, rename.text).toBe(403);
    expect(rename.json).toMatchObject({ error: "ERR_CSRF", code: "ERR_CSRF" });
    expect(rename.json.message).toMatch(/reload the page/);
    expect(h.identity.store.getCredential(spare)!.nickname).not.toBe("renamed by a forged page");

    // Even a genuine tap does not carry a removal that lacks the token (and the tap is not spent).
    const options = await post(`${path}/remove/options`, {}, owner.cookie);
    expect(options.status, options.text).toBe(200);
    const response = key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON);
    const remove = await send("DELETE", path, owner.cookie, { response }, noToken);
    expect(remove.status, remove.text).toBe(403);
    expect(remove.json.error).toBe("ERR_CSRF");
    expect(h.identity.store.listCredentials(userId)).toHaveLength(2);
    expect((await post(`${path}/remove/options`, {}, owner.cookie, noToken)).status).toBe(403);

    const register = await post("/auth/webauthn/register/options", {}, owner.cookie, noToken);
    expect(register.status, register.text).toBe(403);
    expect(register.json.error).toBe("ERR_CSRF");

    const logout = await post("/auth/logout", {}, owner.cookie, noToken);
    expect(logout.status, logout.text).toBe(403);
    expect((await send("GET", "/api/me", owner.cookie)).status).toBe(200); // still signed in

    // With the token (as the page sends it), the same removal goes through.
    const removed = await send("DELETE", path, owner.cookie, { response });
    expect(removed.status, removed.text).toBe(200);
    expect(h.identity.store.listCredentials(userId)).toHaveLength(1);
  });

  it("refuses another session's token, a forged one, and one sent twice", async () => {
    h = await startControlPlane();
    const key = newKey();
    const owner = await enrollAdmin(key);
    const other = await signIn(key, "admin"); // a second session of the same person
    const otherToken = (await send("GET", "/api/me", other.cookie)).json.csrfToken as string;
    const ownToken = (await send("GET", "/api/me", owner.cookie)).json.csrfToken as string;
    expect(otherToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(otherToken).not.toBe(ownToken);
    const id = h.identity.store.listCredentials(h.identity.store.getUserByName("admin")!.id)[0]!.id;
    const path = `/api/me/keys/${encodeURIComponent(id)}`;
    for (const csrf of [
      otherToken,
      `${ownToken.slice(0, -1)}A`,
      ownToken.slice(1),
      "",
      `${ownToken},${ownToken}`,
    ]) {
      const res = await send("PATCH", path, owner.cookie, { nickname: "forged" }, { csrf });
      expect(res.status, `token ${JSON.stringify(csrf)}: ${res.text}`).toBe(403);
      expect(res.json.error).toBe("ERR_CSRF");
    }
    expect(h.identity.store.getCredential(id)!.nickname).not.toBe("forged");
    const ok = await send("PATCH", path, owner.cookie, { nickname: "mine" }, { csrf: ownToken });
    expect(ok.status, ok.text).toBe(200);
  });

  it("GET never needs it; sign-in, and enrollment or a write without a live session, are not asked for it", async () => {
    h = await startControlPlane();
    const key = newKey();
    const owner = await enrollAdmin(key);
    for (const path of ["/api/me", "/api/me/keys", "/keys"]) {
      expect((await send("GET", path, owner.cookie)).status, path).not.toBe(403);
    }
    // Signing in again from a browser that still has a session cookie.
    const options = await post("/auth/webauthn/login/options", { username: "admin" }, owner.cookie, noToken);
    expect(options.status, options.text).toBe(200);
    const verify = await post(
      "/auth/webauthn/login/verify",
      { response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON) },
      owner.cookie,
      noToken,
    );
    expect(verify.status, verify.text).toBe(200);
    // A cookie of a session that is over carries no authority: the route treats it as signed out.
    await post("/auth/logout", {}, owner.cookie);
    const stale = await post("/auth/webauthn/register/options", {}, owner.cookie, noToken);
    expect(stale.status, stale.text).toBe(401);
    expect(stale.json.error).toBe("ERR_NOT_SIGNED_IN");
  });
});
