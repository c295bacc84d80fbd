import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { csrfMatches, csrfProtected, csrfToken } from "./csrf.js";

const SECRET = "s".repeat(32);

describe("csrfToken / csrfMatches", () => {
  it("is base64url(HMAC-SHA256(secret, 'csrf:' + session id)): stable per session, different across sessions and secrets", () => {
    const token = csrfToken(SECRET, "session-1");
    expect(token).toBe(createHmac("sha256", SECRET).update("csrf:session-1").digest("base64url"));
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(csrfToken(SECRET, "session-1")).toBe(token);
    expect(csrfToken(SECRET, "session-2")).not.toBe(token);
    expect(csrfToken("t".repeat(32), "session-1")).not.toBe(token);
  });

  it("accepts only the session's own token", () => {
    const token = csrfToken(SECRET, "session-1");
    expect(csrfMatches(SECRET, "session-1", token)).toBe(true);
    for (const wrong of [
      csrfToken(SECRET, "session-2"),
      `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`,
      token.slice(1),
      `${token}A`,
      "",
      undefined,
      [token, token],
      "x".repeat(10_000),
    ]) {
      expect(csrfMatches(SECRET, "session-1", wrong), JSON.stringify(wrong)?.slice(0, 40)).toBe(false);
    }
  });
});

describe("csrfProtected", () => {
  it("covers writes under /api/ and /auth/ except the sign-in ceremony; never reads, OAuth or pages", () => {
    for (const [method, route] of [
      ["POST", "/api/people/invite"],
      ["PUT", "/api/people/:name/groups"],
      ["PATCH", "/api/me/keys/:id"],
      ["DELETE", "/api/me/keys/:id"],
      ["POST", "/auth/logout"],
      ["POST", "/auth/webauthn/register/options"],
      ["POST", "/auth/webauthn/register/verify"],
    ]) {
      expect(csrfProtected(method, route), `${method} ${route}`).toBe(true);
    }
    for (const [method, route] of [
      ["GET", "/api/me"],
      ["HEAD", "/api/people"],
      ["OPTIONS", "/api/people"],
      ["POST", "/auth/webauthn/login/options"],
      ["POST", "/auth/webauthn/login/verify"],
      ["POST", "/oauth/token"],
      ["POST", "/oauth/authorize/approve"],
      ["GET", "/console/"],
      ["POST", undefined],
    ] as const) {
      expect(csrfProtected(method, route), `${method} ${route}`).toBe(false);
    }
  });
});
