import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportSPKI, SignJWT } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TokenError, type TokenErrorCode } from "../errors.js";
import { parseAuthorization } from "./authorization.js";
import { createTestIssuer, encodeSegment, type TestIssuer } from "./testing.js";
import { createTokenVerifier, type TokenVerifier } from "./verify.js";

const T0 = 1_750_000_000_000; // a fixed "now", ms
let now = T0;
const clock = () => now;
const nowSec = () => Math.floor(now / 1000);

let dir: string;
let es: TestIssuer; // ES256, defaults
let rs: TestIssuer; // RS256, subjectClaim oid, rolesClaim groups, kind service
let verifier: TokenVerifier;

function makeVerifier(extra: Partial<Parameters<typeof createTokenVerifier>[0]> = {}) {
  return createTokenVerifier({
    issuers: [
      es.config,
      { ...rs.config, subjectClaim: "oid", rolesClaim: "groups", kind: "service", name: "Test Entra" },
    ],
    clock,
    ...extra,
  });
}

async function refused(promise: Promise<unknown>, code: TokenErrorCode, token?: string): Promise<TokenError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenError);
  const tokenError = error as TokenError;
  expect(tokenError.code, tokenError.message).toBe(code);
  if (token !== undefined && token.length > 0) {
    expect(tokenError.message).not.toContain(token);
    const signature = token.slice(token.lastIndexOf(".") + 1);
    if (signature.length > 8) expect(tokenError.message).not.toContain(signature);
  }
  return tokenError;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-verify-"));
  es = await createTestIssuer({ dir, alg: "ES256", issuer: "https://idp.test.invalid", clock });
  rs = await createTestIssuer({
    dir,
    alg: "RS256",
    issuer: "https://login.microsoftonline.com/tenant/v2.0",
    audience: "api://cosmosgate",
    clock,
  });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  now = T0;
  verifier = makeVerifier();
});

describe("createTokenVerifier: accepted tokens", () => {
  it("maps an ES256 token's claims to a frozen Principal", async () => {
    const token = await es.sign({
      roles: ["readers", "writers"],
      name: "Ada",
      preferred_username: "ada@example.com",
      cred: "cred-1",
      sid: "sess-1",
      amr: ["hwk", "user"],
      auth_time: nowSec() - 60,
      jti: "jti-1",
    });
    const principal = await verifier.verify(token);
    expect(principal).toEqual({
      sub: "user-1",
      kind: "user",
      groups: ["readers", "writers"],
      issuer: es.issuer,
      name: "Ada",
      credential: "cred-1",
      session: "sess-1",
      amr: ["hwk", "user"],
      authTime: nowSec() - 60,
      jti: "jti-1",
      exp: nowSec() + 600,
    });
    expect(Object.isFrozen(principal)).toBe(true);
    expect(Object.isFrozen(principal.groups)).toBe(true);
    expect(Object.isFrozen(principal.amr)).toBe(true);
  });

  it("uses subjectClaim, rolesClaim and kind of an RS256 issuer", async () => {
    const token = await rs.sign({
      sub: "pairwise",
      oid: "object-id",
      groups: "g1",
      preferred_username: "bob",
    });
    const principal = await verifier.verify(token);
    expect(principal.sub).toBe("object-id");
    expect(principal.groups).toEqual(["g1"]);
    expect(principal.kind).toBe("service");
    expect(principal.name).toBe("bob");
    expect(principal.issuer).toBe(rs.issuer);
  });

  it("gives no groups when the roles claim is absent, and takes a single amr string as a list", async () => {
    expect((await verifier.verify(await es.sign())).groups).toEqual([]);
    expect((await verifier.verify(await es.sign({ amr: "hwk" }))).amr).toEqual(["hwk"]);
  });

  it("makes a token with act an agent acting for sub", async () => {
    const principal = await verifier.verify(await es.sign({ act: { sub: "agent-7" } }));
    expect(principal.kind).toBe("agent");
    expect(principal.sub).toBe("user-1");
    expect(principal.actor).toEqual({ sub: "agent-7" });
  });

  it("accepts tokens from every accepted Authorization form", async () => {
    const token = await es.sign();
    const headers = [
      `type=aad&ver=1.0&sig=${token}`,
      encodeURIComponent(`type=aad&ver=1.0&sig=${token}`),
      `Bearer ${token}`,
      `bearer ${token}`,
    ];
    for (const header of headers) {
      expect((await verifier.verify(parseAuthorization(header))).sub).toBe("user-1");
    }
  });

  it("honours the audience list and a required typ", async () => {
    const v = createTokenVerifier({
      issuers: [{ ...es.config, audience: ["a1", "a2"], typ: "at+jwt" }],
      clock,
    });
    expect((await v.verify(await es.sign({ aud: ["x", "a2"] }, { typ: "at+jwt" }))).sub).toBe("user-1");
    const e = await refused(v.verify(await es.sign({ aud: "a1" }, { typ: "JWT" })), "ERR_TOKEN_CLAIMS");
    expect(e.message).toContain("at+jwt");
  });
});

