import { createHash, randomBytes } from "node:crypto";
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import { type ControlPlaneHarness, startControlPlane } from "./helpers/browser.js";
import { csrfTokenFor, needsCsrf } from "./helpers/controlPlaneClient.js";

/** A response: status, headers, text, parsed JSON (when it is JSON). */
interface Res {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
  json: any;
  setCookie: string[];
}

/** A fetch client with a one-cookie jar (cg_session), like a browser on http://localhost:PORT. */
class Client {
  cookie: string | undefined;
  constructor(readonly base: string) {}

  async send(
    method: string,
    path: string,
    opts: {
      json?: unknown;
      body?: string;
      type?: string;
      headers?: Record<string, string>;
      cookie?: string | null;
      /** The CSRF token to send; by default a signed-in write carries its session's, like a page. */
      csrf?: string | false;
    } = {},
  ): Promise<Res> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    let body: string | undefined = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["content-type"] = "application/json";
    }
    if (opts.type !== undefined) headers["content-type"] = opts.type;
    const cookie = opts.cookie === null ? undefined : (opts.cookie ?? this.cookie);
    if (cookie !== undefined) headers.cookie = `cg_session=${cookie}`;
    if (typeof opts.csrf === "string") headers["x-cosmosgate-csrf"] = opts.csrf;
    else if (opts.csrf === undefined && cookie !== undefined && needsCsrf(method, path)) {
      const token = await csrfTokenFor(this.base, cookie);
      if (token !== undefined) headers["x-cosmosgate-csrf"] = token;
    }
    const res = await fetch(this.base + path, { method, headers, body, redirect: "manual" });
    const text = await res.text();
    const setCookie = res.headers.getSetCookie();
    for (const c of setCookie) {
      const m = /^cg_session=([^;]*)/.exec(c);
      if (m) this.cookie = m[1] === "" ? undefined : m[1];
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, setCookie };
  }

  post(
    path: string,
    json: unknown,
    opts: { cookie?: string | null; csrf?: string | false } = {},
  ): Promise<Res> {
    return this.send("POST", path, { json, ...opts });
  }
}

const b64url = (b: Buffer) => b.toString("base64url");
const pkce = () => {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash("sha256").update(verifier).digest()) };
};

let h: ControlPlaneHarness;
let c: Client;
let key1: SoftAuthenticator;
let key2: SoftAuthenticator;
let key1Id: string;
let key2Id: string;
/** Every secret the tests saw: none may appear in the logs. */
const secrets: string[] = [];

beforeAll(async () => {
  h = await startControlPlane();
  c = new Client(`http://127.0.0.1:${h.port}`);
  key1 = createSoftAuthenticator({ rpId: "localhost", origin: h.origin });
  key2 = createSoftAuthenticator({ rpId: "localhost", origin: h.origin, deviceBound: false });
});

afterAll(async () => {
  await h?.close();
});

async function signIn(key: SoftAuthenticator, username?: string, client = c) {
  const options = await client.post("/auth/webauthn/login/options", username ? { username } : {});
  expect(options.status).toBe(200);
  const response = key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON);
  const res = await client.post("/auth/webauthn/login/verify", { response });
  return { options: options.json as PublicKeyCredentialRequestOptionsJSON, response, res };
}

/** Removes a key the way the pages do: options bound to the removal, a tap, then DELETE with the assertion. */
async function removeWithTap(client: Client, id: string, key: SoftAuthenticator): Promise<Res> {
  const options = await client.post(`/api/me/keys/${encodeURIComponent(id)}/remove/options`, {});
  expect(options.status, options.text).toBe(200);
  const response = key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON);
  return client.send("DELETE", `/api/me/keys/${encodeURIComponent(id)}`, { json: { response } });
}

function expectClearRefusal(res: Res, status = 400) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(typeof res.json.error).toBe("string");
  expect(typeof (res.json.message ?? res.json.error_description)).toBe("string");
  expect((res.json.message ?? res.json.error_description).length).toBeGreaterThan(10);
}

