import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayCredential } from "../src/client/index.js";
import { disableUser, inviteUser } from "../src/identity/users/index.js";
import { createSoftAuthenticator } from "../src/identity/webauthn/testing/softAuthenticator.js";
import { openIdentityStore } from "../src/store/identityStore.js";
import { runCli } from "./helpers/cli.js";
import { csrfTokenFor, needsCsrf } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

type Authenticator = ReturnType<typeof createSoftAuthenticator>;

/** The control plane's JSON API, as a browser page or the CLI's browser step would call it. */
async function api(
  h: Harness,
  path: string,
  body?: unknown,
  cookie?: string,
  method = body === undefined ? "GET" : "POST",
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
): Promise<{ status: number; json: any; cookie?: string }> {
  // A signed-in write carries the session's CSRF token, read from GET /api/me as the pages do.
  const csrf =
    cookie && needsCsrf(method, path)
      ? await csrfTokenFor(h.controlUrl, cookie.replace(/^cg_session=/, ""))
      : undefined;
  const res = await fetch(`${h.controlUrl}${path}`, {
    method,
    headers: {
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...(cookie ? { cookie } : {}),
      ...(csrf !== undefined ? { "x-cosmosgate-csrf": csrf } : {}),
      origin: h.controlUrl,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: "manual",
  });
  const text = await res.text();
  const setCookie = res.headers.get("set-cookie") ?? undefined;
  return { status: res.status, json: text ? JSON.parse(text) : undefined, cookie: setCookie?.split(";")[0] };
}

async function enroll(
  h: Harness,
  key: Authenticator,
  init: { invite: string } | { cookie: string },
  nickname: string,
) {
  const options = await api(
    h,
    "/auth/webauthn/register/options",
    "invite" in init ? { invite: init.invite } : {},
    "cookie" in init ? init.cookie : undefined,
  );
  expect(options.status, JSON.stringify(options.json)).toBe(200);
  const verified = await api(
    h,
    "/auth/webauthn/register/verify",
    { response: key.register(options.json), nickname },
    "cookie" in init ? init.cookie : undefined,
  );
  expect(verified.status, JSON.stringify(verified.json)).toBe(200);
  return verified.json as { credentialId: string; nickname: string; deviceBound: boolean };
}

async function signIn(h: Harness, key: Authenticator, username?: string) {
  const options = await api(h, "/auth/webauthn/login/options", username ? { username } : {});
  expect(options.status).toBe(200);
  const res = await api(h, "/auth/webauthn/login/verify", { response: key.authenticate(options.json) });
  return res;
}

function sdk(h: Harness, token: () => string): CosmosClient {
  return new CosmosClient({
    endpoint: h.endpoint,
    aadCredentials: { getToken: async () => ({ token: token(), expiresOnTimestamp: Date.now() + 600_000 }) },
    agent: new HttpsAgent({ ca: h.gw.caPem }),
    connectionPolicy: {
      retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 1 },
    },
  });
}

