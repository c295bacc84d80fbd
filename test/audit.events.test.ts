import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { searchAudit } from "../src/audit/search.js";
import type { AuditRecord } from "../src/audit/types.js";
import { AUDIT_EVENT_TYPES } from "../src/audit/types.js";
import { verifyChain } from "../src/audit/verify.js";
import { AgentCredential } from "../src/client/agentCredential.js";
import { createAgentKeyFile } from "../src/client/agentKey.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { CLI_CLIENT_ID } from "../src/server/controlPlane/oauth/authorizeRequest.js";
import { openDatabase } from "../src/store/sqlite.js";
import { runCli } from "./helpers/cli.js";
import { csrfTokenFor, needsCsrf } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness, TEST_POLICY } from "./helpers/gateway.js";

/**
 * Every event type of the documented schema (docs/audit.md), produced through the real gateway, its
 * control plane (passkey ceremonies with the software authenticator), the data plane and the
 * command line, and found in audit.db with its important fields. audit.checkpoint and audit.pruned
 * are produced by the checkpoint and retention tests.
 */

const AGENT = "audit-events-test/1.0";
/** Secrets the test saw (tokens, refresh tokens, invite secrets, the account key): none may be in a record. */
const secrets: string[] = [];

let h: Harness;
let configFile: string;

/** The control plane's JSON API as the pages call it, with a recognizable user agent. */
async function api(
  path: string,
  body?: unknown,
  opts: { cookie?: string; method?: string; form?: boolean } = {},
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
): Promise<{ status: number; json: any; cookie?: string }> {
  const headers: Record<string, string> = { "user-agent": AGENT };
  let payload: string | undefined;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (opts.cookie) headers.cookie = opts.cookie;
  const method = opts.method ?? (body === undefined ? "GET" : "POST");
  // A signed-in write carries the session's CSRF token, read from GET /api/me as the pages do.
  const csrf =
    opts.cookie && needsCsrf(method, path)
      ? await csrfTokenFor(h.controlUrl, opts.cookie.replace(/^cg_session=/, ""))
      : undefined;
  if (csrf !== undefined) headers["x-cosmosgate-csrf"] = csrf;
  const res = await fetch(`${h.controlUrl}${path}`, {
    method,
    headers,
    body: payload,
    redirect: "manual",
  });
  const text = await res.text();
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith("cg_session="));
  return {
    status: res.status,
    json: text ? JSON.parse(text) : undefined,
    ...(setCookie ? { cookie: setCookie.split(";")[0] } : {}),
  };
}

async function enroll(
  key: SoftAuthenticator,
  init: { invite: string } | { cookie: string },
  nickname: string,
) {
  const options = await api(
    "/auth/webauthn/register/options",
    "invite" in init ? { invite: init.invite } : {},
    "cookie" in init ? { cookie: init.cookie } : {},
  );
  expect(options.status, JSON.stringify(options.json)).toBe(200);
  const verified = await api(
    "/auth/webauthn/register/verify",
    { response: key.register(options.json), nickname },
    "cookie" in init ? { cookie: init.cookie } : {},
  );
  expect(verified.status, JSON.stringify(verified.json)).toBe(200);
  return verified.json as { credentialId: string; nickname: string; deviceBound: boolean; aaguid: string };
}

async function signIn(key: SoftAuthenticator, username: string) {
  const options = await api("/auth/webauthn/login/options", { username });
  expect(options.status).toBe(200);
  const res = await api("/auth/webauthn/login/verify", { response: key.authenticate(options.json) });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  secrets.push(res.json.access_token, res.json.refresh_token);
  return {
    token: res.json.access_token as string,
    refreshToken: res.json.refresh_token as string,
    cookie: res.cookie as string,
    claims: JSON.parse(Buffer.from(res.json.access_token.split(".")[1], "base64url").toString()),
  };
}

/** Every record of audit.db (the hot table: the index is filled in batches), parsed from `data`. */
function records(): AuditRecord[] {
  const db = new Database(h.gw.auditFile, { readonly: true });
  try {
    return (
      db.prepare("SELECT data, prev_hash, hash FROM audit_events ORDER BY seq").all() as {
        data: string;
        prev_hash: string;
        hash: string;
      }[]
    ).map((r) => ({ ...JSON.parse(r.data), prevHash: r.prev_hash, hash: r.hash }));
  } finally {
    db.close();
  }
}