describe("pages", () => {
  it("serves the enrollment and sign-in pages with a strict CSP and no inline script or style", async () => {
    for (const path of ["/enroll?invite=abc", "/signin"]) {
      const res = await c.send("GET", path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      const csp = res.headers.get("content-security-policy") ?? "";
      for (const d of [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
      ]) {
        expect(csp).toContain(d);
      }
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
      expect(res.text).not.toMatch(/\sstyle=|<style/);
      expect(res.text).not.toMatch(/https?:\/\/(?!localhost)/); // no CDN, no external font
      expect(res.text).toMatch(/<label for="/);
    }
  });

  it("serves the page assets: the SimpleWebAuthn bundle, the page script and the style sheet", async () => {
    const bundle = await c.send("GET", "/assets/webauthn.js");
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toMatch(/javascript/);
    expect(bundle.text).toContain("SimpleWebAuthnBrowser");
    const script = await c.send("GET", "/assets/pages.js");
    expect(script.text).toContain("startRegistration");
    expect(script.text).not.toContain("innerHTML");
    const css = await c.send("GET", "/assets/style.css");
    expect(css.headers.get("content-type")).toMatch(/^text\/css/);
    expect(css.text).toContain("prefers-color-scheme: dark");
  });

  it("keeps the sign-in page's next on this site", async () => {
    for (const next of [
      "//evil.example/x",
      "https://evil.example/",
      "/\\evil.example",
      "javascript:alert(1)",
    ]) {
      const res = await c.send("GET", `/signin?next=${encodeURIComponent(next)}`);
      expect(res.text).toContain('data-next="/keys"');
    }
    const ok = await c.send("GET", "/signin?next=%2Fkeys%3Fx%3D1");
    expect(ok.text).toContain('data-next="/keys?x=1"');
  });

  it("sends /keys to the sign-in page when not signed in", async () => {
    const res = await c.send("GET", "/keys", { cookie: null });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/signin?next=%2Fkeys");
  });
});

describe("enrollment, sign-in and my keys", () => {
  let invite: string;

  it("enrolls the first administrator by invite and signs them in with a session cookie", async () => {
    invite = h.adminInvite();
    secrets.push(invite);
    const options = await c.post("/auth/webauthn/register/options", { invite });
    expect(options.status, options.text).toBe(200);
    const opts = options.json as PublicKeyCredentialCreationOptionsJSON;
    expect(opts.rp.id).toBe("localhost");
    expect(opts.user.name).toBe("admin");
    const verify = await c.post("/auth/webauthn/register/verify", {
      response: key1.register(opts),
      nickname: "Desk key",
    });
    expect(verify.status, verify.text).toBe(200);
    expect(verify.json).toEqual({
      credentialId: key1.credentials[0].id,
      nickname: "Desk key",
      deviceBound: true,
      aaguid: "00000000-0000-0000-0000-000000000000",
    });
    key1Id = verify.json.credentialId;
    const cookie = verify.setCookie.find((s) => s.startsWith("cg_session="));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).toMatch(/Max-Age=\d+/);
    expect(cookie).not.toMatch(/Secure/i); // http://localhost
    secrets.push(c.cookie!);

    const me = await c.send("GET", "/api/me");
    expect(me.status, me.text).toBe(200);
    expect(me.json).toMatchObject({ name: "admin", admin: true, credential: key1Id });
    expect(Array.isArray(me.json.groups)).toBe(true);
    expect(Date.parse(me.json.sessionExpiresAt)).toBeGreaterThan(Date.now());

    const page = await c.send("GET", "/keys");
    expect(page.status).toBe(200);
    expect(page.text).toContain("Desk key");
    expect(page.text).toContain("You have only one key");
  });

  it("refuses the invite a second time", async () => {
    const again = await c.post("/auth/webauthn/register/options", { invite });
    expectClearRefusal(again);
    expect(again.json.error).toBe("ERR_WEBAUTHN_INVITE");
  });

  it("signs in with a username, and tokens verify against the published JWKS", async () => {
    c.cookie = undefined;
    const { options, res } = await signIn(key1, "admin");
    expect(options.allowCredentials?.map((a) => a.id)).toEqual([key1Id]);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ token_type: "Bearer", expires_in: 600 });
    expect(res.json.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(c.cookie).toBeDefined();
    secrets.push(res.json.access_token, res.json.refresh_token, c.cookie!);

    expect(decodeProtectedHeader(res.json.access_token)).toMatchObject({ alg: "ES256", typ: "at+jwt" });
    const jwks = await c.send("GET", "/.well-known/jwks.json");
    const { payload } = await jwtVerify(res.json.access_token, createLocalJWKSet(jwks.json), {
      issuer: h.origin,
      audience: "https://localhost:8081",
      typ: "at+jwt",
    });
    expect(payload).toMatchObject({ sub: "admin", cred: key1Id, amr: ["hwk", "user", "pin"] });
    expect(h.events.some((e) => e.type === "token.issued" && e.subject === "admin")).toBe(true);
  });

  it("signs in with a discoverable credential (no username)", async () => {
    const { options, res } = await signIn(key1);
    expect(options.allowCredentials ?? []).toEqual([]);
    expect(res.status, res.text).toBe(200);
    expect(res.json.token_type).toBe("Bearer");
  });

  it("refuses a replayed login challenge", async () => {
    const { response, res } = await signIn(key1);
    expect(res.status).toBe(200);
    const replay = await c.post("/auth/webauthn/login/verify", { response });
    expectClearRefusal(replay);
    expect(replay.json.error).toBe("ERR_WEBAUTHN_CHALLENGE");
  });

  it("adds a second key with the session cookie", async () => {
    const noCookie = await c.post("/auth/webauthn/register/options", {}, { cookie: null });
    expectClearRefusal(noCookie, 401);

    const options = await c.post("/auth/webauthn/register/options", {});
    expect(options.status, options.text).toBe(200);
    const opts = options.json as PublicKeyCredentialCreationOptionsJSON;
    expect(opts.excludeCredentials?.map((x) => x.id)).toEqual([key1Id]);
    expect(() => key1.register(opts)).toThrow(/InvalidStateError/);
    const before = c.cookie;
    const verify = await c.post("/auth/webauthn/register/verify", {
      response: key2.register(opts),
      nickname: "Phone",
    });
    expect(verify.status, verify.text).toBe(200);
    expect(verify.json).toMatchObject({ nickname: "Phone", deviceBound: false });
    key2Id = verify.json.credentialId;
    expect(c.cookie).toBe(before); // adding a key does not change the sign-in

    const keys = await c.send("GET", "/api/me/keys");
    expect(keys.status).toBe(200);
    expect(keys.json.keys).toHaveLength(2);
    const [desk, phone] = keys.json.keys;
    expect(desk).toMatchObject({
      id: key1Id,
      nickname: "Desk key",
      deviceBound: true,
      type: "hardware-bound",
      suspended: false,
      current: true,
    });
    expect(desk.useCount).toBeGreaterThanOrEqual(3);
    expect(typeof desk.lastUsedAt).toBe("string");
    expect(phone).toMatchObject({
      id: key2Id,
      type: "synced",
      useCount: 0,
      lastUsedAt: null,
      current: false,
    });

    const page = await c.send("GET", "/keys");
    expect(page.text).not.toContain("You have only one key");
  });

  it("renames a key, refusing bad names, other people's keys and non-JSON writes", async () => {
    const renamed = await c.send("PATCH", `/api/me/keys/${key2Id}`, { json: { nickname: "  Pixel <8>  " } });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.json).toMatchObject({ id: key2Id, nickname: "Pixel <8>" });
    const page = await c.send("GET", "/keys");
    expect(page.text).toContain("Pixel &lt;8&gt;");
    expect(page.text).not.toContain("Pixel <8>");
    expect(h.events.some((e) => e.type === "credential.renamed" && e.credential === key2Id)).toBe(true);

    for (const nickname of ["", "   ", "x".repeat(65), "tab\there", 42, null]) {
      const bad = await c.send("PATCH", `/api/me/keys/${key2Id}`, { json: { nickname } });
      expectClearRefusal(bad);
    }
    const unknown = await c.send("PATCH", "/api/me/keys/not-a-key-of-yours", { json: { nickname: "x" } });
    expectClearRefusal(unknown, 404);
    const form = await c.send("PATCH", `/api/me/keys/${key2Id}`, {
      body: "nickname=evil",
      type: "application/x-www-form-urlencoded",
    });
    expectClearRefusal(form, 415);
    const plain = await c.send("PATCH", `/api/me/keys/${key2Id}`, {
      body: '{"nickname":"x"}',
      type: "text/plain",
    });
    expectClearRefusal(plain, 415);
    const none = await c.send("DELETE", `/api/me/keys/${key2Id}`);
    expectClearRefusal(none, 415);
  });

  it("removes a key, and refuses to remove the last one", async () => {
    // Without a tap, nothing is removed.
    const untapped = await c.send("DELETE", `/api/me/keys/${key2Id}`, { json: {} });
    expectClearRefusal(untapped, 403);
    expect(untapped.json.error).toBe("ERR_TAP_REQUIRED");
    const removed = await removeWithTap(c, key2Id, key1);
    expect(removed.status, removed.text).toBe(200);
    expect(removed.json).toEqual({ removed: key2Id, signedOut: false });
    expect(h.events.some((e) => e.type === "credential.removed" && e.credential === key2Id)).toBe(true);
    const last = await c.send("DELETE", `/api/me/keys/${key1Id}`, { json: {} });
    expectClearRefusal(last, 409);
    expect(last.json.error).toBe("ERR_LAST_KEY");
    expect(last.json.message).toMatch(/Add another key first/);
    // Nor is a tap even asked for.
    const lastOptions = await c.post(`/api/me/keys/${key1Id}/remove/options`, {});
    expectClearRefusal(lastOptions, 409);
    const keys = await c.send("GET", "/api/me/keys");
    expect(keys.json.keys.map((k: { id: string }) => k.id)).toEqual([key1Id]);
    // The removed key cannot sign in any more.
    const options = await c.post("/auth/webauthn/login/options", {});
    const response = key2.authenticate(options.json);
    const refused = await c.post("/auth/webauthn/login/verify", { response });
    expectClearRefusal(refused);
  });

  it("removing the key of the current session signs it out and revokes its tokens", async () => {
    const key3 = createSoftAuthenticator({ rpId: "localhost", origin: h.origin });
    const options = await c.post("/auth/webauthn/register/options", {});
    const verify = await c.post("/auth/webauthn/register/verify", { response: key3.register(options.json) });
    expect(verify.status, verify.text).toBe(200);
    expect(verify.json.nickname).toMatch(/^Key added \d{4}-\d{2}-\d{2}$/);
    const key3Id = verify.json.credentialId;

    const other = new Client(c.base);
    const { res } = await signIn(key3, "admin", other);
    expect(res.status).toBe(200);
    const removed = await removeWithTap(other, key3Id, key3);
    expect(removed.status, removed.text).toBe(200);
    expect(removed.json).toEqual({ removed: key3Id, signedOut: true });
    expect(removed.setCookie.some((s) => /^cg_session=;/.test(s))).toBe(true);
    expect(other.cookie).toBeUndefined();
    const refresh = await c.post("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: res.json.refresh_token,
      client_id: "cosmosgate-cli",
    });
    expect(refresh.status).toBe(400);
    expect(refresh.json.error).toBe("invalid_grant");
    expect(h.events.some((e) => e.type === "session.revoked" && e.credential === key3Id)).toBe(true);
  });

  it("does not accept a forged session cookie", async () => {
    const real = c.cookie!;
    const sid = real.slice(0, real.lastIndexOf("."));
    const forged = await c.send("GET", "/api/me", { cookie: `${sid}.${"A".repeat(43)}` });
    expectClearRefusal(forged, 401);
    expect(forged.setCookie.some((s) => /^cg_session=;/.test(s))).toBe(true);
    const unsigned = await c.send("GET", "/api/me", { cookie: sid });
    expectClearRefusal(unsigned, 401);
    c.cookie = real;
  });

  it("logs out: the session is revoked and the cookie cleared", async () => {
    const { res } = await signIn(key1, "admin");
    const refreshToken = res.json.refresh_token;
    const cookie = c.cookie!;
    const out = await c.post("/auth/logout", {});
    expect(out.status).toBe(200);
    expect(out.json).toEqual({ signedOut: true });
    expect(out.setCookie.some((s) => /^cg_session=;/.test(s))).toBe(true);
    const me = await c.send("GET", "/api/me", { cookie });
    expectClearRefusal(me, 401);
    const refresh = await c.post("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: "cosmosgate-cli",
    });
    expect(refresh.json.error).toBe("invalid_grant");
  });

  it("a disabled user's cookie stops working and they cannot sign in", async () => {
    const other = new Client(c.base);
    const { res } = await signIn(key1, "admin", other);
    expect(res.status).toBe(200);
    const user = h.identity.store.getUserByName("admin")!;
    h.identity.store.setUserDisabled(user.id, true);
    try {
      const me = await other.send("GET", "/api/me");
      expectClearRefusal(me, 401);
      const { res: refused } = await signIn(key1, "admin", other);
      expectClearRefusal(refused, 403);
      expect(refused.json.error).toBe("ERR_WEBAUTHN_USER_DISABLED");
      expect(refused.json.message).toMatch(/disabled/);
    } finally {
      h.identity.store.setUserDisabled(user.id, false);
    }
  });
});

