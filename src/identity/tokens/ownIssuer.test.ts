import { exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { TokenError } from "../errors.js";
import { createIssuerKeyResolver, resolveIssuerConfig } from "./issuers.js";
import { ownIssuerConfig } from "./ownIssuer.js";
import { createTokenVerifier } from "./verify.js";

const ISSUER = "http://localhost:8080";
const AUDIENCE = "https://localhost:8081";

async function keyPair(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  const sign = (claims: Record<string, unknown> = {}, now = Math.floor(Date.now() / 1000)) =>
    new SignJWT({ groups: ["g"], sid: "s1", cred: "c1", amr: ["hwk"], auth_time: now - 5, ...claims })
      .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject("ada")
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(privateKey);
  return { jwk, sign, privateJwk: await exportJWK(privateKey) };
}

/** A stand-in keyring: a JWKS object replaced on change, and a refresh that counts its calls. */
function fakeKeyring(initial: JSONWebKeySet) {
  const state = { set: initial, refreshes: 0, onRefresh: (): void => {} };
  return {
    state,
    jwks: () => state.set,
    refresh: async () => {
      state.refreshes++;
      state.onRefresh();
    },
  };
}

describe("ownIssuerConfig / jwks: {local}", () => {
  it("describes the gateway's own tokens: ES256, typ at+jwt, groups claim", () => {
    const config = resolveIssuerConfig(
      ownIssuerConfig({ keyring: fakeKeyring({ keys: [] }), issuer: ISSUER, audience: AUDIENCE }),
    );
    expect(config).toMatchObject({
      issuer: ISSUER,
      audience: [AUDIENCE],
      algorithms: ["ES256"],
      groupsClaims: ["groups"],
      exchange: true,
      typ: "at+jwt",
      kind: "user",
    });
    expect(() => resolveIssuerConfig({ ...config, jwks: { local: "x" } as never })).toThrow(/jwks/);
    expect(() =>
      resolveIssuerConfig({ ...config, jwks: { local: () => ({ keys: [] }), file: "/x" } as never }),
    ).toThrow(/jwks/);
  });

  it("rebuilds the jose key set only when local() returns another object", async () => {
    const k1 = await keyPair("k1");
    const k2 = await keyPair("k2");
    const keyring = fakeKeyring({ keys: [k1.jwk] });
    const resolver = createIssuerKeyResolver(
      ownIssuerConfig({ keyring, issuer: ISSUER, audience: AUDIENCE }),
    );
    const verifier = createTokenVerifier({
      issuers: [ownIssuerConfig({ keyring, issuer: ISSUER, audience: AUDIENCE })],
      cacheSize: 0,
    });
    await resolver.load();
    await resolver.load();
    expect(resolver.stats().loads).toBe(1);
    for (let i = 0; i < 3; i++) expect((await verifier.verify(await k1.sign())).session).toBe("s1");
    expect(verifier.stats().keyLookups).toBe(3);
    keyring.state.set = { keys: [k1.jwk, k2.jwk] };
    expect((await verifier.verify(await k2.sign())).sub).toBe("ada");
    keyring.state.set = { keys: [k2.jwk] };
    const gone = await verifier.verify(await k1.sign()).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(TokenError);
    expect((gone as TokenError).code).toBe("ERR_TOKEN_UNKNOWN_KEY");
  });

  it("on an unknown kid refreshes the keyring once per cooldown, then retries", async () => {
    const k1 = await keyPair("k1");
    const k2 = await keyPair("k2");
    const keyring = fakeKeyring({ keys: [k1.jwk] });
    let now = 1_000_000;
    const verifier = createTokenVerifier({
      issuers: [ownIssuerConfig({ keyring, issuer: ISSUER, audience: AUDIENCE })],
      clock: () => now,
    });
    const iat = Math.floor(now / 1000);
    const stranger = await (await keyPair("k3")).sign({}, iat);
    await expect(verifier.verify(stranger)).rejects.toMatchObject({ code: "ERR_TOKEN_UNKNOWN_KEY" });
    expect(keyring.state.refreshes).toBe(1);
    await expect(verifier.verify(await (await keyPair("k4")).sign({}, iat))).rejects.toMatchObject({
      code: "ERR_TOKEN_UNKNOWN_KEY",
    });
    expect(keyring.state.refreshes).toBe(1); // within the cooldown: no store read
    now += 1000;
    keyring.state.onRefresh = () => {
      keyring.state.set = { keys: [k1.jwk, k2.jwk] };
    };
    expect((await verifier.verify(await k2.sign({}, iat))).sub).toBe("ada");
    expect(keyring.state.refreshes).toBe(2);
  });

  it("refuses private key material in the local set", async () => {
    const k1 = await keyPair("k1");
    const keyring = fakeKeyring({ keys: [{ ...k1.privateJwk, kid: "k1", alg: "ES256" }] });
    const verifier = createTokenVerifier({
      issuers: [ownIssuerConfig({ keyring, issuer: ISSUER, audience: AUDIENCE })],
    });
    await expect(verifier.ready()).rejects.toMatchObject({ code: "ERR_TOKEN_KEYS_UNAVAILABLE" });
    await expect(verifier.verify(await k1.sign())).rejects.toThrow(/private key material/);
  });
});
