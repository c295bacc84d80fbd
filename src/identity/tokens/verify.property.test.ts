import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenError } from "../errors.js";
import { parseAuthorization } from "./authorization.js";
import { createTestIssuer, encodeSegment, type TestIssuer } from "./testing.js";
import { createTokenVerifier, type TokenVerifier } from "./verify.js";

let dir: string;
let idp: TestIssuer;
let verifier: TokenVerifier;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-prop-"));
  idp = await createTestIssuer({ dir, issuer: "https://idp.test.invalid" });
  verifier = createTokenVerifier({ issuers: [idp.config] });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs header → parseAuthorization → verifyCached/verify; returns what was thrown, if anything. */
async function authenticate(header: string): Promise<unknown> {
  try {
    const jwt = parseAuthorization(header);
    if (verifier.verifyCached(jwt) === undefined) await verifier.verify(jwt);
    return undefined;
  } catch (error) {
    return error;
  }
}

const anyHeader = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: "grapheme-ascii", maxLength: 300 }),
  fc
    .tuple(
      fc.constantFrom(
        "",
        "Bearer ",
        "bearer\t",
        "type=aad&ver=1.0&sig=",
        "type%3Daad%26ver%3D1.0%26sig%3D",
        "type=master&sig=",
      ),
      fc.string({ maxLength: 200 }),
    )
    .map(([prefix, rest]) => prefix + rest),
);

const json = fc.jsonValue({ maxDepth: 2 });
/** JWT-shaped strings with adversarial headers and claims, reaching deep into jose. */
const jwtish = fc
  .record({
    header: fc.oneof(
      json,
      fc.record(
        {
          alg: fc.oneof(fc.constantFrom("none", "HS256", "ES256", "RS256", "EdDSA", "NONE", "hs256"), json),
          kid: fc.oneof(fc.constant(undefined), fc.string(), json),
          crit: fc.oneof(fc.constant(undefined), fc.array(fc.string(), { maxLength: 2 })),
          b64: fc.oneof(fc.constant(undefined), fc.boolean()),
        },
        { requiredKeys: ["alg"] },
      ),
    ),
    payload: fc.oneof(
      json,
      fc.record({
        iss: fc.oneof(fc.constant("https://idp.test.invalid"), json),
        aud: fc.oneof(fc.constant("https://localhost:8081"), json),
        sub: json,
        exp: fc.oneof(fc.integer(), json),
        iat: fc.oneof(fc.integer(), json),
        nbf: json,
        roles: json,
        act: json,
      }),
    ),
    signature: fc.string({ unit: fc.constantFrom(..."ABCDEFabcdef0123456789-_"), maxLength: 120 }),
  })
  .map(({ header, payload, signature }) => `${encodeSegment(header)}.${encodeSegment(payload)}.${signature}`);

describe("parseAuthorization + verify (property)", () => {
  it("throw nothing but TokenError for arbitrary headers", async () => {
    await fc.assert(
      fc.asyncProperty(anyHeader, async (header) => {
        const error = await authenticate(header);
        expect(error === undefined || error instanceof TokenError).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("throw nothing but TokenError for arbitrary JWT-shaped tokens, and accept none of them", async () => {
    await fc.assert(
      fc.asyncProperty(jwtish, fc.constantFrom("Bearer ", "type=aad&ver=1.0&sig="), async (token, prefix) => {
        const error = await authenticate(prefix + token);
        expect(error).toBeInstanceOf(TokenError);
      }),
      { numRuns: 1000 },
    );
  });

  it("verifyCached never throws", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 500 }), (token) => {
        expect(verifier.verifyCached(token)).toBeUndefined();
      }),
    );
  });
});