describe("OAuth for the command line (authorization code + PKCE, loopback redirect)", () => {
  const redirectUri = "http://127.0.0.1:53682/callback";
  const authorizeQuery = (over: Record<string, string | undefined> = {}, challenge = pkce().challenge) => {
    const params: Record<string, string | undefined> = {
      response_type: "code",
      client_id: "cosmosgate-cli",
      redirect_uri: redirectUri,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "st-123",
      ...over,
    };
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, v);
    return `/oauth/authorize?${q}`;
  };

  /** Plays the authorization page: discoverable sign-in, then approve. Returns the code. */
  async function authorize(challenge: string, over: Record<string, string> = {}) {
    const options = await c.post("/auth/webauthn/login/options", {}, { cookie: null });
    const response = key1.authenticate(options.json);
    const approve = await c.post(
      "/oauth/authorize/approve",
      {
        authorize: {
          client_id: "cosmosgate-cli",
          redirect_uri: redirectUri,
          code_challenge: challenge,
          code_challenge_method: "S256",
          state: "st-123",
          ...over,
        },
        response,
      },
      { cookie: null },
    );
    expect(approve.status, approve.text).toBe(200);
    const to = new URL(approve.json.redirect_to);
    expect(`${to.origin}${to.pathname}`).toBe(redirectUri);
    expect(to.searchParams.get("state")).toBe("st-123");
    const code = to.searchParams.get("code")!;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    secrets.push(code);
    return code;
  }

  const exchange = (code: string, verifier: string, over: Record<string, string> = {}) =>
    c.post(
      "/oauth/token",
      {
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        client_id: "cosmosgate-cli",
        code_verifier: verifier,
        ...over,
      },
      { cookie: null },
    );
  const refresh = (token: string) =>
    c.post("/oauth/token", {
      grant_type: "refresh_token",
      refresh_token: token,
      client_id: "cosmosgate-cli",
    });

  it("renders the authorization page for a good request, escaping what it shows", async () => {
    const state = `"><script>alert(1)</script>`;
    const res = await c.send("GET", authorizeQuery({ state }));
    expect(res.status, res.text).toBe(200);
    expect(res.text).toContain(`Authorize the cosmosgate command line on localhost:${h.port}?`);
    expect(res.text).toContain("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(res.text).not.toContain("<script>alert(1)");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    for (const host of ["localhost:9000", "[::1]:9000", "127.0.0.1"]) {
      const ok = await c.send("GET", authorizeQuery({ redirect_uri: `http://${host}/cb` }));
      expect(ok.status, host).toBe(200);
    }
  });

  it("refuses bad authorization requests with a 400 page and no redirect", async () => {
    const cases: [Record<string, string | undefined>, RegExp][] = [
      [{ redirect_uri: "https://evil.example/cb" }, /redirect_uri/],
      [{ redirect_uri: "http://evil.example:53682/cb" }, /this computer/],
      [{ redirect_uri: "http://127.0.0.1.evil.example/cb" }, /this computer/],
      [{ redirect_uri: "http://user:pw@127.0.0.1:5/cb" }, /user name/],
      [{ redirect_uri: "not a url" }, /not a URL/],
      [{ redirect_uri: undefined }, /redirect_uri is missing/],
      [{ code_challenge_method: "plain" }, /only &quot;S256&quot;/],
      [{ code_challenge_method: undefined }, /code_challenge_method is missing/],
      [{ client_id: "someone-else" }, /unknown client_id/],
      [{ client_id: undefined }, /client_id is missing/],
      [{ code_challenge: "short" }, /43–128 base64url/],
      [{ code_challenge: undefined }, /code_challenge is missing/],
      [{ response_type: "token" }, /response_type/],
    ];
    for (const [over, why] of cases) {
      const res = await c.send("GET", authorizeQuery(over));
      expect(res.status, JSON.stringify(over)).toBe(400);
      expect(res.headers.get("location")).toBeNull();
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(res.text, JSON.stringify(over)).toMatch(why);
    }
    const twice = await c.send("GET", `${authorizeQuery()}&client_id=cosmosgate-cli`);
    expect(twice.status).toBe(400);
    expect(twice.text).toMatch(/more than once/);
  });

  it("exchanges a code with the right verifier once; a second use is refused and revokes the session", async () => {
    const { verifier, challenge } = pkce();
    const code = await authorize(challenge);
    const res = await c.send("POST", "/oauth/token", {
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: redirectUri,
        client_id: "cosmosgate-cli",
        code_verifier: verifier,
      }).toString(),
      type: "application/x-www-form-urlencoded",
      cookie: null,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.json).toMatchObject({ token_type: "Bearer", expires_in: 600 });
    expect(res.json.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    secrets.push(res.json.access_token, res.json.refresh_token);
    const jwks = await c.send("GET", "/.well-known/jwks.json");
    const { payload } = await jwtVerify(res.json.access_token, createLocalJWKSet(jwks.json), {
      issuer: h.origin,
    });
    expect(payload).toMatchObject({ sub: "admin", cred: key1Id });

    const reuse = await exchange(code, verifier);
    expect(reuse.status).toBe(400);
    expect(reuse.json.error).toBe("invalid_grant");
    expect(reuse.json.error_description).toMatch(/already used/);
    const afterReuse = await refresh(res.json.refresh_token);
    expect(afterReuse.json.error).toBe("invalid_grant");
  });

  it("refuses a wrong verifier (and the code is spent), a wrong redirect_uri, an expired code", async () => {
    const { verifier, challenge } = pkce();
    const code = await authorize(challenge);
    const wrong = await exchange(code, pkce().verifier);
    expect(wrong.status).toBe(400);
    expect(wrong.json).toMatchObject({ error: "invalid_grant" });
    expect(wrong.json.error_description).toMatch(/PKCE/);
    const right = await exchange(code, verifier);
    expect(right.json.error).toBe("invalid_grant");

    const code2 = await authorize(challenge);
    const elsewhere = await exchange(code2, verifier, { redirect_uri: "http://127.0.0.1:1/other" });
    expect(elsewhere.json.error).toBe("invalid_grant");
    expect(elsewhere.json.error_description).toMatch(/redirect_uri/);

    const code3 = await authorize(challenge);
    h.advance(61_000);
    try {
      const late = await exchange(code3, verifier);
      expect(late.json.error).toBe("invalid_grant");
    } finally {
      h.advance(-61_000);
    }
  });

  it("checks the token request itself: client, grant type, parameters", async () => {
    const { verifier, challenge } = pkce();
    const code = await authorize(challenge);
    const client = await exchange(code, verifier, { client_id: "other-client" });
    expect(client.status).toBe(401);
    expect(client.json.error).toBe("invalid_client");
    const unsupported = await c.post("/oauth/token", { grant_type: "password", client_id: "cosmosgate-cli" });
    expect(unsupported.status).toBe(400);
    expect(unsupported.json.error).toBe("unsupported_grant_type");
    const missing = await c.post("/oauth/token", { client_id: "cosmosgate-cli" });
    expect(missing.json.error).toBe("invalid_request");
    const badVerifier = await exchange(code, "short");
    expect(badVerifier.json).toMatchObject({ error: "invalid_request" });
    const twice = await c.send("POST", "/oauth/token", {
      body: "grant_type=refresh_token&grant_type=refresh_token&client_id=cosmosgate-cli",
      type: "application/x-www-form-urlencoded",
    });
    expect(twice.status).toBe(400);
    expect(twice.json.error).toBe("invalid_request");
    const typed = await c.post("/oauth/token", {
      grant_type: ["authorization_code"],
      client_id: "cosmosgate-cli",
    });
    expect(typed.json.error).toBe("invalid_request");
    // The code was not consumed by the refused requests above that failed before redemption.
    const ok = await exchange(code, verifier);
    expect(ok.status, ok.text).toBe(200);
  });

  it("rotates refresh tokens; reusing a spent one revokes the session, so the rotated one fails too", async () => {
    const { verifier, challenge } = pkce();
    const tokens = (await exchange(await authorize(challenge), verifier)).json;
    const first = await refresh(tokens.refresh_token);
    expect(first.status, first.text).toBe(200);
    expect(first.json.refresh_token).not.toBe(tokens.refresh_token);
    expect(first.json.access_token).not.toBe(tokens.access_token);
    const second = await refresh(first.json.refresh_token);
    expect(second.status).toBe(200);
    expect(h.events.some((e) => e.type === "token.refreshed")).toBe(true);

    const reuse = await refresh(first.json.refresh_token);
    expect(reuse.status).toBe(400);
    expect(reuse.json.error).toBe("invalid_grant");
    expect(reuse.json.error_description).toMatch(/already used/);
    const rotated = await refresh(second.json.refresh_token);
    expect(rotated.status).toBe(400);
    expect(rotated.json.error).toBe("invalid_grant");
    expect(rotated.json.error_description).toMatch(/revoked/);
  });

  it("revokes a refresh token (RFC 7009): 200 always, and the session ends", async () => {
    const { verifier, challenge } = pkce();
    const tokens = (await exchange(await authorize(challenge), verifier)).json;
    const revoked = await c.send("POST", "/oauth/revoke", {
      body: `token=${tokens.refresh_token}&token_type_hint=refresh_token`,
      type: "application/x-www-form-urlencoded",
    });
    expect(revoked.status).toBe(200);
    const after = await refresh(tokens.refresh_token);
    expect(after.json.error).toBe("invalid_grant");
    const unknown = await c.post("/oauth/revoke", { token: "unknown-token" });
    expect(unknown.status).toBe(200);
    const missing = await c.post("/oauth/revoke", {});
    expect(missing.status).toBe(400);
    expect(missing.json.error).toBe("invalid_request");
    expect(h.events.some((e) => e.type === "token.revoked")).toBe(true);
  });

  it("refuses an approval for an invalid request before looking at the key", async () => {
    const options = await c.post("/auth/webauthn/login/options", {});
    const response = key1.authenticate(options.json);
    const bad = await c.post("/oauth/authorize/approve", {
      authorize: {
        client_id: "cosmosgate-cli",
        redirect_uri: "https://evil.example/cb",
        code_challenge: pkce().challenge,
        code_challenge_method: "S256",
      },
      response,
    });
    expectClearRefusal(bad);
    expect(bad.json.error).toBe("ERR_BAD_AUTHORIZE_REQUEST");
    const missing = await c.post("/oauth/authorize/approve", { response });
    expectClearRefusal(missing);
    // The challenge was not used up: the same assertion still signs in.
    const ok = await c.post("/auth/webauthn/login/verify", { response });
    expect(ok.status).toBe(200);
  });
});

