import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openIdentityStore, type SqliteIdentityStore } from "../../store/identityStore.js";
import { TokenError } from "../errors.js";
import { createTokenIssuer, type IssueInput } from "./issue.js";
import { createKeyring } from "./keyring.js";
import { ownIssuerConfig } from "./ownIssuer.js";
import { createTokenVerifier } from "./verify.js";

const MIN = 60_000;
const T0 = Date.UTC(2030, 0, 1, 8);
const R = 60 * MIN;
const TTL = 10 * MIN;
const J = 10 * MIN;
const SKEW = 30_000;
const ISSUER = "https://gate.example.test";
const AUDIENCE = "https://cosmos.gate.example.test:8081";

let dir: string;
const opened: SqliteIdentityStore[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-issue-"));
});
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
function gateway(file = join(dir, `state-${++files}.db`)) {
  const clock = { now: T0 };
  const store = openIdentityStore(file);
  opened.push(store);
  const now = () => clock.now;
  const keyring = createKeyring({
    store,
    clock: now,
    rotateEveryMs: R,
    tokenTtlMs: TTL,
    jwksCacheMs: J,
    skewMs: SKEW,
  });
  const issuer = createTokenIssuer({ keyring, issuer: ISSUER, audience: AUDIENCE, ttlMs: TTL, clock: now });
  const verifier = createTokenVerifier({
    issuers: [ownIssuerConfig({ keyring, issuer: ISSUER, audience: AUDIENCE })],
    clock: now,
  });
  return { clock, store, keyring, issuer, verifier, file };
}

const input: IssueInput = {
  sub: "ada",
  groups: ["cosmos-readers", "analytics"],
  sessionId: "5f0e6a3c-1d2b-4c8e-9a7f-0b1c2d3e4f50",
  credentialId: "Y3JlZGVudGlhbC1pZA",
  amr: ["hwk", "user"],
  authTime: T0 - 5 * MIN + 123,
};

async function refusal(promise: Promise<unknown>): Promise<TokenError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenError);
  return error as TokenError;
}

describe("createTokenIssuer → createTokenVerifier (own issuer, local JWKS)", () => {
  it("round-trips every claim into the Principal", async () => {
    const { issuer, verifier, keyring } = gateway();
    const issued = await issuer.issue(input);
    const iat = Math.floor(T0 / 1000);
    expect(issued).toEqual({
      access_token: expect.any(String),
      token_type: "Bearer",
      expires_in: 600,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      exp: iat + 600,
    });
    const header = decodeProtectedHeader(issued.access_token);
    expect(header).toEqual({ alg: "ES256", kid: (await keyring.signer()).kid, typ: "at+jwt" });
    expect(decodeJwt(issued.access_token)).toEqual({
      iss: ISSUER,
      sub: "ada",
      aud: AUDIENCE,
      exp: iat + 600,
      iat,
      jti: issued.jti,
      auth_time: Math.floor(input.authTime / 1000),
      amr: ["hwk", "user"],
      sid: input.sessionId,
      cred: input.credentialId,
      groups: ["cosmos-readers", "analytics"],
      client_id: "cosmosgate",
    });
    const principal = await verifier.verify(issued.access_token);
    expect(principal).toEqual({
      sub: "ada",
      kind: "user",
      groups: ["cosmos-readers", "analytics"],
      issuer: ISSUER,
      exp: iat + 600,
      credential: input.credentialId,
      session: input.sessionId,
      amr: ["hwk", "user"],
      authTime: Math.floor(input.authTime / 1000),
      jti: issued.jti,
    });
    expect(Object.isFrozen(principal)).toBe(true);
  });

  it("passes extra claims (an agent's act) but never lets them override the gateway's", async () => {
    const { issuer, verifier } = gateway();
    const agent = await issuer.issue({ ...input, extra: { act: { sub: "agent:report-bot" }, name: "Ada" } });
    const principal = await verifier.verify(agent.access_token);
    expect(principal).toMatchObject({
      sub: "ada",
      kind: "agent",
      actor: { sub: "agent:report-bot" },
      name: "Ada",
    });
    for (const claim of ["sub", "groups", "exp", "cred", "sid", "iss", "aud"]) {
      await expect(issuer.issue({ ...input, extra: { [claim]: "x" } })).rejects.toThrow(TypeError);
    }
    await expect(issuer.issue({ ...input, groups: "admins" as never })).rejects.toThrow(/groups/);
  });

  it("never lets a token outlive its session: exp is capped at sessionExpiresAt, and an ended session gets none", async () => {
    const { issuer, clock } = gateway();
    const full = await issuer.issue({ ...input, sessionExpiresAt: T0 + 60 * MIN });
    expect(full.expires_in).toBe(TTL / 1000);
    expect(full.exp).toBe(Math.floor(T0 / 1000) + TTL / 1000);

    const capped = await issuer.issue({ ...input, sessionExpiresAt: T0 + 2 * MIN + 500 });
    expect(capped.exp).toBe(Math.floor((T0 + 2 * MIN) / 1000));
    expect(capped.expires_in).toBe(120);
    expect(decodeJwt(capped.access_token).exp).toBe(capped.exp);

    await expect(issuer.issue({ ...input, sessionExpiresAt: T0 })).rejects.toThrow(RangeError);
    await expect(issuer.issue({ ...input, sessionExpiresAt: T0 + 999 })).rejects.toThrow(/maximum age/);
    clock.now = T0 + 3 * MIN;
    await expect(issuer.issue({ ...input, sessionExpiresAt: T0 + 2 * MIN })).rejects.toThrow(RangeError);
    await expect(issuer.issue({ ...input, sessionExpiresAt: Number.NaN })).rejects.toThrow(TypeError);
  });

  it("refuses a lifetime longer than the keyring keeps retired keys published", () => {
    const { keyring } = gateway();
    expect(() =>
      createTokenIssuer({ keyring, issuer: ISSUER, audience: AUDIENCE, ttlMs: TTL + 1, clock: Date.now }),
    ).toThrow(/tokenTtlMs/);
  });

  it("requires typ at+jwt and the data plane audience", async () => {
    const { keyring, verifier } = gateway();
    const { kid, key } = await keyring.signer();
    const iat = Math.floor(T0 / 1000);
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: "ada", iat, exp: iat + 60 };
    const idToken = await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid, typ: "JWT" }).sign(key);
    expect((await refusal(verifier.verify(idToken))).code).toBe("ERR_TOKEN_CLAIMS");
    const untyped = await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid }).sign(key);
    expect((await refusal(verifier.verify(untyped))).message).toMatch(/typ/);
    const otherAud = await new SignJWT({ ...claims, aud: "https://elsewhere" })
      .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
      .sign(key);
    expect((await refusal(verifier.verify(otherAud))).code).toBe("ERR_TOKEN_AUDIENCE");
  });
});