describe("createTokenVerifier: clock skew (30 s) both ways", () => {
  it("accepts exp up to 30 s in the past and refuses beyond", async () => {
    await expect(verifier.verify(await es.sign({ exp: nowSec() - 29 }))).resolves.toBeDefined();
    const token = await es.sign({ exp: nowSec() - 31 });
    const e = await refused(verifier.verify(token), "ERR_TOKEN_EXPIRED", token);
    expect(e.message).toMatch(/expired at \d{4}-/);
  });

  it("accepts nbf up to 30 s in the future and refuses beyond", async () => {
    await expect(verifier.verify(await es.sign({ nbf: nowSec() + 29 }))).resolves.toBeDefined();
    const token = await es.sign({ nbf: nowSec() + 31 });
    await refused(verifier.verify(token), "ERR_TOKEN_NOT_YET_VALID", token);
  });

  it("accepts iat up to 30 s in the future and refuses beyond (jose does not without maxTokenAge)", async () => {
    await expect(verifier.verify(await es.sign({ iat: nowSec() + 29 }))).resolves.toBeDefined();
    const token = await es.sign({ iat: nowSec() + 31 });
    await refused(verifier.verify(token), "ERR_TOKEN_NOT_YET_VALID", token);
  });

  it("follows clockSkewSeconds", async () => {
    const strict = makeVerifier({ clockSkewSeconds: 0 });
    await refused(strict.verify(await es.sign({ exp: nowSec() - 1 })), "ERR_TOKEN_EXPIRED");
    await refused(strict.verify(await es.sign({ iat: nowSec() + 1 })), "ERR_TOKEN_NOT_YET_VALID");
  });
});