describe("malformed input is a 400 with a clear message, never a 500", () => {
  const jsonEndpoints = [
    "/auth/webauthn/register/options",
    "/auth/webauthn/register/verify",
    "/auth/webauthn/login/options",
    "/auth/webauthn/login/verify",
    "/oauth/authorize/approve",
    "/auth/logout",
  ];

  it("bad JSON, non-object bodies, prototype poisoning", async () => {
    for (const path of jsonEndpoints) {
      for (const body of ["{not json", '{"a":', "[1,2", '{"__proto__": {"admin": true}}']) {
        const res = await c.send("POST", path, { body, type: "application/json" });
        expectClearRefusal(res);
        expect(res.json.error, `${path} ${body}`).toBe("ERR_BAD_JSON");
      }
    }
    for (const path of jsonEndpoints.slice(0, 5)) {
      for (const body of ["[]", '"text"', "42", "true"]) {
        const res = await c.send("POST", path, { body, type: "application/json" });
        expectClearRefusal(res);
      }
    }
    const oauth = await c.send("POST", "/oauth/token", { body: "{oops", type: "application/json" });
    expect(oauth.status).toBe(400);
    expect(oauth.json).toMatchObject({ error: "invalid_request" });
    expect(typeof oauth.json.error_description).toBe("string");
  });

  it("wrong types", async () => {
    const cases: [string, unknown][] = [
      ["/auth/webauthn/register/options", { invite: 42 }],
      ["/auth/webauthn/register/options", { invite: ["a"] }],
      ["/auth/webauthn/register/options", { invite: "short" }],
      ["/auth/webauthn/register/options", { invite: "x".repeat(600) }],
      ["/auth/webauthn/login/options", { username: 42 }],
      ["/auth/webauthn/login/options", { username: { $ne: "" } }],
      ["/auth/webauthn/login/options", { username: "x".repeat(300) }],
      ["/auth/webauthn/register/verify", {}],
      ["/auth/webauthn/register/verify", { response: {}, nickname: 5 }],
      ["/auth/webauthn/login/verify", {}],
      ["/oauth/authorize/approve", { authorize: "yes", response: {} }],
      ["/oauth/authorize/approve", { authorize: { client_id: 1 }, response: {} }],
    ];
    for (const [path, body] of cases) {
      const res = await c.post(path, body);
      expectClearRefusal(res);
    }
  });

  it("garbage WebAuthn responses: bad base64url, bad CBOR, wrong shapes", async () => {
    const options = await c.post("/auth/webauthn/login/options", {});
    const good = key1.authenticate(options.json);
    const regOptions = await c.post("/auth/webauthn/register/options", {});
    const goodReg = createSoftAuthenticator({ rpId: "localhost", origin: h.origin }).register(
      regOptions.json,
    );
    const loginGarbage: unknown[] = [
      "garbage",
      42,
      [],
      {},
      { id: "x" },
      { ...good, response: "nope" },
      { ...good, response: { ...good.response, clientDataJSON: "!!!not base64url!!!" } },
      { ...good, response: { ...good.response, clientDataJSON: b64url(Buffer.from("not json")) } },
      { ...good, response: { ...good.response, authenticatorData: "%%%" } },
      { ...good, response: { ...good.response, authenticatorData: b64url(Buffer.from([1, 2, 3])) } },
      { ...good, response: { ...good.response, signature: 12 } },
      { ...good, id: 7 },
      { ...good, type: "password" },
    ];
    for (const response of loginGarbage) {
      const res = await c.post("/auth/webauthn/login/verify", { response });
      expectClearRefusal(res);
    }
    const regGarbage: unknown[] = [
      "garbage",
      {},
      { ...goodReg, response: { ...goodReg.response, attestationObject: "!!!" } },
      {
        ...goodReg,
        response: { ...goodReg.response, attestationObject: b64url(Buffer.from([0xff, 0x00, 0x13])) },
      },
      { ...goodReg, response: { ...goodReg.response, attestationObject: b64url(Buffer.from([0xa1, 0x63])) } },
      { ...goodReg, response: { ...goodReg.response, clientDataJSON: "e30" } },
    ];
    for (const response of regGarbage) {
      const res = await c.post("/auth/webauthn/register/verify", { response });
      expectClearRefusal(res);
    }
  });

  it("oversize bodies", async () => {
    const big = JSON.stringify({ username: "x".repeat(70 * 1024) });
    for (const path of [
      "/auth/webauthn/login/options",
      "/auth/webauthn/login/verify",
      "/oauth/authorize/approve",
    ]) {
      const res = await c.send("POST", path, { body: big, type: "application/json" });
      expectClearRefusal(res);
      expect(res.json.error).toBe("ERR_BODY_TOO_LARGE");
    }
    const form = await c.send("POST", "/oauth/token", {
      body: `grant_type=refresh_token&refresh_token=${"x".repeat(70 * 1024)}`,
      type: "application/x-www-form-urlencoded",
    });
    expect(form.status).toBe(400);
    expect(form.json.error).toBe("invalid_request");
  });

  it("content types other than JSON are refused with 415 (CSRF: a cross-site form cannot send JSON)", async () => {
    for (const path of jsonEndpoints) {
      for (const type of [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
      ]) {
        const res = await c.send("POST", path, { body: "a=b", type });
        expectClearRefusal(res, 415);
      }
      const none = await c.send("POST", path, { body: "" });
      expectClearRefusal(none, 415);
    }
    const text = await c.send("POST", "/oauth/token", { body: "grant_type=x", type: "text/plain" });
    expect(text.status).toBe(415);
    expect(text.json.error).toBe("invalid_request");
  });

  it("unknown routes are a JSON 404", async () => {
    const res = await c.send("GET", "/nope?secret=1");
    expectClearRefusal(res, 404);
    expect(res.json.message).not.toContain("secret");
  });
});

