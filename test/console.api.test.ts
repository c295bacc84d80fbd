/**
 * The web console's API (people, status, session tokens, removing a key with a tap, CSRF) and its
 * static files, against a real gateway (both planes, a recording Cosmos DB upstream) with real
 * WebAuthn ceremonies by software authenticators. Security tests try the attack and assert the
 * refusal and that nothing changed.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import type {
  InviteView,
  KeyView,
  PeopleView,
  PersonView,
  SessionTokenView,
  StatusView,
} from "../src/server/controlPlane/consoleApi.js";
import type { ConsoleDeps } from "../src/server/controlPlane/context.js";
import { PAGE_CSP } from "../src/server/controlPlane/pages/html.js";
import { PROBE_CACHE_MS } from "../src/server/controlPlane/routes/console.js";
import { readAuditRecords, waitUntil } from "./helpers/auditProbe.js";
import { type ControlPlaneHarness, startControlPlane } from "./helpers/browser.js";
import { type ControlPlaneResponse, controlPlaneClient } from "./helpers/controlPlaneClient.js";
import { type Harness, ISSUER, startHarness } from "./helpers/gateway.js";

const POLICY = `roles:
  admin:
    - allow: ["*"]
      on: /
members:
  admin: ["group:cosmos-admins"]
  Cosmos DB Built-in Data Reader: ["group:readers"]
`;

let h: Harness;
const { send, post } = controlPlaneClient(() => Number(new URL(h.controlUrl).port));
const noToken = { csrf: false } as const;

let adminKey: SoftAuthenticator;
let admin: string; // the administrator's cookie
let bobKey: SoftAuthenticator;
let bob: string; // bob's cookie (a non-administrator)

const newKey = (deviceBound = true) =>
  createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl, deviceBound });

/** Enrolls `key` through an enrollment link; returns the new session's cookie. */
async function enrollWithLink(url: string, key: SoftAuthenticator, nickname: string): Promise<string> {
  const invite = new URL(url).searchParams.get("invite");
  expect(invite).toBeTruthy();
  const options = await post("/auth/webauthn/register/options", { invite });
  expect(options.status, options.text).toBe(200);
  const verify = await post("/auth/webauthn/register/verify", {
    response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
    nickname,
  });
  expect(verify.status, verify.text).toBe(200);
  return verify.cookie!;
}

async function signIn(key: SoftAuthenticator, username: string): Promise<ControlPlaneResponse> {
  const options = await post("/auth/webauthn/login/options", { username });
  expect(options.status, options.text).toBe(200);
  return post("/auth/webauthn/login/verify", {
    response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
  });
}

async function addKey(cookie: string, key: SoftAuthenticator, nickname: string): Promise<string> {
  const options = await post("/auth/webauthn/register/options", {}, cookie);
  expect(options.status, options.text).toBe(200);
  const verify = await post(
    "/auth/webauthn/register/verify",
    { response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON), nickname },
    cookie,
  );
  expect(verify.status, verify.text).toBe(200);
  return verify.json.credentialId;
}

const people = async (cookie = admin): Promise<PersonView[]> => {
  const res = await send("GET", "/api/people", cookie);
  expect(res.status, res.text).toBe(200);
  return (res.json as PeopleView).people;
};
const person = async (name: string) => (await people()).find((p) => p.name === name);
const userOf = (name: string) => h.gw.identity.store.getUserByName(name);
const keysOf = (name: string) => h.gw.identity.store.listCredentials(userOf(name)!.id);

/** The audit records (read-only, as an auditor would) once one matching `match` has been written. */
async function audited(match: (r: AuditRecord) => boolean, what: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined;
  await waitUntil(
    () => {
      found = readAuditRecords(h.gw.auditFile).find(match);
      return found !== undefined;
    },
    10_000,
    what,
  );
  return found!;
}

/** A request exactly as written (no URL normalization), as an attacker would send it. */
function rawGet(path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(h.controlUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: url.port, method: "GET", path }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  h = await startHarness({ policy: POLICY });
  adminKey = newKey();
  admin = await enrollWithLink(h.gw.firstAdminUrl!, adminKey, "admin desk key");
});