describe("tokens across rotations", () => {
  it("a token signed before a rotation verifies until it expires", async () => {
    const { clock, issuer, verifier, keyring } = gateway();
    await keyring.ensure();
    clock.now = T0 + R - MIN; // one minute before the scheduled switch
    const before = await issuer.issue(input);
    const oldKid = decodeProtectedHeader(before.access_token).kid;
    clock.now = T0 + R + 5 * MIN;
    await keyring.ensure();
    const after = await issuer.issue(input);
    expect(decodeProtectedHeader(after.access_token).kid).not.toBe(oldKid);
    expect(keyring.list().find((k) => k.kid === oldKid)?.state).toBe("retired");
    expect((await verifier.verify(before.access_token)).jti).toBe(before.jti);
    verifier.clear();
    clock.now = before.exp * 1000 + SKEW - 1000; // within the verifier's skew
    await keyring.ensure();
    expect((await verifier.verify(before.access_token)).jti).toBe(before.jti);
    verifier.clear();
    clock.now = before.exp * 1000 + SKEW + 1000;
    expect((await refusal(verifier.verify(before.access_token))).code).toBe("ERR_TOKEN_EXPIRED");
    expect((await verifier.verify(after.access_token)).jti).toBe(after.jti);
  });

  it("a token signed by a key past its JWKS expiry is refused as an unknown key", async () => {
    const { clock, keyring, verifier } = gateway();
    // An issuer that ignores the keyring's tokenTtl, to mint a token outliving its key's publication.
    const longLived = createTokenIssuer({
      keyring: { signer: () => keyring.signer() },
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlMs: 5 * R,
      clock: () => clock.now,
    });
    await keyring.ensure();
    clock.now = T0 + R - MIN;
    const early = await longLived.issue(input);
    const late = await longLived.issue({ ...input, sub: "bob" });
    clock.now = T0 + R + MIN;
    await keyring.ensure();
    expect((await verifier.verify(early.access_token)).sub).toBe("ada"); // retired, still published
    clock.now = T0 + R + TTL + SKEW; // the retired key leaves the JWKS now
    const error = await refusal(verifier.verify(late.access_token));
    expect(error.code).toBe("ERR_TOKEN_UNKNOWN_KEY");
    await keyring.ensure(); // and is deleted from the store
    verifier.clear();
    expect((await refusal(verifier.verify(early.access_token))).code).toBe("ERR_TOKEN_UNKNOWN_KEY");
  });

  it("another process verifies a token signed with a key it has not loaded yet (refresh on unknown kid)", async () => {
    const a = gateway();
    const b = gateway(a.file);
    const token = await a.issuer.issue(input); // A creates the first keys; B has never read them
    expect(b.keyring.jwks().keys).toHaveLength(0);
    expect((await b.verifier.verify(token.access_token)).sub).toBe("ada");
    expect(b.keyring.jwks().keys).toHaveLength(2);
  });
});