describe("discovery, keys and health", () => {
  it("publishes the JWKS with a bounded cache lifetime", async () => {
    const res = await c.send("GET", "/.well-known/jwks.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=600");
    expect(res.json.keys.length).toBeGreaterThanOrEqual(1);
    for (const k of res.json.keys) {
      expect(k).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
      expect(typeof k.kid).toBe("string");
      expect(k.d).toBeUndefined();
    }
  });

  it("publishes the discovery document", async () => {
    for (const path of ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]) {
      const res = await c.send("GET", path);
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({
        issuer: h.origin,
        authorization_endpoint: `${h.origin}/oauth/authorize`,
        token_endpoint: `${h.origin}/oauth/token`,
        revocation_endpoint: `${h.origin}/oauth/revoke`,
        jwks_uri: `${h.origin}/.well-known/jwks.json`,
        code_challenge_methods_supported: ["S256"],
        grant_types_supported: [
          "authorization_code",
          "refresh_token",
          "urn:ietf:params:oauth:grant-type:token-exchange",
          "client_credentials",
        ],
      });
    }
  });

  it("answers /healthz from deps.health()", async () => {
    const res = await c.send("GET", "/healthz");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: "ok", test: true });
  });
});

describe("a control plane whose public URL is https", () => {
  it("marks the session cookie Secure", async () => {
    const tls = await startControlPlane({ scheme: "https" });
    try {
      const client = new Client(`http://127.0.0.1:${tls.port}`);
      const key = createSoftAuthenticator({ rpId: "localhost", origin: tls.origin });
      const options = await client.post("/auth/webauthn/register/options", { invite: tls.adminInvite() });
      const verify = await client.post("/auth/webauthn/register/verify", {
        response: key.register(options.json),
      });
      expect(verify.status, verify.text).toBe(200);
      expect(verify.setCookie.find((x) => x.startsWith("cg_session="))).toMatch(/;\s*Secure/i);
      const { res } = await signIn(key, undefined, client);
      expect(res.setCookie.find((x) => x.startsWith("cg_session="))).toMatch(/;\s*Secure/i);
      const out = await client.post("/auth/logout", {});
      expect(out.setCookie.find((x) => x.startsWith("cg_session="))).toMatch(/;\s*Secure/i);
    } finally {
      await tls.close();
    }
  });
});

describe("logging", () => {
  it("never logs invites, codes, tokens or cookies, and logs no 500s", () => {
    const all = h.logs.join("\n");
    expect(h.logs.length).toBeGreaterThan(10);
    expect(secrets.length).toBeGreaterThan(10);
    for (const secret of secrets) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/"status":5\d\d/);
    expect(all).not.toContain("?invite=");
  });
});
