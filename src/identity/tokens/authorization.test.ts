import { describe, expect, it } from "vitest";
import { TokenError, type TokenErrorCode } from "../errors.js";
import { parseAuthorization } from "./authorization.js";

const JWT =
  "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC50ZXN0Iiwic3ViIjoidXNlci0xIn0.MEUCIQDsignaturebytesxyz_-";

function refusal(header: string | undefined, code: TokenErrorCode): TokenError {
  let caught: unknown;
  try {
    parseAuthorization(header);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(TokenError);
  const error = caught as TokenError;
  expect(error.code, error.message).toBe(code);
  expect(error.message).not.toContain(JWT);
  expect(error.message).not.toContain("MEUCIQDsignaturebytes");
  return error;
}

describe("parseAuthorization", () => {
  it("takes the JWT from the raw Cosmos DB aad form the SDK sends", () => {
    expect(parseAuthorization(`type=aad&ver=1.0&sig=${JWT}`)).toBe(JWT);
  });

  it("takes the JWT from the aad form URL-encoded as a whole (either hex case)", () => {
    expect(parseAuthorization(encodeURIComponent(`type=aad&ver=1.0&sig=${JWT}`))).toBe(JWT);
    expect(parseAuthorization(`type%3daad%26ver%3d1.0%26sig%3d${JWT}`)).toBe(JWT);
  });

  it("takes the JWT from Bearer, scheme case-insensitive", () => {
    for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
      expect(parseAuthorization(`${scheme} ${JWT}`)).toBe(JWT);
    }
  });

  it("tolerates surrounding whitespace, field order and case in the slow path", () => {
    expect(parseAuthorization(`  Bearer   ${JWT}  `)).toBe(JWT);
    expect(parseAuthorization(`Bearer\t${JWT}`)).toBe(JWT);
    expect(parseAuthorization(`sig=${JWT}&ver=1.0&type=aad`)).toBe(JWT);
    expect(parseAuthorization(`Type=AAD&Ver=1.0&Sig=${JWT}`)).toBe(JWT);
    expect(parseAuthorization(encodeURIComponent(`sig=${JWT}&type=aad`))).toBe(JWT);
    expect(parseAuthorization(` type=aad&ver=1.0&sig=${JWT} `)).toBe(JWT);
  });

  it("requires the header", () => {
    const e = refusal(undefined, "ERR_TOKEN_MISSING");
    expect(e.message).toContain("type=aad&ver=1.0&sig=<token>");
    expect(e.message).toContain("Bearer <token>");
    refusal("", "ERR_TOKEN_MISSING");
    refusal("   ", "ERR_TOKEN_MISSING");
  });

  it("refuses account keys and resource tokens, saying to use an identity token", () => {
    const master = refusal(
      encodeURIComponent("type=master&ver=1.0&sig=abc+def/ghi="),
      "ERR_TOKEN_UNSUPPORTED_TYPE",
    );
    expect(master.message).toContain("Account keys");
    expect(master.message).toContain("GatewayCredential");
    expect(master.message).not.toContain("abc+def");
    const resource = refusal("type=resource&ver=1.0&sig=xyz", "ERR_TOKEN_UNSUPPORTED_TYPE");
    expect(resource.message).toContain("Resource tokens");
    refusal("type=MASTER&ver=1.0&sig=xyz", "ERR_TOKEN_UNSUPPORTED_TYPE");
    refusal("type=other&ver=1.0&sig=xyz", "ERR_TOKEN_UNSUPPORTED_TYPE");
  });

  it("refuses malformed headers", () => {
    refusal(`Basic ${Buffer.from("u:p").toString("base64")}`, "ERR_TOKEN_MALFORMED");
    refusal(JWT, "ERR_TOKEN_MALFORMED");
    refusal("Bearer", "ERR_TOKEN_MALFORMED");
    refusal("Bearer ", "ERR_TOKEN_MALFORMED");
    refusal(`Bearer ${JWT} extra`, "ERR_TOKEN_MALFORMED");
    refusal(`type=aad&ver=1.0&sig=${JWT}&sig=${JWT}`, "ERR_TOKEN_MALFORMED");
    refusal(`type=aad&ver=1.0&sig=${JWT}&foo=bar`, "ERR_TOKEN_MALFORMED");
    refusal(`type=aad&ver=2.0&sig=${JWT}`, "ERR_TOKEN_MALFORMED");
    refusal("type=aad&ver=1.0&sig=", "ERR_TOKEN_MALFORMED");
    refusal("type=aad&ver=1.0", "ERR_TOKEN_MALFORMED");
    refusal("type%3Daad%26ver%3D1.0%26sig%3D%E0%A4%A", "ERR_TOKEN_MALFORMED");
    refusal(`type=aad&ver=1.0&${JWT}`, "ERR_TOKEN_MALFORMED");
  });

  it("bounds the header length", () => {
    const e = refusal(`Bearer ${"a".repeat(16_384)}`, "ERR_TOKEN_MALFORMED");
    expect(e.message).toContain("16384");
    expect(parseAuthorization(`Bearer ${"a".repeat(16_000)}`)).toHaveLength(16_000);
  });
});
