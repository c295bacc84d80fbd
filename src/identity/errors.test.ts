import { describe, expect, it } from "vitest";
import { isTokenError, TOKEN_ERROR_CODES, TokenError } from "./errors.js";

describe("TokenError", () => {
  it("carries a stable code, a name and an optional cause", () => {
    const cause = new Error("jose said no");
    const error = new TokenError("ERR_TOKEN_EXPIRED", "The token expired.", { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("TokenError");
    expect(error.code).toBe("ERR_TOKEN_EXPIRED");
    expect(error.cause).toBe(cause);
    expect(isTokenError(error)).toBe(true);
    expect(isTokenError(error, "ERR_TOKEN_EXPIRED")).toBe(true);
    expect(isTokenError(error, "ERR_TOKEN_MISSING")).toBe(false);
    expect(isTokenError(cause)).toBe(false);
  });

  it("lists every code once", () => {
    expect(new Set(TOKEN_ERROR_CODES).size).toBe(TOKEN_ERROR_CODES.length);
    for (const code of TOKEN_ERROR_CODES) expect(code).toMatch(/^ERR_TOKEN_[A-Z_]+$/);
  });
});
