import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JSONWebKeySet } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TokenError } from "../errors.js";
import { createIssuerKeyResolver, resolveIssuerConfig } from "./issuers.js";
import { createTestIssuer, type TestIssuer } from "./testing.js";
import { createTokenVerifier } from "./verify.js";

let dir: string;
let idp: TestIssuer;
let rotated: TestIssuer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-issuers-"));
  idp = await createTestIssuer({ dir, issuer: "https://idp.test.invalid", kid: "k1" });
  rotated = await createTestIssuer({ dir, issuer: "https://idp.test.invalid", kid: "k2" });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A JWKS endpoint on 127.0.0.1 whose answer the test controls. */
interface JwksServer {
  url: string;
  requests: number;
  respond: (res: import("node:http").ServerResponse) => void;
  server: Server;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serveJwks(jwks: JSONWebKeySet): Promise<JwksServer> {
  const state: JwksServer = {
    url: "",
    requests: 0,
    respond: (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(jwks));
    },
    server: createServer((_req, res) => {
      state.requests++;
      state.respond(res);
    }),
  };
  servers.push(state.server);
  await new Promise<void>((resolve) => state.server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/keys`;
  return state;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenError);
  return (error as TokenError).code;
}

describe("resolveIssuerConfig", () => {
  const base = { issuer: "https://idp.test", audience: "aud", jwks: { file: "/x.json" } };

  it("applies the defaults", () => {
    expect(resolveIssuerConfig(base)).toEqual({
      issuer: "https://idp.test",
      audience: ["aud"],
      jwks: { file: "/x.json" },
      algorithms: ["RS256", "ES256"],
      subjectClaim: "sub",
      groupsClaims: ["roles"],
      groups: [],
      requirements: [],
      refuseGroupsOverage: false,
      exchange: false,
      kind: "user",
      name: "https://idp.test",
      typ: undefined,
      flavor: "custom",
      tenant: undefined,
    });
  });

  it("refuses symmetric, none and unknown algorithms", () => {
    for (const alg of ["HS256", "HS512", "none", "RS1", ""]) {
      expect(() => resolveIssuerConfig({ ...base, algorithms: [alg] })).toThrow(/not allowed/);
    }
    expect(() => resolveIssuerConfig({ ...base, algorithms: [] })).toThrow(TypeError);
  });

  it("refuses bad issuer, audience, jwks and kind", () => {
    expect(() => resolveIssuerConfig({ ...base, issuer: "" })).toThrow(/issuer/);
    expect(() => resolveIssuerConfig({ ...base, audience: [] })).toThrow(/audience/);
    expect(() => resolveIssuerConfig({ ...base, jwks: {} as never })).toThrow(/jwks/);
    expect(() => resolveIssuerConfig({ ...base, jwks: { file: "a", url: "https://b" } as never })).toThrow(
      /jwks/,
    );
    expect(() => resolveIssuerConfig({ ...base, jwks: { url: "not a url" } })).toThrow(/not a URL/);
    expect(() => resolveIssuerConfig({ ...base, jwks: { url: "http://idp.example/keys" } })).toThrow(/https/);
    expect(() => resolveIssuerConfig({ ...base, kind: "agent" as never })).toThrow(/kind/);
    expect(resolveIssuerConfig({ ...base, jwks: { url: "http://127.0.0.1:9/keys" } }).jwks).toBeDefined();
  });
});

describe("createIssuerKeyResolver: file", () => {
  it("reads the file once, on first use", async () => {
    const keys = createIssuerKeyResolver(idp.config);
    expect(keys.stats().loads).toBe(0);
    const v = createTokenVerifier({ issuers: [idp.config] });
    await v.verify(await idp.sign());
    await keys.load();
    await keys.load();
    expect(keys.stats().loads).toBe(1);
  });

  it("refuses a JWKS file holding private or symmetric keys", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateFile = join(dir, "private.json");
    await writeFile(privateFile, JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: "p" }] }));
    const octFile = join(dir, "oct.json");
    await writeFile(octFile, JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "s" }] }));
    for (const file of [privateFile, octFile, join(dir, "absent.json")]) {
      const keys = createIssuerKeyResolver({ ...idp.config, jwks: { file } });
      await expect(keys.load()).rejects.toMatchObject({ code: "ERR_TOKEN_KEYS_UNAVAILABLE" });
    }
  });

  it("after a failed first load, refuses without I/O until retryAfterMs has passed", async () => {
    let now = 0;
    const file = join(dir, "late.json");
    const keys = createIssuerKeyResolver(
      { ...idp.config, jwks: { file } },
      { clock: () => now, retryAfterMs: 1000 },
    );
    const header = { alg: "ES256", kid: "k1" };
    const token = { payload: "", signature: "" };
    expect(await codeOf(keys.getKey(header, token))).toBe("ERR_TOKEN_KEYS_UNAVAILABLE");
    await writeFile(file, JSON.stringify(idp.jwks));
    now = 999;
    expect(await codeOf(keys.getKey(header, token))).toBe("ERR_TOKEN_KEYS_UNAVAILABLE");
    expect(keys.stats().loads).toBe(1);
    now = 1000;
    await expect(keys.getKey(header, token)).resolves.toBeDefined();
    expect(keys.stats().loads).toBe(2);
  });
});

describe("createIssuerKeyResolver: url", () => {
  it("verifies tokens against a JWKS served over HTTP, fetched once", async () => {
    const jwks = await serveJwks(idp.jwks);
    const v = createTokenVerifier({ issuers: [{ ...idp.config, jwks: { url: jwks.url } }] });
    await v.ready();
    expect((await v.verify(await idp.sign({ jti: "a" }))).sub).toBe("user-1");
    expect((await v.verify(await idp.sign({ jti: "b" }))).sub).toBe("user-1");
    expect(jwks.requests).toBe(1);
  });

  it("refetches on an unknown kid after the cooldown, picking up a rotated key", async () => {
    const jwks = await serveJwks(idp.jwks);
    const v = createTokenVerifier({
      issuers: [{ ...idp.config, jwks: { url: jwks.url, cooldownDuration: 0 } }],
    });
    await v.verify(await idp.sign());
    jwks.respond = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [...idp.jwks.keys, ...rotated.jwks.keys] }));
    };
    expect((await v.verify(await rotated.sign())).sub).toBe("user-1");
    expect(jwks.requests).toBe(2);
  });

  it("refuses an unknown kid within the cooldown without refetching", async () => {
    const jwks = await serveJwks(idp.jwks);
    const v = createTokenVerifier({ issuers: [{ ...idp.config, jwks: { url: jwks.url } }] });
    await v.verify(await idp.sign());
    expect(await codeOf(v.verify(await rotated.sign()))).toBe("ERR_TOKEN_UNKNOWN_KEY");
    expect(jwks.requests).toBe(1);
  });

  it("maps an HTTP error, bad JSON and a timeout to ERR_TOKEN_KEYS_UNAVAILABLE", async () => {
    const failing = await serveJwks(idp.jwks);
    failing.respond = (res) => {
      res.writeHead(500);
      res.end("oops");
    };
    const badJson = await serveJwks(idp.jwks);
    badJson.respond = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{not json");
    };
    const silent = await serveJwks(idp.jwks);
    silent.respond = () => {}; // never answers
    for (const source of [
      { url: failing.url },
      { url: badJson.url },
      { url: silent.url, timeoutDuration: 100 },
      { url: "http://127.0.0.1:1/keys" },
    ]) {
      const v = createTokenVerifier({ issuers: [{ ...idp.config, jwks: source }] });
      const token = await idp.sign();
      const error = await v.verify(token).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TokenError);
      expect((error as TokenError).code).toBe("ERR_TOKEN_KEYS_UNAVAILABLE");
      expect((error as TokenError).message).not.toContain(token);
      expect(await codeOf(v.ready())).toBe("ERR_TOKEN_KEYS_UNAVAILABLE");
    }
  });

  it("does not refetch on every request while the issuer is down", async () => {
    const start = Date.now();
    let now = start;
    const jwks = await serveJwks(idp.jwks);
    jwks.respond = (res) => {
      res.writeHead(503);
      res.end();
    };
    const v = createTokenVerifier({
      issuers: [{ ...idp.config, jwks: { url: jwks.url } }],
      clock: () => now,
    });
    for (let i = 0; i < 5; i++) {
      expect(await codeOf(v.verify(await idp.sign({ jti: String(i) })))).toBe("ERR_TOKEN_KEYS_UNAVAILABLE");
    }
    expect(jwks.requests).toBe(1);
    now = start + 5000;
    jwks.respond = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(idp.jwks));
    };
    expect((await v.verify(await idp.sign({ jti: "up" }))).sub).toBe("user-1");
    expect(jwks.requests).toBe(2);
  });
});
