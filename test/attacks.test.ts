import { createPublicKey } from "node:crypto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, ISSUER, startHarness } from "./helpers/gateway.js";
import { b64url } from "./helpers/issuer.js";

/** Each attack: a token (or header) that must get 401 and never reach the upstream. */
describe("token attacks are refused with 401 and never reach the upstream", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function attempt(authorization: string | undefined, path = "/dbs/shop/colls/orders/docs/o1") {
    const before = h.seen.length;
    const headers: Record<string, string> = {
      "x-ms-version": "2020-07-15",
      "x-ms-documentdb-partitionkey": '["c1"]',
    };
    if (authorization !== undefined) headers.authorization = authorization;
    const res = await h.raw("GET", path, headers);
    return { ...res, reachedUpstream: h.seen.length !== before };
  }
  const aad = (jwt: string) => `type=aad&ver=1.0&sig=${jwt}`;

  const cases: [string, () => Promise<string | undefined>, RegExp][] = [
    ["no token", async () => undefined, /missing|no authorization/i],
    [
      "alg none",
      async () => {
        const now = Math.floor(Date.now() / 1000);
        const payload = {
          iss: ISSUER,
          sub: "alice",
          aud: h.endpoint,
          iat: now,
          exp: now + 600,
          roles: ["cosmos-admins"],
        };
        return aad(`${b64url({ alg: "none", typ: "JWT" })}.${b64url(payload)}.`);
      },
      /alg/i,
    ],
    [
      "HS256 keyed with the issuer's public key",
      async () => {
        const pem = createPublicKey({ key: h.issuer.publicJwk as never, format: "jwk" }).export({
          type: "spki",
          format: "pem",
        });
        const now = Math.floor(Date.now() / 1000);
        const jwt = await new SignJWT({ roles: ["cosmos-admins"] })
          .setProtectedHeader({ alg: "HS256", kid: h.issuer.kid })
          .setIssuer(ISSUER)
          .setSubject("alice")
          .setAudience(h.endpoint)
          .setIssuedAt(now)
          .setExpirationTime(now + 600)
          .sign(Buffer.from(pem));
        return aad(jwt);
      },
      /alg/i,
    ],
    [
      "expired",
      async () =>
        aad(await h.issuer.sign({ groups: ["cosmos-admins"], now: Date.now() - 3_600_000, expiresIn: 600 })),
      /expired/i,
    ],
    [
      "nbf in the future",
      async () =>
        aad(
          await h.issuer.sign({
            groups: ["cosmos-admins"],
            claims: { nbf: Math.floor(Date.now() / 1000) + 3600 },
          }),
        ),
      /not (yet )?valid|nbf|future/i,
    ],
    [
      "wrong audience",
      async () =>
        aad(await h.issuer.sign({ groups: ["cosmos-admins"], audience: "https://elsewhere.example" })),
      /audience/i,
    ],
    [
      "wrong issuer",
      async () =>
        aad(await h.issuer.sign({ groups: ["cosmos-admins"], claims: { iss: "https://evil.example/" } })),
      /issuer/i,
    ],
    [
      "unknown kid",
      async () => aad(await h.issuer.sign({ groups: ["cosmos-admins"], kid: "no-such-key" })),
      /key|kid/i,
    ],
    [
      "tampered payload",
      async () => {
        const [head, payload, sig] = (await h.issuer.sign({ sub: "bob", groups: ["analysts"] })).split(".");
        const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
        claims.roles = ["cosmos-admins"];
        return aad(`${head}.${b64url(claims)}.${sig}`);
      },
      /signature/i,
    ],
    ["garbage", async () => aad("not.a.jwt"), /malformed|token/i],
    ["an account key", async () => encodeURIComponent("type=master&ver=1.0&sig=abc"), /key|identity token/i],
  ];

  for (const [name, make, why] of cases) {
    it(`refuses ${name}`, async () => {
      const res = await attempt(await make());
      expect(res.status).toBe(401);
      expect(res.reachedUpstream).toBe(false);
      const body = res.json();
      expect(body.code).toBe("Unauthorized");
      expect(body.message).toMatch(why);
    });
  }

  it("accepts the same request with a valid token (the control case)", async () => {
    const res = await attempt(aad(await h.issuer.sign({ groups: ["cosmos-admins"] })), "/");
    expect(res.status).toBe(200);
    expect(res.reachedUpstream).toBe(true);
  });
});

describe("path attacks are refused with 400 and never reach the upstream", () => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await startHarness();
    token = `type=aad&ver=1.0&sig=${await h.issuer.sign({ groups: ["cosmos-admins"] })}`;
  });
  afterAll(async () => {
    await h?.close();
  });

  const paths = [
    "/dbs/shop/colls/orders/docs/../../../../dbs",
    "/dbs/shop/colls/orders/docs/%2E%2E",
    "/dbs/shop/colls/a%2Fb/docs/x",
    "/dbs/shop/colls/a%5Cb/docs/x",
    "/dbs//colls/orders",
    "/dbs/shop/colls/orders/docs//x",
    "/dbs/shop/secrets/x",
    "/admin",
    "/dbs/shop/colls/orders/docs/%ZZ",
    "/dbs/shop/docs/x",
  ];
  for (const path of paths) {
    it(`refuses ${path}`, async () => {
      const before = h.seen.length;
      const res = await h.raw("GET", path, { authorization: token, "x-ms-version": "2020-07-15" });
      expect(res.status).toBe(400);
      expect(res.json().code).toBe("BadRequest");
      expect(h.seen.length).toBe(before);
    });
  }

  for (const pk of ["c1", '["c1"', '{"a":1}', "[[1]]", '[{"a":1}]']) {
    it(`refuses the malformed partition-key header ${pk}`, async () => {
      const before = h.seen.length;
      const res = await h.raw("GET", "/dbs/shop/colls/orders/docs/o1", {
        authorization: token,
        "x-ms-documentdb-partitionkey": pk,
      });
      expect(res.status).toBe(400);
      expect(res.json().message).toMatch(/partition/i);
      expect(h.seen.length).toBe(before);
    });
  }
});
