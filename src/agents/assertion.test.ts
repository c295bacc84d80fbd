import { createHmac, randomUUID } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ASSERTION_CLOCK_SKEW_S,
  type AssertionExpectations,
  type JtiStore,
  MAX_ASSERTION_LIFETIME_S,
  verifyClientAssertion,
} from "./assertion.js";
import type { PublicKeyJwk } from "./grants.js";

const GRANT = "gr_AAAAAAAAAAAAAAAAAAAAAA";
const AUD = "https://gate.example.com/oauth/token";
const NOW = Date.UTC(2026, 0, 1, 12);
const nowS = Math.floor(NOW / 1000);

/** A jti store in memory, bounded like the real one. */
function memoryJtis(max = 1000): JtiStore & { size(): number } {
  const seen = new Map<string, number>();
  return {
    useJti(grantId, jti, expiresAt, now) {
      for (const [k, exp] of seen) if (exp <= now) seen.delete(k);
      const key = `${grantId} ${jti}`;
      if (seen.has(key)) return "replayed";
      if (seen.size >= max) return "full";
      seen.set(key, expiresAt);
      return "ok";
    },
    size: () => seen.size,
  };
}

let privateKey: CryptoKey;
let publicKey: PublicKeyJwk;
let thumbprint: string;

beforeAll(async () => {
  const pair = await generateKeyPair("ES256");
  privateKey = pair.privateKey as CryptoKey;
  const { kty, crv, x, y } = await exportJWK(pair.publicKey);
  publicKey = { kty: kty as "EC", crv: crv as "P-256", x: x as string, y: y as string };
  thumbprint = await calculateJwkThumbprint(publicKey, "sha256");
});

function sign(
  over: {
    iat?: number;
    exp?: number;
    iss?: string;
    sub?: string;
    aud?: string;
    jti?: string | null;
    nbf?: number;
  } = {},
  header: Record<string, unknown> = {},
  key: CryptoKey = privateKey,
) {
  const iat = over.iat ?? nowS;
  const jwt = new SignJWT({ ...(over.nbf !== undefined ? { nbf: over.nbf } : {}) })
    .setProtectedHeader({ alg: "ES256", kid: thumbprint, ...header })
    .setIssuer(over.iss ?? GRANT)
    .setSubject(over.sub ?? GRANT)
    .setAudience(over.aud ?? AUD)
    .setIssuedAt(iat)
    .setExpirationTime(over.exp ?? iat + 60);
  if (over.jti !== null) jwt.setJti(over.jti ?? randomUUID());
  return jwt.sign(key);
}

const expect_ = (jtis: JtiStore = memoryJtis()): AssertionExpectations => ({
  grantId: GRANT,
  publicKey,
  keyThumbprint: thumbprint,
  audience: AUD,
  now: NOW,
  jtis,
});

async function refusedWith(assertion: string, code: string, expectations = expect_()) {
  await expect(verifyClientAssertion(assertion, expectations)).rejects.toMatchObject({
    name: "AssertionError",
    code,
  });
}