describe("createTokenVerifier: attacks and bad tokens", () => {
  it("refuses alg none (hand-built), with or without a trusted issuer", async () => {
    const payload = { iss: es.issuer, aud: es.audience, sub: "admin", iat: nowSec(), exp: nowSec() + 600 };
    const token = `eyJhbGciOiJub25lIn0.${encodeSegment(payload)}.`;
    await refused(verifier.verify(token), "ERR_TOKEN_ALGORITHM", token);
    const noIss = `eyJhbGciOiJub25lIn0.${encodeSegment({ sub: "admin" })}.`;
    await refused(verifier.verify(noIss), "ERR_TOKEN_ALGORITHM");
    const typed = `${encodeSegment({ alg: "none", typ: "JWT" })}.${encodeSegment(payload)}.`;
    await refused(verifier.verify(typed), "ERR_TOKEN_ALGORITHM");
  });

  it("refuses HS256 signed with the issuer's public key bytes (key confusion)", async () => {
    for (const issuer of [rs, es]) {
      const secret = new TextEncoder().encode(await exportSPKI(issuer.publicKey));
      const token = await new SignJWT({
        iss: issuer.issuer,
        aud: issuer.audience,
        sub: "admin",
        oid: "admin",
      })
        .setProtectedHeader({ alg: "HS256", kid: issuer.kid })
        .setIssuedAt(nowSec())
        .setExpirationTime(nowSec() + 600)
        .sign(secret);
      await refused(verifier.verify(token), "ERR_TOKEN_ALGORITHM", token);
    }
  });

  it("refuses an algorithm not allowed for that issuer", async () => {
    const v = createTokenVerifier({ issuers: [{ ...es.config, algorithms: ["RS256"] }], clock });
    const e = await refused(v.verify(await es.sign()), "ERR_TOKEN_ALGORITHM");
    expect(e.message).toContain("RS256");
  });

  it("refuses a wrong or missing audience", async () => {
    const token = await es.sign({ aud: "https://graph.microsoft.com" });
    const e = await refused(verifier.verify(token), "ERR_TOKEN_AUDIENCE", token);
    expect(e.message).toContain("graph.microsoft.com");
    expect(e.message).toContain(es.audience);
    await refused(verifier.verify(await es.sign({ aud: undefined })), "ERR_TOKEN_AUDIENCE");
  });

  it("refuses an untrusted or missing issuer, naming it and the trusted ones", async () => {
    const token = await es.sign({ iss: "https://evil.example" });
    const e = await refused(verifier.verify(token), "ERR_TOKEN_ISSUER", token);
    expect(e.message).toContain('"https://evil.example"');
    expect(e.message).toContain(es.issuer);
    expect(e.message).toContain(rs.issuer);
    await refused(verifier.verify(await es.sign({ iss: undefined })), "ERR_TOKEN_ISSUER");
    await refused(verifier.verify(await es.sign({ iss: 42 })), "ERR_TOKEN_ISSUER");
  });

  it("refuses a token that claims another trusted issuer than its signer", async () => {
    // Signed by the ES256 issuer's key but claiming the RS256 issuer: algorithm not allowed there.
    await refused(verifier.verify(await es.sign({ iss: rs.issuer, oid: "x" })), "ERR_TOKEN_ALGORITHM");
    // Same algorithm family: a second ES256 issuer whose key set lacks the kid.
    const other = await createTestIssuer({ dir, issuer: "https://other.test.invalid", clock });
    const v = createTokenVerifier({ issuers: [es.config, other.config], clock });
    await refused(v.verify(await es.sign({ iss: other.issuer })), "ERR_TOKEN_UNKNOWN_KEY");
  });

  it("refuses an unknown kid", async () => {
    const token = await es.sign({}, { kid: "not-a-key" });
    const e = await refused(verifier.verify(token), "ERR_TOKEN_UNKNOWN_KEY", token);
    expect(e.message).toContain('"not-a-key"');
  });

  it("refuses a signature by another key under the issuer's kid", async () => {
    const impostor = await createTestIssuer({ dir, issuer: es.issuer, kid: es.kid, clock });
    const token = await impostor.sign();
    await refused(verifier.verify(token), "ERR_TOKEN_SIGNATURE", token);
  });

  it("refuses a tampered payload (re-encoded, signature kept)", async () => {
    for (const issuer of [es, rs]) {
      const token = await issuer.sign({ roles: ["readers"], oid: "o" });
      const [header, payload, signature] = token.split(".");
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
      const tampered = `${header}.${encodeSegment({ ...claims, roles: ["admins"], sub: "admin", oid: "admin" })}.${signature}`;
      await refused(verifier.verify(tampered), "ERR_TOKEN_SIGNATURE", tampered);
    }
  });

  it("hints at the Microsoft Graph mistake when the header carries a nonce", async () => {
    const token = await rs.sign({ oid: "o" }, { nonce: "abc" });
    const [header, payload, signature] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const tampered = `${header}.${encodeSegment({ ...claims, x: 1 })}.${signature}`;
    const e = await refused(verifier.verify(tampered), "ERR_TOKEN_SIGNATURE");
    expect(e.message).toContain(".default");
  });

  it("refuses missing or mistyped required claims", async () => {
    await refused(verifier.verify(await es.sign({ sub: undefined })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ exp: undefined })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ iat: undefined })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await rs.sign({ oid: undefined })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ sub: "" })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ sub: 7 })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ exp: "tomorrow" })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ iat: "now" })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ roles: 1 })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ roles: ["a", 2] })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ amr: [1] })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ act: "agent" })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ act: {} })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ auth_time: "x" })), "ERR_TOKEN_CLAIMS");
    await refused(verifier.verify(await es.sign({ cred: 5 })), "ERR_TOKEN_CLAIMS");
  });

  it("refuses garbage, non-JWTs, JWEs and oversized tokens as malformed", async () => {
    const junk = [
      "",
      "abc",
      "a.b",
      "a.b.c.d",
      "..",
      "a..c",
      "é.é.é",
      "a b.c.d",
      "%%%.%%%.%%%",
      `${encodeSegment("not json")}.${encodeSegment({ iss: es.issuer })}.sig`,
      `${encodeSegment({ alg: "ES256" })}.${encodeSegment("[1,2]")}.sig`,
      `${encodeSegment({ alg: "ES256" })}.${encodeSegment("not json")}.sig`,
      `${encodeSegment({ alg: 5 })}.${encodeSegment({ iss: es.issuer })}.sig`,
      "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
      `eyJhbGciOiJFUzI1NiJ9.${"A".repeat(20_000)}.sig`,
    ];
    for (const token of junk) await refused(verifier.verify(token), "ERR_TOKEN_MALFORMED", token);
    await refused(verifier.verify(undefined as unknown as string), "ERR_TOKEN_MALFORMED");
  });

  it("refuses a valid signature over a payload that is not JSON", async () => {
    const { CompactSign } = await import("jose");
    const token = await new CompactSign(new TextEncoder().encode("hello"))
      .setProtectedHeader({ alg: "ES256", kid: es.kid })
      .sign(es.privateKey);
    await refused(verifier.verify(token), "ERR_TOKEN_MALFORMED", token);
  });
});