/** The newest record of `type` matching `match`, waiting for the writer's commit (group commit, async fsync). */
async function find(type: string, match: (r: AuditRecord) => boolean = () => true): Promise<AuditRecord> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = records()
      .filter((r) => r.type === type && match(r))
      .at(-1);
    if (found) return found;
    if (Date.now() > deadline) {
      const types = [...new Set(records().map((r) => r.type))].join(", ");
      throw new Error(`no ${type} record in audit.db (types present: ${types})`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function cli(...args: string[]) {
  const run = await runCli([...args, "--config", configFile], { timeoutMs: 60_000 });
  expect(run.code, `${args.join(" ")}\n${run.stdout}\n${run.stderr}`).toBe(0);
  return run;
}

const auth = (token: string) => ({ authorization: `type=aad&ver=1.0&sig=${token}` });

describe("the audit trail records every event type, with its fields, through the real gateway", () => {
  let desk: SoftAuthenticator;
  let phone: SoftAuthenticator;
  let deskId: string;
  let phoneId: string;
  let deskAaguid: string;
  let admin: Awaited<ReturnType<typeof signIn>>;

  beforeAll(async () => {
    h = await startHarness();
    configFile = join(h.dir, "cosmosgate.yaml");
    secrets.push(Buffer.from("test-account-key-for-signing").toString("base64"));
    desk = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl, deviceBound: true });
    phone = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl, deviceBound: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("start-up: config.loaded, signing keys, the first administrator's invite, policy.loaded, gateway.started", async () => {
    const config = await find("config.loaded");
    expect(config).toMatchObject({
      subject: "cosmosgate",
      subjectKind: "system",
      resource: "/config",
      instance: h.gw.instance,
      decision: "allow",
      status: 0,
      details: {
        configFile,
        upstreamType: "cosmos",
        upstreamAuth: "key",
        "audit.durability": "strict",
        dataPlaneUrl: h.endpoint,
        controlPlaneUrl: h.controlUrl,
      },
    });
    const created = await find("signing_key.created");
    expect(created.resource).toMatch(/^\/keys\/.+/);
    expect(created).toMatchObject({ subject: "cosmosgate", subjectKind: "system" });
    expect(created.details?.kid).toBe(created.resource.slice("/keys/".length));
    const activated = await find("signing_key.activated");
    expect(h.gw.identity.keyring.list().find((k) => k.state === "current")?.kid).toBe(activated.details?.kid);

    const invite = new URL(h.gw.firstAdminUrl!).searchParams.get("invite")!;
    secrets.push(invite);
    expect(await find("user.invited", (r) => r.subject === "admin")).toMatchObject({
      resource: "/users/admin",
      details: { admin: true, groups: "cosmos-admins", createdBy: "cosmosgate" },
    });
    expect(await find("policy.loaded")).toMatchObject({
      subject: "cosmosgate",
      resource: "/policy",
      details: { file: h.policyFile, version: h.gw.policy.current.version, missing: false },
    });
    const started = await find("gateway.started");
    expect(started).toMatchObject({
      resource: "/gateway",
      instance: h.gw.instance,
      details: { pid: process.pid },
    });
    expect(started.details?.dataPlane).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // Start-up order: the configuration first, the gateway's start last.
    const types = records().map((r) => r.type);
    expect(types.indexOf("config.loaded")).toBe(0);
    expect(types.indexOf("gateway.started")).toBeGreaterThan(types.indexOf("policy.loaded"));
  });

  it("enrollment: user.enrolled and credential.added with the key's nickname, AAGUID, kind and the client", async () => {
    const invite = new URL(h.gw.firstAdminUrl!).searchParams.get("invite")!;
    const key = await enroll(desk, { invite }, "desk key");
    deskId = key.credentialId;
    deskAaguid = key.aaguid;
    const enrolled = await find("user.enrolled", (r) => r.credential === deskId);
    expect(enrolled).toMatchObject({
      subject: "admin",
      subjectKind: "user",
      credentialName: "desk key",
      aaguid: deskAaguid,
      deviceBound: true,
      resource: "/users/admin",
      clientAddress: "127.0.0.1",
      userAgent: AGENT,
      instance: h.gw.instance,
      details: { admin: true },
    });
    expect(await find("credential.added", (r) => r.credential === deskId)).toMatchObject({
      subject: "admin",
      credentialName: "desk key",
      deviceBound: true,
      userAgent: AGENT,
      details: { enrollment: true, fmt: expect.any(String) },
    });
  });

  it("sign-in: signin.succeeded and token.issued with the session and the token's jti (never the token)", async () => {
    admin = await signIn(desk, "admin");
    const succeeded = await find("signin.succeeded", (r) => r.credential === deskId);
    expect(succeeded).toMatchObject({
      subject: "admin",
      credentialName: "desk key",
      deviceBound: true,
      clientAddress: "127.0.0.1",
      userAgent: AGENT,
    });
    expect(String(succeeded.details?.amr)).toMatch(/hwk/);
    expect(await find("token.issued", (r) => r.jti === admin.claims.jti)).toMatchObject({
      subject: "admin",
      credential: deskId,
      credentialName: "desk key",
      aaguid: deskAaguid,
      deviceBound: true,
      session: admin.claims.sid,
      userAgent: AGENT,
      details: { grant: "webauthn", expiresIn: 600 },
    });
  });

  it("data.request: instance, principal, session, the key's nickname, AAGUID and kind, substatus, activity ID", async () => {
    const read = await h.raw("GET", "/dbs", { ...auth(admin.token), "user-agent": "sdk-test" });
    expect(read.status).toBe(200);
    const allowed = await find(
      "data.request",
      (r) => r.jti === admin.claims.jti && r.operation === "database.list",
    );
    expect(allowed).toMatchObject({
      instance: h.gw.instance,
      subject: "admin",
      subjectKind: "user",
      issuer: h.controlUrl,
      credential: deskId,
      credentialName: "desk key",
      aaguid: deskAaguid,
      deviceBound: true,
      method: "GET",
      actions: expect.arrayContaining(["metadata"]),
      resource: "/dbs",
      decision: "allow",
      rule: expect.stringMatching(/#/),
      status: 200,
      clientAddress: expect.stringMatching(/127\.0\.0\.1/),
      userAgent: "sdk-test",
    });
    expect(allowed.session).toBe(admin.claims.sid);
    expect(typeof allowed.durationMs).toBe("number");

    // A denial: the substatus the SDK sees, and the client's activity ID (the request was not forwarded).
    const zed = await h.issuer.sign({ sub: "zed", groups: [] });
    secrets.push(zed);
    const activity = "7f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    const denied = await h.raw("GET", "/dbs/shop/colls/orders/docs/o1", {
      ...auth(zed),
      "x-ms-documentdb-partitionkey": '["o1"]',
      "x-ms-activity-id": activity,
    });
    expect(denied.status).toBe(403);
    expect(await find("data.request", (r) => r.subject === "zed")).toMatchObject({
      instance: h.gw.instance,
      issuer: "https://issuer.test.cosmosgate/",
      resource: "/dbs/shop/colls/orders/docs/o1",
      partitionKey: '["o1"]',
      decision: "deny",
      status: 403,
      substatus: 5301,
      activityId: activity,
    });
    // A principal of another issuer has no key of ours: nothing is looked up for it.
    expect((await find("data.request", (r) => r.subject === "zed")).credentialName).toBeUndefined();
  });

  it("signin.failed carries the reason, its code, the key, the client address and user agent", async () => {
    const options = await api("/auth/webauthn/login/options", { username: "admin" });
    const res = await api("/auth/webauthn/login/verify", {
      response: desk.authenticate(options.json, { badSignature: true }),
    });
    expect(res.status).toBe(400);
    const failed = await find("signin.failed", (r) => r.credential === deskId);
    expect(failed).toMatchObject({
      subject: "admin",
      decision: "deny",
      credentialName: "desk key",
      clientAddress: "127.0.0.1",
      userAgent: AGENT,
      details: { code: "ERR_WEBAUTHN_VERIFICATION" },
    });
    expect(failed.reason).toMatch(/^ERR_WEBAUTHN_VERIFICATION: /);
  });

  it("credential.added (another key), credential.renamed", async () => {
    const added = await enroll(phone, { cookie: admin.cookie }, "phone passkey");
    phoneId = added.credentialId;
    expect(await find("credential.added", (r) => r.credential === phoneId)).toMatchObject({
      subject: "admin",
      credentialName: "phone passkey",
      deviceBound: false,
      details: { enrollment: false },
    });
    const renamed = await api(
      `/api/me/keys/${encodeURIComponent(phoneId)}`,
      { nickname: "phone" },
      {
        cookie: admin.cookie,
        method: "PATCH",
      },
    );
    expect(renamed.status).toBe(200);
    expect(await find("credential.renamed", (r) => r.credential === phoneId)).toMatchObject({
      subject: "admin",
      credentialName: "phone",
      deviceBound: false,
      session: expect.any(String),
      userAgent: AGENT,
      details: { from: "phone passkey", to: "phone" },
    });
  });

  it("token.refreshed, refresh_token.reused (the session is revoked), token.revoked", async () => {
    const refreshed = await api("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: admin.refreshToken,
      client_id: CLI_CLIENT_ID,
    });
    expect(refreshed.status, JSON.stringify(refreshed.json)).toBe(200);
    secrets.push(refreshed.json.access_token, refreshed.json.refresh_token);
    const jti = JSON.parse(
      Buffer.from(refreshed.json.access_token.split(".")[1], "base64url").toString(),
    ).jti;
    const issued = await find("token.issued", (r) => r.jti === admin.claims.jti);
    expect(await find("token.refreshed", (r) => r.jti === jti)).toMatchObject({
      subject: "admin",
      credential: deskId,
      credentialName: "desk key",
      session: issued.session,
      details: { grant: "refresh_token" },
    });

    const reused = await api("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: admin.refreshToken,
      client_id: CLI_CLIENT_ID,
    });
    expect(reused.status).toBe(400);
    expect(await find("refresh_token.reused", (r) => r.session === issued.session)).toMatchObject({
      subject: "admin",
      credential: deskId,
      decision: "deny",
      clientAddress: "127.0.0.1",
      userAgent: AGENT,
    });

    const other = await signIn(desk, "admin");
    const revoked = await api("/oauth/revoke", { token: other.refreshToken, client_id: CLI_CLIENT_ID });
    expect(revoked.status).toBe(200);
    const otherSession = (await find("token.issued", (r) => r.jti === other.claims.jti)).session;
    expect(await find("token.revoked", (r) => r.session === otherSession)).toMatchObject({
      subject: "admin",
      credential: deskId,
      credentialName: "desk key",
      details: { via: "oauth.revoke", known: true },
    });
    admin = await signIn(desk, "admin");
  });

  it("credential.removed keeps the removed key's nickname, AAGUID and kind", async () => {
    // Removing a key is confirmed by a tap (here the desk key's) on options bound to the removal.
    const options = await api(
      `/api/me/keys/${encodeURIComponent(phoneId)}/remove/options`,
      {},
      {
        cookie: admin.cookie,
      },
    );
    expect(options.status, JSON.stringify(options.json)).toBe(200);
    const removed = await api(
      `/api/me/keys/${encodeURIComponent(phoneId)}`,
      { response: desk.authenticate(options.json) },
      {
        cookie: admin.cookie,
        method: "DELETE",
      },
    );
    expect(removed.status, JSON.stringify(removed.json)).toBe(200);
    expect(await find("credential.removed", (r) => r.credential === phoneId)).toMatchObject({
      subject: "admin",
      credentialName: "phone",
      deviceBound: false,
      aaguid: expect.any(String),
      userAgent: AGENT,
      details: { revokedSessions: expect.any(Number) },
    });
  });

  it("a cloned key: credential.clone_suspected and credential.suspended; the CLI re-enables it (credential.reenabled)", async () => {
    const twin = desk.clone();
    await signIn(desk, "admin"); // the genuine key moves ahead
    const options = await api("/auth/webauthn/login/options", { username: "admin" });
    const res = await api("/auth/webauthn/login/verify", { response: twin.authenticate(options.json) });
    expect(res.status).toBe(403);
    const suspected = await find("credential.clone_suspected", (r) => r.credential === deskId);
    expect(suspected).toMatchObject({
      subject: "admin",
      decision: "deny",
      credentialName: "desk key",
      deviceBound: true,
      clientAddress: "127.0.0.1",
      userAgent: AGENT,
    });
    // The twin presents a counter the genuine key has already used: not above the stored one.
    expect(Number(suspected.details?.storedCounter)).toBeGreaterThanOrEqual(
      Number(suspected.details?.presentedCounter),
    );
    expect(await find("credential.suspended", (r) => r.credential === deskId)).toMatchObject({
      subject: "admin",
      decision: "deny",
      credentialName: "desk key",
      details: { revokedSessions: expect.any(Number) },
    });

    await cli("users", "reenable-key", deskId);
    const reenabled = await find("credential.reenabled", (r) => r.credential === deskId);
    expect(reenabled).toMatchObject({
      subject: expect.stringMatching(/^cli:/),
      subjectKind: "operator",
      resource: "/users/admin",
      credentialName: "desk key",
      aaguid: deskAaguid,
      deviceBound: true,
      details: { user: "admin" },
    });
    expect(reenabled.instance).toBeUndefined();
  });

  it("the command line: user.invited, user.disabled, user.enabled by cli:<os user>", async () => {
    const invited = await cli("users", "invite", "bob", "--group", "analysts", "--json");
    const url = JSON.parse(invited.stdout).url as string;
    const secret = new URL(url).searchParams.get("invite")!;
    secrets.push(secret);
    expect(await find("user.invited", (r) => r.resource === "/users/bob")).toMatchObject({
      subject: expect.stringMatching(/^cli:/),
      subjectKind: "operator",
      details: { user: "bob", groups: "analysts", admin: false, createdBy: expect.stringMatching(/^cli:/) },
    });
    const bobKey = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
    await enroll(bobKey, { invite: secret }, "bob key");
    await find("user.enrolled", (r) => r.subject === "bob");

    await cli("users", "disable", "bob");
    expect(await find("user.disabled", (r) => r.resource === "/users/bob")).toMatchObject({
      subject: expect.stringMatching(/^cli:/),
      decision: "deny",
      details: { user: "bob", revokedSessions: expect.any(Number) },
    });
    await cli("users", "enable", "bob");
    expect(await find("user.enabled", (r) => r.resource === "/users/bob")).toMatchObject({
      subject: expect.stringMatching(/^cli:/),
      details: { user: "bob", wasDisabled: true },
    });
    // The console: an administrator changes bob's groups.
    const again = await signIn(desk, "admin");
    const changed = await api(
      "/api/people/bob/groups",
      { groups: ["analysts", "auditors"] },
      {
        cookie: again.cookie,
        method: "PUT",
      },
    );
    expect(changed.status, JSON.stringify(changed.json)).toBe(200);
    expect(await find("user.groups_changed", (r) => r.resource === "/users/bob")).toMatchObject({
      subject: "admin",
      details: { user: "bob", added: "auditors", removed: "" },
    });
  });

  it("signing_key.retired (with activated and created) from `cosmosgate keys rotate`", async () => {
    // The next key has been published for an hour, so the rotation happens at once (rather than
    // being scheduled for when verifiers' cached JWKS hold it).
    const state = openDatabase(join(h.gw.stateDir, "state.db"));
    try {
      state
        .prepare("UPDATE signing_keys SET created_at = created_at - 3600000 WHERE activates_at > ?")
        .run(Date.now());
    } finally {
      state.close();
    }
    const before = h.gw.identity.keyring.list().find((k) => k.state === "current")!.kid;
    const rotated = await cli("keys", "rotate");
    expect(rotated.stdout).toMatch(/^Rotated: /);
    expect(await find("signing_key.retired", (r) => r.resource === `/keys/${before}`)).toMatchObject({
      subject: expect.stringMatching(/^cli:/),
      subjectKind: "operator",
      details: { kid: before },
    });
    expect(await find("signing_key.activated", (r) => r.subject.startsWith("cli:"))).toBeDefined();
  });

  it("policy.refused (the reason) and policy.loaded when the watched file changes", async () => {
    const version = h.gw.policy.current.version;
    writeFileSync(h.policyFile, "roles: [this is not a policy\n");
    const refused = await find("policy.refused");
    expect(refused).toMatchObject({
      subject: "cosmosgate",
      resource: "/policy",
      decision: "deny",
      instance: h.gw.instance,
      details: { file: h.policyFile, keptVersion: version },
    });
    expect(String(refused.details?.problem).length).toBeGreaterThan(5);
    writeFileSync(h.policyFile, TEST_POLICY.replace('["sub:carol"]', '["sub:carol", "sub:erin"]'));
    const loaded = await find("policy.loaded", (r) => r.details?.previousVersion === version);
    expect(loaded.details?.version).toBe(h.gw.policy.current.version);
    expect(loaded.details?.version).not.toBe(version);
  });

  it("approvals: approval.requested, .approved (with the assertion), .used, .denied and .expired", async () => {
    // A policy with approval rules: deletes on orders wait for the person's own tap; on "brief" they
    // expire after a second.
    const before = readFileSync(h.policyFile, "utf8");
    const withApprovals = `${before}approvals:
  - {actions: [delete], on: /dbs/shop/colls/orders}
  - {actions: [delete], on: /dbs/shop/colls/brief, lifetime: 1s}
`;
    writeFileSync(h.policyFile, withApprovals);
    const deadline = Date.now() + 10_000;
    while (h.gw.policy.current.approvals === undefined && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    expect(h.gw.policy.current.approvals).toBeDefined();
    const me = await signIn(desk, "admin");
    const del = (id: string, coll = "orders") =>
      h.raw("DELETE", `/dbs/shop/colls/${coll}/docs/${id}`, {
        ...auth(me.token),
        "x-ms-documentdb-partitionkey": `["${id}"]`,
      });
    const idOf = (body: string) =>
      /approval ID (apr_[A-Za-z0-9_-]+)/.exec(JSON.parse(body).message)?.[1] ?? "";

    const held = await del("a1");
    expect(held.status).toBe(403);
    const id = idOf(held.body);
    expect(await find("approval.requested", (r) => r.details?.approval === id)).toMatchObject({
      subject: "admin",
      subjectKind: "user",
      credential: deskId,
      resource: "/dbs/shop/colls/orders/docs/a1",
      operation: "item.delete",
      partitionKey: '["a1"]',
      instance: h.gw.instance,
      details: { person: "admin", approvers: "self", quorum: 1 },
    });
    const options = await api(`/api/approvals/${id}/options`, {}, { cookie: me.cookie });
    expect(options.status, JSON.stringify(options.json)).toBe(200);
    const approved = await api(
      `/api/approvals/${id}/approve`,
      { response: desk.authenticate(options.json) },
      { cookie: me.cookie },
    );
    expect(approved.status, JSON.stringify(approved.json)).toBe(200);
    expect(await find("approval.approved", (r) => r.details?.approval === id)).toMatchObject({
      subject: "admin",
      credential: deskId,
      credentialName: "desk key",
      clientAddress: "127.0.0.1",
      userAgent: AGENT,
      details: {
        complete: true,
        credential: deskId,
        authenticatorData: expect.any(String),
        clientDataJSON: expect.any(String),
        signature: expect.any(String),
        publicKey: expect.any(String),
      },
    });
    expect((await del("a1")).status).not.toBe(403);
    expect(await find("approval.used", (r) => r.details?.approval === id)).toMatchObject({
      subject: "admin",
      jti: me.claims.jti,
    });

    const other = idOf((await del("a2")).body);
    const denied = await api(
      `/api/approvals/${other}/deny`,
      { reason: "not this one" },
      { cookie: me.cookie },
    );
    expect(denied.status, JSON.stringify(denied.json)).toBe(200);
    expect(await find("approval.denied", (r) => r.details?.approval === other)).toMatchObject({
      subject: "admin",
      decision: "deny",
      userAgent: AGENT,
      details: { denialReason: "not this one" },
    });

    const brief = idOf((await del("a3", "brief")).body);
    expect(await find("approval.expired", (r) => r.details?.approval === brief)).toMatchObject({
      subject: "cosmosgate",
      subjectKind: "system",
      decision: "deny",
      resource: "/dbs/shop/colls/brief/docs/a3",
    });
    writeFileSync(h.policyFile, before);
    while (h.gw.policy.current.approvals !== undefined && Date.now() < deadline + 10_000)
      await new Promise((r) => setTimeout(r, 25));
    expect(h.gw.policy.current.approvals).toBeUndefined();
  });

  it("agents: grant.created, grant.confirmed (the tap's challenge), agent.token_issued, the agent's data.request (actor, grant), grant.revoked", async () => {
    const me = await signIn(desk, "admin");
    const keyFile = join(h.dir, "agent-keys", "audit-bot.jwk");
    const agentKey = await createAgentKeyFile(keyFile);
    const draft = await api(
      "/api/grants",
      {
        agent: "audit-bot",
        actions: ["metadata"],
        scopes: ["/"],
        publicKey: agentKey.publicJwk,
        lifetime: "1h",
      },
      { cookie: me.cookie },
    );
    expect(draft.status, JSON.stringify(draft.json)).toBe(200);
    const id = draft.json.grant.id as string;
    const confirmed = await api(
      `/api/grants/${id}/confirm`,
      { response: desk.authenticate(draft.json.options) },
      { cookie: me.cookie },
    );
    expect(confirmed.status, JSON.stringify(confirmed.json)).toBe(200);
    const token = (await new AgentCredential({ gateway: h.controlUrl, grant: id, keyFile }).getToken()).token;
    secrets.push(token);
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect((await h.raw("GET", "/dbs", { ...auth(token), "user-agent": "agent-test" })).status).toBe(200);
    const revoked = await api(`/api/grants/${id}`, {}, { cookie: me.cookie, method: "DELETE" });
    expect(revoked.status, JSON.stringify(revoked.json)).toBe(200);

    const grantFields = { subject: "admin", actor: "agent:audit-bot", grant: id, resource: `/grants/${id}` };
    expect(await find("grant.created", (r) => r.grant === id)).toMatchObject({
      ...grantFields,
      credential: deskId,
      userAgent: AGENT,
      details: { agent: "audit-bot", actions: "metadata", scopes: "/", keyThumbprint: agentKey.thumbprint },
    });
    expect(await find("grant.confirmed", (r) => r.grant === id)).toMatchObject({
      ...grantFields,
      credential: deskId,
      credentialName: "desk key",
      details: { challenge: draft.json.options.challenge },
    });
    expect(await find("agent.token_issued", (r) => r.grant === id)).toMatchObject({
      ...grantFields,
      subjectKind: "agent",
      jti: claims.jti,
      details: { grant: "client_credentials", scope: "metadata" },
    });
    expect(await find("data.request", (r) => r.grant === id)).toMatchObject({
      subject: "admin",
      subjectKind: "agent",
      actor: "agent:audit-bot",
      grant: id,
      jti: claims.jti,
      credential: deskId,
      decision: "allow",
      resource: "/dbs",
    });
    expect(await find("grant.revoked", (r) => r.grant === id)).toMatchObject({
      ...grantFields,
      details: { revokedBy: "admin", wasStatus: "active" },
    });
  });

  it("has every event type of the schema, every gateway record carries its instance, no record holds a secret, and the chain verifies", async () => {
    const all = records();
    const present = new Set(all.map((r) => r.type));
    const expected = AUDIT_EVENT_TYPES.filter((t) => t !== "audit.checkpoint" && t !== "audit.pruned");
    expect(expected.filter((t) => !present.has(t))).toEqual([]);
    for (const r of all) {
      if (r.subjectKind === "operator") expect(r.instance).toBeUndefined();
      else expect(r.instance, `${r.type} #${r.seq}`).toBe(h.gw.instance);
    }
    // No record holds JWT text (checkpoints, kept beside the records, are JWS by design): a JWS is
    // base64url(header) "." base64url(payload) "." ... An approval's proof carries clientDataJSON
    // in base64url (it starts with "eyJ" too), never a dotted token.
    for (const r of all)
      expect(JSON.stringify(r), `${r.type} #${r.seq}`).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+/);
    // No secret the test saw is anywhere in the database's bytes on disk (its WAL too).
    const bytes = [h.gw.auditFile, `${h.gw.auditFile}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString("latin1"))
      .join("\n");
    expect(secrets.length).toBeGreaterThan(8);
    for (const s of secrets) expect(bytes.includes(s), "a secret is in the audit trail").toBe(false);
    const db = openDatabase(h.gw.auditFile, { readonly: true });
    try {
      expect(verifyChain(db).ok).toBe(true);
    } finally {
      db.close();
    }
  });

  it("finds every event type with `audit search --type` (the library, and the real CLI for a prefix)", async () => {
    const expected = AUDIT_EVENT_TYPES.filter((t) => t !== "audit.checkpoint" && t !== "audit.pruned");
    const db = openDatabase(h.gw.auditFile, { readonly: true });
    try {
      for (const type of expected) {
        const found = [...searchAudit(db, { type, limit: 1000 })];
        expect(found.length, type).toBeGreaterThan(0);
        expect(new Set(found.map((r) => r.type)), type).toEqual(new Set([type]));
      }
    } finally {
      db.close();
    }
    const cli = await runCli(
      ["audit", "search", "--type", "credential.*", "--all", "--json", "--config", configFile],
      {
        timeoutMs: 60_000,
      },
    );
    expect(cli.code, cli.stderr).toBe(0);
    const types = new Set(
      cli.stdout
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as AuditRecord).type),
    );
    expect(types).toEqual(new Set(expected.filter((t) => t.startsWith("credential."))));
  });
});