describe("verifyClientAssertion (RFC 7523 private_key_jwt)", () => {
  it("accepts an ES256 assertion by the grant's key, once", async () => {
    const jtis = memoryJtis();
    const assertion = await sign({ jti: "j1" });
    await expect(verifyClientAssertion(assertion, expect_(jtis))).resolves.toEqual({
      jti: "j1",
      iat: nowS,
      exp: nowS + 60,
    });
    await refusedWith(assertion, "ERR_ASSERTION_REPLAYED", expect_(jtis));
    // Another grant may use the same jti.
    await expect(
      verifyClientAssertion(
        await sign({ jti: "j1", iss: "gr_BBBBBBBBBBBBBBBBBBBBBB", sub: "gr_BBBBBBBBBBBBBBBBBBBBBB" }),
        {
          ...expect_(jtis),
          grantId: "gr_BBBBBBBBBBBBBBBBBBBBBB",
        },
      ),
    ).resolves.toMatchObject({ jti: "j1" });
  });

  it("remembers a jti until the assertion could no longer be accepted, then forgets it (bounded store)", async () => {
    const jtis = memoryJtis(2);
    const e = expect_(jtis);
    await verifyClientAssertion(await sign({ jti: "a" }), e);
    await verifyClientAssertion(await sign({ jti: "b" }), e);
    await refusedWith(await sign({ jti: "c" }), "ERR_ASSERTION_REPLAYED", e); // full
    // After exp + skew, the old jtis are gone and new ones fit.
    const later = NOW + (60 + ASSERTION_CLOCK_SKEW_S + 1) * 1000;
    const laterS = Math.floor(later / 1000);
    await expect(
      verifyClientAssertion(await sign({ jti: "c", iat: laterS }), { ...e, now: later }),
    ).resolves.toMatchObject({ jti: "c" });
    expect(jtis.size()).toBe(1);
  });

  it("refuses every other algorithm: none, HS256 with the public key as secret, ES384", async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const payload = b64({ iss: GRANT, sub: GRANT, aud: AUD, iat: nowS, exp: nowS + 60, jti: "x" });
    await refusedWith(`${b64({ alg: "none", kid: thumbprint })}.${payload}.`, "ERR_ASSERTION_ALGORITHM");
    const input = `${b64({ alg: "HS256", kid: thumbprint })}.${payload}`;
    const mac = createHmac("sha256", JSON.stringify(publicKey)).update(input).digest("base64url");
    await refusedWith(`${input}.${mac}`, "ERR_ASSERTION_ALGORITHM");
    const p384 = await generateKeyPair("ES384");
    await refusedWith(
      await sign({}, { alg: "ES384" }, p384.privateKey as CryptoKey),
      "ERR_ASSERTION_ALGORITHM",
    );
  });

  it("refuses a wrong kid, another key, embedded keys and key URLs", async () => {
    await refusedWith(await sign({}, { kid: "someone-else" }), "ERR_ASSERTION_KEY");
    await refusedWith(await sign({}, { kid: undefined }), "ERR_ASSERTION_KEY");
    const other = await generateKeyPair("ES256");
    await refusedWith(await sign({}, {}, other.privateKey as CryptoKey), "ERR_ASSERTION_SIGNATURE");
    await refusedWith(
      await sign({}, { jwk: await exportJWK(other.publicKey) }, other.privateKey as CryptoKey),
      "ERR_ASSERTION_MALFORMED",
    );
    await refusedWith(await sign({}, { jku: "https://evil.example/jwks" }), "ERR_ASSERTION_MALFORMED");
  });

  it("refuses wrong iss, sub and aud, and a missing jti", async () => {
    await refusedWith(await sign({ iss: "gr_BBBBBBBBBBBBBBBBBBBBBB" }), "ERR_ASSERTION_CLAIMS");
    await refusedWith(await sign({ sub: "gr_BBBBBBBBBBBBBBBBBBBBBB" }), "ERR_ASSERTION_CLAIMS");
    await refusedWith(await sign({ aud: "https://evil.example/oauth/token" }), "ERR_ASSERTION_CLAIMS");
    await refusedWith(await sign({ aud: "https://gate.example.com" }), "ERR_ASSERTION_CLAIMS");
    await refusedWith(await sign({ jti: null }), "ERR_ASSERTION_CLAIMS");
  });

  it("times: expired (beyond 30 s of skew), issued in the future, living longer than 5 minutes, not yet valid", async () => {
    await refusedWith(
      await sign({ iat: nowS - 120, exp: nowS - ASSERTION_CLOCK_SKEW_S - 1 }),
      "ERR_ASSERTION_EXPIRED",
    );
    // Within the skew: accepted.
    await expect(
      verifyClientAssertion(await sign({ iat: nowS - 60, exp: nowS - 10 }), expect_()),
    ).resolves.toBeDefined();
    await refusedWith(await sign({ iat: nowS + ASSERTION_CLOCK_SKEW_S + 5 }), "ERR_ASSERTION_CLAIMS");
    await refusedWith(await sign({ exp: nowS + MAX_ASSERTION_LIFETIME_S + 1 }), "ERR_ASSERTION_LIFETIME");
    await refusedWith(
      await sign({ iat: nowS - 10, exp: nowS + MAX_ASSERTION_LIFETIME_S }),
      "ERR_ASSERTION_LIFETIME",
    );
    await refusedWith(await sign({ nbf: nowS + 120 }), "ERR_ASSERTION_CLAIMS");
  });

  it("refuses what is not a compact JWS, without echoing it", async () => {
    for (const bad of ["", "abc", "a.b", "a.b.c.d", "x".repeat(9000), "a b.c.d"]) {
      const err = await verifyClientAssertion(bad, expect_()).catch((e: Error) => e);
      expect(err).toMatchObject({ code: "ERR_ASSERTION_MALFORMED" });
    }
    const assertion = await sign();
    const tampered = `${assertion.slice(0, -4)}AAAA`;
    const err = (await verifyClientAssertion(tampered, expect_()).catch((e: Error) => e)) as Error;
    expect(err.message).not.toContain(tampered);
  });

  it("records the jti only for an otherwise valid assertion", async () => {
    const jtis = memoryJtis();
    await refusedWith(
      await sign({ jti: "k", aud: "https://evil.example" }),
      "ERR_ASSERTION_CLAIMS",
      expect_(jtis),
    );
    const other = await generateKeyPair("ES256");
    await refusedWith(
      await sign({ jti: "k" }, {}, other.privateKey as CryptoKey),
      "ERR_ASSERTION_SIGNATURE",
      expect_(jtis),
    );
    expect(jtis.size()).toBe(0);
    await expect(verifyClientAssertion(await sign({ jti: "k" }), expect_(jtis))).resolves.toMatchObject({
      jti: "k",
    });
  });
});