describe("createTokenVerifier: verified-token cache", () => {
  it("answers a second time from the cache without touching the key set", async () => {
    const token = await es.sign();
    expect(verifier.verifyCached(token)).toBeUndefined();
    const first = await verifier.verify(token);
    expect(verifier.stats()).toMatchObject({ keyLookups: 1, misses: 1, hits: 0, size: 1 });
    expect(verifier.verifyCached(token)).toBe(first);
    expect(await verifier.verify(token)).toBe(first);
    expect(verifier.stats()).toMatchObject({ keyLookups: 1, misses: 1, hits: 2, size: 1 });
  });

  it("reports each full verification's result to onVerified, and nothing for cache hits", async () => {
    const results: string[] = [];
    const v = makeVerifier({ onVerified: (r) => results.push(r) });
    const token = await es.sign();
    await Promise.all([v.verify(token), v.verify(token)]);
    expect(v.verifyCached(token)).toBeDefined();
    await v.verify(token);
    await refused(v.verify(await es.sign({ exp: nowSec() - 3600 })), "ERR_TOKEN_EXPIRED");
    await refused(v.verify(""), "ERR_TOKEN_MALFORMED");
    expect(results).toEqual(["valid", "ERR_TOKEN_EXPIRED", "ERR_TOKEN_MALFORMED"]);
    expect(v.stats()).toMatchObject({ hits: 2 });
  });

  it("shares one verification among concurrent calls", async () => {
    const token = await es.sign();
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => verifier.verify(token)));
    expect(new Set(results).size).toBe(1);
    expect(verifier.stats().keyLookups).toBe(1);
  });

  it("expires an entry at exactly exp by the injected clock", async () => {
    const token = await es.sign({ exp: nowSec() + 60 });
    const principal = await verifier.verify(token);
    now = principal.exp * 1000 - 1;
    expect(verifier.verifyCached(token)).toBe(principal);
    now = principal.exp * 1000;
    expect(verifier.verifyCached(token)).toBeUndefined();
    // Within the skew a full verification still accepts it, but does not cache it.
    await expect(verifier.verify(token)).resolves.toEqual(principal);
    expect(verifier.stats().keyLookups).toBe(2);
    expect(verifier.verifyCached(token)).toBeUndefined();
    now = principal.exp * 1000 + 31_000;
    await refused(verifier.verify(token), "ERR_TOKEN_EXPIRED", token);
  });

  it("never caches a refusal", async () => {
    const token = await es.sign({ aud: "other" });
    await refused(verifier.verify(token), "ERR_TOKEN_AUDIENCE");
    await refused(verifier.verify(token), "ERR_TOKEN_AUDIENCE");
    expect(verifier.verifyCached(token)).toBeUndefined();
    expect(verifier.stats().size).toBe(0);
  });

  it("is bounded, evicting the oldest entry", async () => {
    const v = makeVerifier({ cacheSize: 2 });
    const tokens = [await es.sign({ jti: "1" }), await es.sign({ jti: "2" }), await es.sign({ jti: "3" })];
    for (const token of tokens) await v.verify(token);
    expect(v.stats()).toMatchObject({ size: 2, evictions: 1 });
    expect(v.verifyCached(tokens[0])).toBeUndefined();
    expect(v.verifyCached(tokens[2])?.jti).toBe("3");
  });

  it("can be disabled with cacheSize 0", async () => {
    const v = makeVerifier({ cacheSize: 0 });
    const token = await es.sign();
    await v.verify(token);
    await v.verify(token);
    expect(v.stats()).toMatchObject({ size: 0, keyLookups: 2 });
  });

  it("drops entries by revoke(predicate) and clear()", async () => {
    const a = await es.sign({ sub: "a", sid: "s1" });
    const b = await es.sign({ sub: "b", sid: "s2" });
    await verifier.verify(a);
    await verifier.verify(b);
    expect(verifier.revoke((p) => p.session === "s1")).toBe(1);
    expect(verifier.verifyCached(a)).toBeUndefined();
    expect(verifier.verifyCached(b)?.sub).toBe("b");
    verifier.clear();
    expect(verifier.verifyCached(b)).toBeUndefined();
  });

  it("does not cache a verification that was in flight across clear()", async () => {
    const token = await es.sign();
    const pending = verifier.verify(token);
    verifier.clear();
    await pending;
    expect(verifier.verifyCached(token)).toBeUndefined();
  });

  it("returns undefined from verifyCached for anything, never throws", () => {
    for (const s of ["", "x", "a.b.c", "x".repeat(20_000)]) expect(verifier.verifyCached(s)).toBeUndefined();
  });
});

