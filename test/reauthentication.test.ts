/**
 * Adding a key needs a recent tap (the session's authTime within 5 minutes); removing one needs a
 * tap of its own instead, however old the session; and a key registration started by a session
 * finishes only on that same, still good, session.
 */
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { afterEach, describe, expect, it } from "vitest";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { PAGES_SCRIPT } from "../src/server/controlPlane/assets/pagesScript.js";
import { REAUTH_MAX_AGE_MS } from "../src/server/controlPlane/session.js";
import { type ControlPlaneHarness, startControlPlane } from "./helpers/browser.js";
import { type ControlPlaneResponse, controlPlaneClient } from "./helpers/controlPlaneClient.js";

let h: ControlPlaneHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const client = controlPlaneClient(() => h!.port);
/** Like the pages' script: every write carries a JSON body ({} when there is nothing to say). */
const send = (method: string, path: string, cookie?: string, json: unknown = {}) =>
  client.send(method, path, cookie, method === "GET" ? undefined : json);
const post = client.post;

const newKey = () => createSoftAuthenticator({ rpId: "localhost", origin: h!.origin });

async function enrollAdmin(key: SoftAuthenticator): Promise<string> {
  const options = await post("/auth/webauthn/register/options", { invite: h!.adminInvite() });
  expect(options.status, options.text).toBe(200);
  const verify = await post("/auth/webauthn/register/verify", {
    response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
  });
  expect(verify.status, verify.text).toBe(200);
  return verify.cookie!;
}

async function signIn(key: SoftAuthenticator): Promise<string> {
  const options = await post("/auth/webauthn/login/options", { username: "admin" });
  const res = await post("/auth/webauthn/login/verify", {
    response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
  });
  expect(res.status, res.text).toBe(200);
  return res.cookie!;
}

async function addKey(cookie: string, key: SoftAuthenticator): Promise<ControlPlaneResponse> {
  const options = await post("/auth/webauthn/register/options", {}, cookie);
  if (options.status !== 200) return options;
  return post(
    "/auth/webauthn/register/verify",
    { response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON) },
    cookie,
  );
}

const REAUTH = {
  error: "reauthentication_required",
  code: "reauthentication_required",
  message: "sign in again with your key to add another key",
};

describe("adding a key needs a recent tap; removing one needs a tap of its own", () => {
  it("is 5 minutes", () => {
    expect(REAUTH_MAX_AGE_MS).toBe(5 * 60_000);
  });

  it("refuses to start adding a key on a session whose tap is older than 5 minutes; signing in again allows it", async () => {
    h = await startControlPlane();
    const key = newKey();
    const cookie = await enrollAdmin(key);
    h.advance(REAUTH_MAX_AGE_MS + 1000);
    expect((await send("GET", "/api/me", cookie)).status).toBe(200); // still signed in
    const refused = await post("/auth/webauthn/register/options", {}, cookie);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.json).toEqual(REAUTH);

    const fresh = await signIn(key);
    const added = await addKey(fresh, newKey());
    expect(added.status, added.text).toBe(200);
  });

  it("removes a key on a session older than 5 minutes when the removal itself is tapped, and never without", async () => {
    h = await startControlPlane();
    const key = newKey();
    const cookie = await enrollAdmin(key);
    const added = await addKey(cookie, newKey()); // right after enrollment: allowed
    expect(added.status, added.text).toBe(200);
    const id = encodeURIComponent(added.json.credentialId);
    const userId = h.identity.store.getUserByName("admin")!.id;
    h.advance(REAUTH_MAX_AGE_MS + 1000);
    const untapped = await send("DELETE", `/api/me/keys/${id}`, cookie);
    expect(untapped.status, untapped.text).toBe(403);
    expect(untapped.json.error).toBe("ERR_TAP_REQUIRED");
    expect(h.identity.store.listCredentials(userId)).toHaveLength(2);

    // The old session asks for options bound to this removal; the first key's tap confirms it.
    const options = await post(`/api/me/keys/${id}/remove/options`, {}, cookie);
    expect(options.status, options.text).toBe(200);
    const response = key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON);
    const removed = await send("DELETE", `/api/me/keys/${id}`, cookie, { response });
    expect(removed.status, removed.text).toBe(200);
    expect(h.identity.store.listCredentials(userId)).toHaveLength(1);
  });

  it("the my-keys page sends the person to sign in again on reauthentication_required, and taps to remove", () => {
    expect(PAGES_SCRIPT).toContain('err.apiCode === "reauthentication_required"');
    expect(PAGES_SCRIPT).toMatch(/reauthentication_required[\s\S]{0,300}\/signin\?next=%2Fkeys/);
    expect(PAGES_SCRIPT).toMatch(
      /\/remove\/options"[\s\S]{0,300}ceremony\("authenticate"[\s\S]{0,300}"DELETE"/,
    );
  });
});

describe("a key registration started by a session finishes on that session only", () => {
  it("refuses the verify step from another (good) session of the same user, and without a cookie", async () => {
    h = await startControlPlane();
    const key = newKey();
    const first = await enrollAdmin(key);
    const second = await signIn(key);
    const options = await post("/auth/webauthn/register/options", {}, first);
    expect(options.status, options.text).toBe(200);
    const other = await post(
      "/auth/webauthn/register/verify",
      { response: newKey().register(options.json as PublicKeyCredentialCreationOptionsJSON) },
      second,
    );
    expect(other.status, other.text).toBe(403);
    expect(other.json.error).toBe("ERR_WEBAUTHN_SESSION");

    const again = await post("/auth/webauthn/register/options", {}, first);
    const none = await post("/auth/webauthn/register/verify", {
      response: newKey().register(again.json as PublicKeyCredentialCreationOptionsJSON),
    });
    expect(none.status, none.text).toBe(403);
    expect(none.json.error).toBe("ERR_WEBAUTHN_SESSION");
    expect(h.identity.store.listCredentials(h.identity.store.getUserByName("admin")!.id)).toHaveLength(1);
  });

  it("refuses the verify step once the key that opened the session is suspended", async () => {
    h = await startControlPlane();
    const key = newKey();
    const cookie = await enrollAdmin(key);
    const options = await post("/auth/webauthn/register/options", {}, cookie);
    expect(options.status, options.text).toBe(200);
    const userId = h.identity.store.getUserByName("admin")!.id;
    const [opened] = h.identity.store.listCredentials(userId);
    h.identity.store.suspendCredential(opened!.id, "clone suspected", h.now());
    const verify = await post(
      "/auth/webauthn/register/verify",
      { response: newKey().register(options.json as PublicKeyCredentialCreationOptionsJSON) },
      cookie,
    );
    expect(verify.status, verify.text).toBe(403);
    expect(verify.json.error).toBe("ERR_WEBAUTHN_SESSION");
    expect(h.identity.store.listCredentials(userId)).toHaveLength(1);
  });
});