afterAll(async () => {
  await h?.close();
});

describe("people: invite, enroll, groups, disable, re-enable (administrators)", () => {
  it("invites a person: the one-time link enrolls them and they appear in the people list", async () => {
    const res = await post("/api/people/invite", { name: "bob", groups: ["readers", "readers"] }, admin);
    expect(res.status, res.text).toBe(200);
    const invite = res.json as InviteView;
    expect(invite.name).toBe("bob");
    expect(invite.url).toMatch(new RegExp(`^${h.controlUrl}/enroll\\?invite=[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(invite.expiresAt) - Date.now()).toBeGreaterThan(23 * 3_600_000);
    // Before enrolling, bob is listed as invited (no user record, no keys).
    expect(await person("bob")).toMatchObject({
      name: "bob",
      groups: ["readers"],
      admin: false,
      keys: [],
      lastSeenAt: null,
      pendingInvite: { expiresAt: invite.expiresAt },
    });
    // The invite is audited as the administrator's action on bob; the secret is never recorded.
    const record = await audited(
      (r) => r.type === "user.invited" && r.resource === "/users/bob",
      "user.invited",
    );
    expect(record).toMatchObject({
      subject: "admin",
      subjectKind: "user",
      details: { user: "bob", createdBy: "admin" },
    });
    expect(JSON.stringify(readAuditRecords(h.gw.auditFile))).not.toContain(
      new URL(invite.url).searchParams.get("invite")!,
    );
    expect(h.logs.join("")).not.toContain(new URL(invite.url).searchParams.get("invite")!);

    bobKey = newKey(false);
    bob = await enrollWithLink(invite.url, bobKey, "bob's phone");
    const listed = await person("bob");
    expect(listed).toMatchObject({ name: "bob", groups: ["readers"], disabled: false, pendingInvite: null });
    expect(listed!.keys).toHaveLength(1);
    expect(listed!.keys[0]).toMatchObject({
      nickname: "bob's phone",
      type: "synced",
      deviceBound: false,
      authenticator: null, // the all-zero AAGUID of a software key names no model
      suspended: false,
      current: false,
    });
    // The link works once.
    const again = await post("/auth/webauthn/register/options", {
      invite: new URL(invite.url).searchParams.get("invite"),
    });
    expect(again.status).toBe(400);
  });

  it("refuses bad invites with clear 400s, and existing names with 409", async () => {
    for (const body of [
      { name: "bad name", groups: [] },
      { name: "", groups: [] },
      { name: 42, groups: [] },
      { name: "x".repeat(65), groups: [] },
      { name: "carol", groups: "readers" },
      { name: "carol", groups: [""] },
      { name: "carol", groups: ["a\u0007"] },
      { name: "carol", groups: Array.from({ length: 65 }, (_, i) => `g${i}`) },
      { name: "carol", groups: [], admin: "yes" },
    ]) {
      const res = await post("/api/people/invite", body, admin);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.code).toMatch(/^ERR_(BAD_REQUEST|USER_INVALID)$/);
      expect(res.json.message.length).toBeGreaterThan(20);
    }
    const exists = await post("/api/people/invite", { name: "bob", groups: [] }, admin);
    expect(exists.status).toBe(409);
    expect(exists.json.code).toBe("ERR_USER_EXISTS");
    expect((await people()).some((p) => p.name === "carol")).toBe(false);
  });

  it("refuses every people and status route to a non-administrator, and nothing changes", async () => {
    const reader = await invitedReader("rita");
    await post("/api/people/bob/disable", {}, admin);
    const bobKeyId = keysOf("bob")[0]!.id;
    h.gw.identity.store.suspendCredential(bobKeyId, "test: suspended", Date.now());
    const before = JSON.stringify([h.gw.identity.store.listUsers(), keysOf("bob")]);
    const attempts: [string, string, unknown][] = [
      ["GET", "/api/people", undefined],
      ["GET", "/api/status", undefined],
      ["POST", "/api/people/invite", { name: "mallory", groups: ["cosmos-admins"], admin: true }],
      ["POST", "/api/people/admin/disable", {}],
      ["POST", "/api/people/bob/enable", {}],
      ["PUT", "/api/people/rita/groups", { groups: ["cosmos-admins"] }],
      ["POST", `/api/people/bob/keys/${encodeURIComponent(bobKeyId)}/reenable`, {}],
    ];
    for (const [method, path, body] of attempts) {
      const res = await send(method, path, reader, body);
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(403);
      expect(res.json).toMatchObject({ code: "ERR_FORBIDDEN", error: "ERR_FORBIDDEN" });
      const anonymous = await send(method, path, undefined, body);
      expect(anonymous.status, `${method} ${path} without a session`).toBe(401);
    }
    expect(JSON.stringify([h.gw.identity.store.listUsers(), keysOf("bob")])).toBe(before);
    expect(h.gw.identity.store.listPendingInvites(Date.now()).some((i) => i.userName === "mallory")).toBe(
      false,
    );
    h.gw.identity.store.reenableCredential(bobKeyId);
    expect((await post("/api/people/bob/enable", {}, admin)).status).toBe(200);
    const again = await signIn(bobKey, "bob");
    expect(again.status, again.text).toBe(200);
    bob = again.cookie!;
  });

  it("changes groups: the new groups reach tokens, and taking one away signs the person out", async () => {
    const added = await send("PUT", "/api/people/bob/groups", admin, { groups: ["readers", "analysts"] });
    expect(added.status, added.text).toBe(200);
    expect((added.json as PersonView).groups).toEqual(["readers", "analysts"]);
    expect((await send("GET", "/api/me", bob)).status).toBe(200); // adding revokes nothing
    const token = await send("POST", "/api/me/token", bob, {});
    const claims = JSON.parse(Buffer.from(token.json.access_token.split(".")[1], "base64url").toString());
    expect(claims.groups).toEqual(["readers", "analysts"]);

    const removed = await send("PUT", "/api/people/bob/groups", admin, { groups: ["readers"] });
    expect(removed.status, removed.text).toBe(200);
    expect((await send("GET", "/api/me", bob)).status).toBe(401);
    const auth = { authorization: `type=aad&ver=1.0&sig=${token.json.access_token}` };
    expect((await h.raw("GET", "/dbs", auth)).status).toBe(401);
    const record = await audited(
      (r) => r.type === "user.groups_changed" && r.details?.removed === "analysts",
      "user.groups_changed",
    );
    expect(record).toMatchObject({ subject: "admin", resource: "/users/bob", details: { user: "bob" } });
    bob = (await signIn(bobKey, "bob")).cookie!;

    for (const [name, body] of [
      ["bob", { groups: "readers" }],
      ["bob", {}],
      ["bob", { groups: [null] }],
      ["bad%20name", { groups: [] }],
    ] as const) {
      const res = await send("PUT", `/api/people/${name}/groups`, admin, body);
      expect(res.status, `${name} ${JSON.stringify(body)}`).toBe(400);
    }
    expect((await send("PUT", "/api/people/nobody/groups", admin, { groups: [] })).status).toBe(404);
    expect(userOf("bob")!.groups).toEqual(["readers"]);
  });

  it("disabling a person ends their session and their data-plane token at once; enabling lets them sign in again", async () => {
    const token = await send("POST", "/api/me/token", bob, {});
    expect(token.status, token.text).toBe(200);
    const auth = { authorization: `type=aad&ver=1.0&sig=${token.json.access_token}` };
    expect((await h.raw("GET", "/dbs", auth)).status).toBe(200);

    const disabled = await post("/api/people/bob/disable", {}, admin);
    expect(disabled.status, disabled.text).toBe(200);
    expect((disabled.json as PersonView).disabled).toBe(true);
    expect((await send("GET", "/api/me", bob)).status).toBe(401);
    const refused = await h.raw("GET", "/dbs", auth);
    expect(refused.status).toBe(401);
    expect(refused.json().message).toMatch(/disabled|revoked/);
    expect((await signIn(bobKey, "bob")).status).toBe(403);
    await audited((r) => r.type === "user.disabled" && r.resource === "/users/bob", "user.disabled");

    const enabled = await post("/api/people/bob/enable", {}, admin);
    expect(enabled.status, enabled.text).toBe(200);
    expect((enabled.json as PersonView).disabled).toBe(false);
    const again = await signIn(bobKey, "bob");
    expect(again.status, again.text).toBe(200);
    bob = again.cookie!;

    // The last enabled administrator cannot be disabled (nobody could undo it).
    const self = await post("/api/people/admin/disable", {}, admin);
    expect(self.status).toBe(409);
    expect(self.json.code).toBe("ERR_USER_LAST_ADMIN");
    expect(userOf("admin")!.disabled).toBe(false);
    expect((await post("/api/people/nobody/disable", {}, admin)).status).toBe(404);
    expect((await post("/api/people/..%2Fadmin/disable", {}, admin)).status).toBe(400);
  });

  it("re-enables a suspended key; the people list says why it was suspended", async () => {
    const id = keysOf("bob")[0]!.id;
    h.gw.identity.store.suspendCredential(
      id,
      "clone suspected: signature counter went backwards",
      Date.now(),
    );
    const listed = (await person("bob"))!.keys[0] as KeyView;
    expect(listed).toMatchObject({
      suspended: true,
      suspendedReason: "clone suspected: signature counter went backwards",
    });
    expect((await signIn(bobKey, "bob")).status).toBe(403);

    // The key must be that person's.
    const adminKeyId = keysOf("admin")[0]!.id;
    expect(
      (await post(`/api/people/bob/keys/${encodeURIComponent(adminKeyId)}/reenable`, {}, admin)).status,
    ).toBe(404);
    expect((await post("/api/people/bob/keys/no-such-key/reenable", {}, admin)).status).toBe(404);

    const res = await post(`/api/people/bob/keys/${encodeURIComponent(id)}/reenable`, {}, admin);
    expect(res.status, res.text).toBe(200);
    expect((res.json as PersonView).keys[0]).toMatchObject({ id, suspended: false });
    expect((res.json as PersonView).keys[0]).not.toHaveProperty("suspendedReason");
    const again = await signIn(bobKey, "bob");
    expect(again.status, again.text).toBe(200);
    bob = again.cookie!;
    const record = await audited(
      (r) => r.type === "credential.reenabled" && r.credential === id,
      "credential.reenabled",
    );
    expect(record).toMatchObject({ subject: "admin", resource: "/users/bob", details: { user: "bob" } });
  });
});

/** Invites and enrolls a reader through the API; returns their cookie. */
async function invitedReader(name: string): Promise<string> {
  const res = await post("/api/people/invite", { name, groups: ["readers"] }, admin);
  expect(res.status, res.text).toBe(200);
  return enrollWithLink(res.json.url, newKey(), `${name}'s key`);
}

describe("my session: a data-plane token, and removing a key needs a tap", () => {
  it("POST /api/me/token answers an access token the data plane accepts, audited as grant console", async () => {
    const res = await post("/api/me/token", {}, admin);
    expect(res.status, res.text).toBe(200);
    const token = res.json as SessionTokenView;
    expect(token).toMatchObject({ token_type: "Bearer", endpoint: h.endpoint });
    expect(token).not.toHaveProperty("refresh_token");
    expect(token.expires_in).toBeGreaterThan(0);
    expect(token.expires_in).toBeLessThanOrEqual(600);
    const ok = await h.raw("GET", "/dbs", { authorization: `type=aad&ver=1.0&sig=${token.access_token}` });
    expect(ok.status, ok.body).toBe(200);
    const claims = JSON.parse(Buffer.from(token.access_token.split(".")[1]!, "base64url").toString());
    expect(claims).toMatchObject({
      sub: "admin",
      iss: h.controlUrl,
      aud: h.endpoint,
      cred: keysOf("admin")[0]!.id,
    });
    const record = await audited((r) => r.type === "token.issued" && r.jti === claims.jti, "token.issued");
    expect(record).toMatchObject({ subject: "admin", details: { grant: "console" } });
    expect(h.logs.join("")).not.toContain(token.access_token);

    expect((await post("/api/me/token", {}, undefined)).status).toBe(401);
    expect((await post("/api/me/token", {}, admin, noToken)).status).toBe(403);
  });

  it("refuses a removal without a valid tap: missing, garbage, a sign-in's, another key's, replayed, another session's, another person's", async () => {
    const second = newKey();
    const third = newKey();
    const secondId = await addKey(admin, second, "second");
    const thirdId = await addKey(admin, third, "third");
    const path = (id: string) => `/api/me/keys/${encodeURIComponent(id)}`;
    const optionsFor = async (id: string, cookie = admin) => {
      const res = await post(`${path(id)}/remove/options`, {}, cookie);
      expect(res.status, res.text).toBe(200);
      return res.json as PublicKeyCredentialRequestOptionsJSON;
    };
    const refused = async (id: string, body: unknown, cookie = admin) => {
      const res = await send("DELETE", path(id), cookie, body);
      expect(res.status, res.text).toBe(403);
      expect(res.json.code).toBe("ERR_TAP_REQUIRED");
      expect(res.json.message).toMatch(/tap/);
      expect(h.gw.identity.store.getCredential(id), "the key is still there").toBeDefined();
      return res;
    };

    // The options offer every usable key of the person.
    const offered = await optionsFor(secondId);
    expect(offered.allowCredentials?.map((c) => c.id).sort()).toEqual(
      keysOf("admin")
        .map((k) => k.id)
        .sort(),
    );

    await refused(secondId, {});
    await refused(secondId, { response: null });
    await refused(secondId, { response: "tap" });
    await refused(secondId, { response: { id: "x", rawId: "x", type: "public-key", response: {} } });
    // A sign-in's assertion (purpose login) does not confirm a removal.
    const login = await post("/auth/webauthn/login/options", { username: "admin" });
    await refused(secondId, { response: adminKey.authenticate(login.json) });
    // An assertion over options bound to the third key does not remove the second; it is spent.
    const forThird = third.authenticate(await optionsFor(thirdId));
    await refused(secondId, { response: forThird });
    await refused(thirdId, { response: forThird }); // replayed
    // Options asked for by another session of the same person.
    const otherSession = (await signIn(adminKey, "admin")).cookie!;
    const elsewhere = adminKey.authenticate(await optionsFor(secondId, otherSession));
    await refused(secondId, { response: elsewhere });
    // Another person's key answering the administrator's options.
    await refused(secondId, {
      response: bobKey.authenticate(await optionsFor(secondId), { credentialId: bobKey.credentials[0]!.id }),
    });
    // A signature that does not verify.
    await refused(secondId, {
      response: adminKey.authenticate(await optionsFor(secondId), { badSignature: true }),
    });
    expect(keysOf("admin")).toHaveLength(3);

    // A genuine tap by the key being removed itself works, and is single use.
    const tap = second.authenticate(await optionsFor(secondId));
    const removed = await send("DELETE", path(secondId), admin, { response: tap });
    expect(removed.status, removed.text).toBe(200);
    expect(removed.json).toEqual({ removed: secondId, signedOut: false });
    expect(h.gw.identity.store.getCredential(secondId)).toBeUndefined();
    const record = await audited(
      (r) => r.type === "credential.removed" && r.credential === secondId,
      "credential.removed",
    );
    expect(record.details).toMatchObject({ confirmedWith: secondId });
    const replay = await send("DELETE", path(thirdId), admin, { response: tap });
    expect(replay.status).toBe(403);

    // Another person's key id: not found, whatever the tap.
    const bobKeyId = keysOf("bob")[0]!.id;
    expect((await post(`${path(bobKeyId)}/remove/options`, {}, admin)).status).toBe(404);
    expect((await send("DELETE", path(bobKeyId), admin, { response: tap })).status).toBe(404);
    expect(keysOf("bob")).toHaveLength(1);
  });

  it("lists my keys with the authenticator's name from its AAGUID", async () => {
    const yubikey = createSoftAuthenticator({
      rpId: "localhost",
      origin: h.controlUrl,
      aaguid: "ee882879-721c-4913-9775-3dfcce97072a",
    });
    await addKey(admin, yubikey, "yubikey");
    const keys = (await send("GET", "/api/me/keys", admin)).json.keys as KeyView[];
    expect(keys.find((k) => k.nickname === "yubikey")).toMatchObject({
      aaguid: "ee882879-721c-4913-9775-3dfcce97072a",
      authenticator: "YubiKey 5 Series",
      type: "hardware-bound",
    });
    expect(keys.find((k) => k.nickname === "admin desk key")).toMatchObject({
      authenticator: null,
      current: true,
    });
  });
});

describe("CSRF on the console's writes", () => {
  it("refuses a cookie-authenticated write without the session's token, and changes nothing", async () => {
    const invite = await post(
      "/api/people/invite",
      { name: "eve", groups: ["cosmos-admins"], admin: true },
      admin,
      noToken,
    );
    expect(invite.status, invite.text).toBe(403);
    expect(invite.json.code).toBe("ERR_CSRF");
    expect(invite.json.message).toMatch(/reload the page/);
    expect((await people()).some((p) => p.name === "eve")).toBe(false);

    const groups = await send("PUT", "/api/people/bob/groups", admin, { groups: ["cosmos-admins"] }, noToken);
    expect(groups.status).toBe(403);
    expect(userOf("bob")!.groups).toEqual(["readers"]);
    const disable = await post("/api/people/bob/disable", {}, admin, noToken);
    expect(disable.status).toBe(403);
    expect(userOf("bob")!.disabled).toBe(false);
  });

  it("refuses another session's token", async () => {
    const bobToken = (await send("GET", "/api/me", bob)).json.csrfToken as string;
    const res = await post("/api/people/bob/disable", {}, admin, { csrf: bobToken });
    expect(res.status).toBe(403);
    expect(res.json.code).toBe("ERR_CSRF");
    expect(userOf("bob")!.disabled).toBe(false);
  });

  it("never needs it on a read", async () => {
    for (const path of ["/api/me", "/api/me/keys", "/api/people", "/api/status", "/console/"]) {
      expect((await send("GET", path, admin, undefined, noToken)).status, path).toBe(200);
    }
  });
});

describe("status (administrators)", () => {
  it("shows the upstream, signing keys, the audit's durability and queue, issuers and version", async () => {
    const probesBefore = h.seen.filter((r) => r.method === "GET" && r.url === "/").length;
    const res = await send("GET", "/api/status", admin);
    expect(res.status, res.text).toBe(200);
    const status = res.json as StatusView;
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8"));
    expect(status.version).toBe(pkg.version);
    expect(Date.parse(status.startedAt)).toBeLessThanOrEqual(Date.now());
    expect(status.upstream).toMatchObject({ type: "cosmos", healthy: true });
    expect(status.upstream.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(typeof status.upstream.latencyMs).toBe("number");
    expect(status.signingKeys.map((k) => k.state).sort()).toEqual(["current", "next"]);
    expect(Date.parse(status.nextRotation!)).toBeGreaterThan(Date.now());
    expect(status.audit).toMatchObject({
      durability: "strict",
      onFailure: "closed",
      state: "ok",
      accepting: true,
      maxQueue: 10_000,
    });
    expect(status.audit.queueDepth).toBeGreaterThanOrEqual(0);
    expect(status.audit.records).toBeGreaterThan(10);
    expect(status.issuers).toEqual([{ name: ISSUER, issuer: ISSUER }]);

    // Polled again at once: the probe is reused, the upstream is not asked again.
    for (let i = 0; i < 5; i++) expect((await send("GET", "/api/status", admin)).status).toBe(200);
    expect(h.seen.filter((r) => r.method === "GET" && r.url === "/").length).toBeGreaterThan(0);
    const probes = h.seen.filter((r) => r.method === "GET" && r.url === "/").length - probesBefore;
    expect(probes).toBeLessThanOrEqual(1);
    expect(PROBE_CACHE_MS).toBeLessThanOrEqual(10_000);
  });
});

describe("the static console on the gateway", () => {
  it("redirects / to /console/ and serves index.html under the pages' CSP, not cached", async () => {
    const root = await rawGet("/");
    expect(root.status).toBe(302);
    expect(root.headers.location).toBe("/console/");
    expect((await rawGet("/console")).headers.location).toBe("/console/");

    const index = await rawGet("/console/");
    expect(index.status, "the console is built by `npm run build:console` (npm test runs it first)").toBe(
      200,
    );
    expect(index.headers["content-type"]).toMatch(/^text\/html/);
    expect(index.headers["content-security-policy"]).toBe(PAGE_CSP);
    expect(index.headers["cache-control"]).toBe("no-store");
    expect(index.headers["x-frame-options"]).toBe("DENY");
    // Vite's output works under that CSP: module scripts and style sheets from /console/assets/, nothing inline.
    expect(index.body).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(index.body).not.toMatch(/\sstyle=|<style/);
    expect(index.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    const script = /<script type="module" crossorigin src="(\/console\/assets\/[^"]+\.js)"/.exec(
      index.body,
    )?.[1];
    expect(script).toBeDefined();
    const asset = await rawGet(script!);
    expect(asset.status).toBe(200);
    expect(asset.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    for (const css of index.body.matchAll(/<link rel="stylesheet"[^>]*href="([^"]+)"/g)) {
      const sheet = await rawGet(css[1]!);
      expect(sheet.status).toBe(200);
      expect(sheet.headers["content-type"]).toBe("text/css; charset=utf-8");
    }
  });

  it("serves nothing outside the built console: traversal attempts and unknown names are 404", async () => {
    for (const path of [
      "/console/assets/../../package.json",
      "/console/assets/..%2f..%2fpackage.json",
      "/console/assets/%2e%2e/%2e%2e/package.json",
      "/console/assets/%2e%2e%2f%2e%2e%2fpackage.json",
      "/console/%2e%2e/package.json",
      "/console/..%2fpackage.json",
      "/console/assets/",
      "/console/assets/does-not-exist.js",
      "/console/assets/%00",
      "/console/package.json",
      "/console/assets/.%2e/index.html",
    ]) {
      const res = await rawGet(path);
      expect([400, 404], `${path} → ${res.status}`).toContain(res.status);
      expect(res.body).not.toContain('"name": "cosmosgate"');
      expect(res.body).not.toContain("<html");
    }
  });
});

describe("the static console from a directory (no build, a build, what is served)", () => {
  let cp: ControlPlaneHarness;
  let dir: string;
  const consoleDeps = (consoleDir: string): ConsoleDeps => ({
    policy: {
      holder: { current: { version: "v" } as never, loads: 0, refusals: 0 },
      file: "p",
      loadedAt: () => 0,
    },
    auditFile: join(consoleDir, "no-audit.db"),
    audit: { state: () => "ok", pending: () => 0, accepting: () => true },
    upstream: {
      type: "embedded",
      endpoint: "embedded",
      probe: async () => ({ healthy: true, latencyMs: 1 }),
    },
    issuers: [],
    version: "0.0.0-test",
    startedAt: Date.now(),
    consoleDir,
  });
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${cp.port}${path}`, { redirect: "manual" });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-console-"));
    cp = await startControlPlane({ console: consoleDeps(join(dir, "dist")) });
  });
  afterAll(async () => {
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("says how to build the console while it is not built, then serves the build without a restart", async () => {
    const missing = await get("/console/");
    expect(missing.status).toBe(503);
    expect(missing.headers.get("content-security-policy")).toBe(PAGE_CSP);
    expect(missing.text).toContain("npm run build:console");
    expect((await get("/console/assets/index-AbCdEf12.js")).status).toBe(404);

    const dist = join(dir, "dist");
    mkdirSync(join(dist, "assets"), { recursive: true });
    writeFileSync(join(dir, "secret.txt"), "outside the console");
    writeFileSync(
      join(dist, "index.html"),
      '<!doctype html><script type="module" crossorigin src="/console/assets/index-AbCdEf12.js"></script><link rel="stylesheet" crossorigin href="/console/assets/index-Zy_9-8xW.css"><div id="app"></div>',
    );
    writeFileSync(join(dist, "assets", "index-AbCdEf12.js"), "console.log(1);");
    writeFileSync(join(dist, "assets", "index-Zy_9-8xW.css"), "body{}");
    writeFileSync(join(dist, "assets", "logo.svg"), "<svg/>");
    writeFileSync(join(dist, "favicon.ico"), "ico");
    symlinkSync(join(dir, "secret.txt"), join(dist, "assets", "link-AbCdEf12.txt"));

    const index = await get("/console/");
    expect(index.status).toBe(200);
    expect(index.text).toContain('<div id="app">');
    expect(index.headers.get("cache-control")).toBe("no-store");
    expect(index.headers.get("content-security-policy")).toBe(PAGE_CSP);
    const js = await get("/console/assets/index-AbCdEf12.js");
    expect(js).toMatchObject({ status: 200, text: "console.log(1);" });
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    const css = await get("/console/assets/index-Zy_9-8xW.css");
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const svg = await get("/console/assets/logo.svg");
    expect(svg.headers.get("content-type")).toBe("image/svg+xml");
    expect(svg.headers.get("cache-control")).toBe("public, max-age=300"); // not content-hashed
    expect((await get("/console/favicon.ico")).status).toBe(200);
    // A symbolic link is not a file of the build: not served, whatever it points to.
    const link = await get("/console/assets/link-AbCdEf12.txt");
    expect(link.status).toBe(404);
    expect(link.text).not.toContain("outside the console");

    // Read once: a file added later is not served until the gateway restarts.
    writeFileSync(join(dist, "assets", "late-AbCdEf12.js"), "late");
    expect((await get("/console/assets/late-AbCdEf12.js")).status).toBe(404);
  });
});

describe("authenticator names from a configured FIDO metadata file", () => {
  it("names a key by the metadata statement's description, before the built-in list", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cosmosgate-mds-"));
    const custom = "0a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    const file = join(dir, "fido-metadata.json");
    writeFileSync(
      file,
      JSON.stringify([
        { aaguid: custom.toUpperCase(), description: "Contoso Hardware Key" },
        { aaguid: "ee882879-721c-4913-9775-3dfcce97072a", description: "YubiKey 5 Series (firmware 5.4)" },
        { description: "no aaguid: skipped" },
      ]),
    );
    const cp = await startControlPlane({ extraIdentityYaml: `  authenticators: {metadataFile: ${file}}` });
    try {
      const { post: cpPost, send: cpSend } = controlPlaneClient(() => cp.port);
      const key = createSoftAuthenticator({ rpId: "localhost", origin: cp.origin, aaguid: custom });
      const options = await cpPost("/auth/webauthn/register/options", { invite: cp.adminInvite() });
      const verify = await cpPost("/auth/webauthn/register/verify", {
        response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
      });
      expect(verify.status, verify.text).toBe(200);
      const keys = (await cpSend("GET", "/api/me/keys", verify.cookie)).json.keys as KeyView[];
      expect(keys[0]).toMatchObject({ aaguid: custom, authenticator: "Contoso Hardware Key" });
      expect(cp.identity.authenticatorName("ee882879-721c-4913-9775-3dfcce97072a")).toBe(
        "YubiKey 5 Series (firmware 5.4)",
      );
      expect(cp.identity.authenticatorName("d548826e-79b4-db40-a3d8-11116f7e8349")).toBe("Bitwarden");
    } finally {
      await cp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