describe("createTokenVerifier: keys", () => {
  it("reload() picks up a rotated JWKS file and empties the cache", async () => {
    const rotDir = await mkdtemp(join(tmpdir(), "cosmosgate-rotate-"));
    try {
      const oldKey = await createTestIssuer({ dir: rotDir, clock, kid: "old" });
      const newKey = await createTestIssuer({ dir: rotDir, clock, kid: "new" });
      const file = join(rotDir, "jwks.json");
      await writeFile(file, JSON.stringify(oldKey.jwks));
      const v = createTokenVerifier({ issuers: [{ ...oldKey.config, jwks: { file } }], clock });
      await v.ready();
      const oldToken = await oldKey.sign();
      await v.verify(oldToken);
      await refused(v.verify(await newKey.sign()), "ERR_TOKEN_UNKNOWN_KEY");

      await writeFile(file, JSON.stringify(newKey.jwks));
      await v.reload();
      expect(v.verifyCached(oldToken)).toBeUndefined();
      await refused(v.verify(oldToken), "ERR_TOKEN_UNKNOWN_KEY");
      await expect(v.verify(await newKey.sign())).resolves.toBeDefined();

      // A failed reload keeps the keys in use.
      await writeFile(file, "{broken");
      await refused(v.reload(), "ERR_TOKEN_KEYS_UNAVAILABLE");
      await expect(v.verify(await newKey.sign({ jti: "after" }))).resolves.toBeDefined();
    } finally {
      await rm(rotDir, { recursive: true, force: true });
    }
  });

  it("refuses with ERR_TOKEN_KEYS_UNAVAILABLE when the JWKS file cannot be loaded", async () => {
    const v = createTokenVerifier({
      issuers: [{ ...es.config, jwks: { file: join(dir, "missing.json") } }],
      clock,
    });
    const token = await es.sign();
    const e = await refused(v.verify(token), "ERR_TOKEN_KEYS_UNAVAILABLE", token);
    expect(e.message).toContain("missing.json");
    await refused(v.ready(), "ERR_TOKEN_KEYS_UNAVAILABLE");
  });

  it("rejects configuration mistakes at construction", () => {
    expect(() => createTokenVerifier({ issuers: [es.config, es.config] })).toThrow(/listed twice/);
    expect(() => createTokenVerifier({ issuers: [{ ...es.config, algorithms: ["HS256"] }] })).toThrow(
      TypeError,
    );
    expect(() => createTokenVerifier({ issuers: [es.config], clockSkewSeconds: -1 })).toThrow(TypeError);
    expect(() => createTokenVerifier({ issuers: [es.config], cacheSize: -1 })).toThrow(TypeError);
  });

  it("refuses every token when no issuer is configured", async () => {
    const v = createTokenVerifier({ issuers: [], clock });
    const e = await refused(v.verify(await es.sign()), "ERR_TOKEN_ISSUER");
    expect(e.message).toContain("none are configured");
  });
});