describe("passkey identity end to end: enroll, sign in, Cosmos DB through the data plane, revocation", () => {
  let h: Harness;
  let first: Authenticator;
  let second: Authenticator;
  let firstCredential: string;
  let token: string;
  let cookie: string;

  beforeAll(async () => {
    h = await startHarness({
      policy:
        'roles:\n  admin:\n    - allow: ["*"]\n      on: /\nmembers:\n  admin: ["group:cosmos-admins"]\n  Cosmos DB Built-in Data Reader: ["group:readers"]\n',
    });
    first = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl, deviceBound: true });
    second = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl, deviceBound: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("prints a first-administrator enrollment link, and enrolling through it creates the admin", async () => {
    expect(h.gw.firstAdminUrl).toMatch(new RegExp(`^${h.controlUrl}/enroll\\?invite=`));
    const invite = new URL(h.gw.firstAdminUrl!).searchParams.get("invite")!;
    const key = await enroll(h, first, { invite }, "desk key");
    expect(key).toMatchObject({ nickname: "desk key", deviceBound: true });
    firstCredential = key.credentialId;
    // The invite is single use.
    const again = await api(h, "/auth/webauthn/register/options", { invite });
    expect(again.status).toBe(400);
  });

  it("signs in with the key and gets a short-lived token the data plane accepts through the SDK", async () => {
    const res = await signIn(h, first, "admin");
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json).toMatchObject({ token_type: "Bearer", expires_in: 600 });
    expect(res.json.refresh_token).toBeTruthy();
    expect(res.cookie).toMatch(/^cg_session=/);
    token = res.json.access_token;
    cookie = res.cookie!;
    const [, payload] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    expect(claims).toMatchObject({
      sub: "admin",
      iss: h.controlUrl,
      aud: h.endpoint,
      cred: firstCredential,
      groups: ["cosmos-admins"],
    });
    expect(claims.amr).toEqual(expect.arrayContaining(["hwk", "user", "pin"]));

    const client = sdk(h, () => token);
    const { database } = await client.databases.create({ id: "keys" });
    const { container } = await database.containers.create({ id: "c", partitionKey: "/pk" });
    await container.items.create({ id: "1", pk: "a" });
    expect((await container.item("1", "a").read()).resource?.id).toBe("1");
    client.dispose();
  });

  it("audits each data-plane request with the exact key used", () => {
    const db = new Database(h.gw.auditFile, { readonly: true });
    try {
      const rows = db
        .prepare(
          "SELECT credential, subject FROM audit_events WHERE type = 'data.request' AND subject = 'admin'",
        )
        .all() as { credential: string; subject: string }[];
      expect(rows.length).toBeGreaterThanOrEqual(4);
      for (const r of rows) expect(r.credential).toBe(firstCredential);
      const types = (db.prepare("SELECT DISTINCT type FROM audit_events").all() as { type: string }[]).map(
        (r) => r.type,
      );
      expect(types).toEqual(expect.arrayContaining(["data.request", "signing_key.created"]));
    } finally {
      db.close();
    }
  });

  it("adds a second key on the signed-in session, signs in with it, and removing the first revokes its token at once", async () => {
    const added = await enroll(h, second, { cookie }, "phone passkey");
    expect(added.deviceBound).toBe(false);
    const keys = await api(h, "/api/me/keys", undefined, cookie);
    expect(keys.json.keys.map((k: { nickname: string }) => k.nickname).sort()).toEqual([
      "desk key",
      "phone passkey",
    ]);

    const viaSecond = await signIn(h, second); // discoverable: no username
    expect(viaSecond.status).toBe(200);
    const secondToken = viaSecond.json.access_token as string;

    // The first key's token works (and is now in the verified-token cache)...
    const auth = (t: string) => ({ authorization: `type=aad&ver=1.0&sig=${t}` });
    expect((await h.raw("GET", "/dbs/keys", auth(token))).status).toBe(200);
    // ...until the first key is removed (confirmed by a tap of the second): the very next request is refused.
    const path = `/api/me/keys/${encodeURIComponent(firstCredential)}`;
    const options = await api(h, `${path}/remove/options`, {}, viaSecond.cookie);
    expect(options.status, JSON.stringify(options.json)).toBe(200);
    const removed = await api(
      h,
      path,
      { response: second.authenticate(options.json) },
      viaSecond.cookie,
      "DELETE",
    );
    expect(removed.status).toBeLessThan(300);
    const refused = await h.raw("GET", "/dbs/keys", auth(token));
    expect(refused.status).toBe(401);
    expect(refused.json().message).toMatch(/revoked/);
    expect((await h.raw("GET", "/dbs/keys", auth(secondToken))).status).toBe(200);
    token = secondToken;
    cookie = viaSecond.cookie!;
  });

  it("disabling a user from another process refuses their next request, even with a cached token", async () => {
    const store = h.gw.identity.store;
    const { secret } = inviteUser(store, { name: "bob", groups: ["readers"], admin: false, clock: Date.now });
    const bobKey = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
    await enroll(h, bobKey, { invite: secret }, "bob key");
    const bob = await signIn(h, bobKey, "bob");
    const auth = { authorization: `Bearer ${bob.json.access_token}` };
    expect(
      (await h.raw("GET", "/dbs/keys/colls/c/docs/1", { ...auth, "x-ms-documentdb-partitionkey": '["a"]' }))
        .status,
    ).toBe(200);
    // Another process (as `cosmosgate users disable bob` would) disables him in state.db.
    const other = openIdentityStore(join(h.gw.stateDir, "state.db"));
    try {
      disableUser(other, "bob", Date.now);
    } finally {
      other.close();
    }
    const refused = await h.raw("GET", "/dbs/keys/colls/c/docs/1", {
      ...auth,
      "x-ms-documentdb-partitionkey": '["a"]',
    });
    expect(refused.status).toBe(401);
    expect(refused.json().message).toMatch(/disabled/);
  });

  it("`cosmosgate login` completes OAuth with PKCE on a loopback port, and GatewayCredential reaches Cosmos DB", async () => {
    const home = mkdtempSync(join(tmpdir(), "cosmosgate-login-"));
    const credentials = join(home, "credentials.json");
    try {
      const env = {
        ...process.env,
        COSMOSGATE_CONFIG: "",
        COSMOSGATE_CREDENTIALS: credentials,
        DISPLAY: "",
        WAYLAND_DISPLAY: "",
      };
      const child = spawn(
        process.execPath,
        [
          join(import.meta.dirname, "..", "bin", "cosmosgate.js"),
          "login",
          "--gateway",
          h.controlUrl,
          "--no-browser",
        ],
        {
          env,
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
      });
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no authorize URL printed:\n${stderr}`)), 20_000);
        child.stderr.on("data", (d) => {
          stderr += d;
          const m = /(http:\/\/\S+\/oauth\/authorize\?\S+)/.exec(stderr);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
      });
      // Play the browser: the authorization page, the key ceremony, then the redirect to the loopback.
      const page = await fetch(url);
      expect(page.status).toBe(200);
      const params = new URL(url).searchParams;
      const options = await api(h, "/auth/webauthn/login/options", { username: "admin" });
      const approve = await api(h, "/oauth/authorize/approve", {
        authorize: Object.fromEntries(
          ["client_id", "redirect_uri", "code_challenge", "code_challenge_method", "state"].map((k) => [
            k,
            params.get(k),
          ]),
        ),
        response: second.authenticate(options.json),
      });
      expect(approve.status, JSON.stringify(approve.json)).toBe(200);
      expect(approve.json.redirect_to).toMatch(
        /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+\/callback\?code=/,
      );
      const callback = await fetch(approve.json.redirect_to);
      expect(callback.status).toBe(200);
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      expect(code, stderr).toBe(0);
      expect(stdout + stderr).toMatch(/Signed in/);
      expect(statSync(credentials).mode & 0o777).toBe(0o600);

      const token = await runCli(["token", "--gateway", h.controlUrl], {
        env: { COSMOSGATE_CREDENTIALS: credentials },
      });
      expect(token.code, token.stderr).toBe(0);
      expect(token.stdout.trim().split(".")).toHaveLength(3);

      const client = new CosmosClient({
        endpoint: h.endpoint,
        aadCredentials: new GatewayCredential({ gateway: h.controlUrl, file: credentials }),
        agent: new HttpsAgent({ ca: h.gw.caPem }),
      });
      const { resource } = await client.database("keys").container("c").item("1", "a").read();
      expect(resource?.id).toBe("1");
      client.dispose();
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
