import { describe, expect, it } from "vitest";
import { openIdentityStore } from "../../store/identityStore.js";
import { isWebAuthnError, WEBAUTHN_ERROR_STATUS, WebAuthnError } from "./errors.js";
import { createWebAuthn } from "./index.js";
import { toWebAuthnError } from "./toWebAuthnError.js";

const ctx = { rp: { id: "localhost", name: "x", origins: ["http://localhost:8080"] } };

describe("WebAuthnError", () => {
  it("carries a stable code, its status and an optional cause", () => {
    const cause = new Error("library said no");
    const error = new WebAuthnError("ERR_WEBAUTHN_KEY_SUSPENDED", "key suspended", { cause });
    expect(error).toMatchObject({
      name: "WebAuthnError",
      code: "ERR_WEBAUTHN_KEY_SUSPENDED",
      status: 403,
      cause,
    });
    expect(isWebAuthnError(error)).toBe(true);
    expect(isWebAuthnError(error, "ERR_WEBAUTHN_KEY_SUSPENDED")).toBe(true);
    expect(isWebAuthnError(error, "ERR_WEBAUTHN_MALFORMED")).toBe(false);
    expect(isWebAuthnError(cause)).toBe(false);
    for (const [code, status] of Object.entries(WEBAUTHN_ERROR_STATUS)) {
      expect(code).toMatch(/^ERR_WEBAUTHN_[A-Z_]+$/);
      expect([400, 403, 500]).toContain(status);
    }
  });
});

describe("toWebAuthnError", () => {
  it("maps any library error to a 4xx WebAuthnError that says what to do, keeping the cause", () => {
    const raw = new TypeError("Cannot read properties of undefined (reading 'get')");
    const mapped = toWebAuthnError(raw, "authentication", ctx);
    expect(mapped).toMatchObject({ code: "ERR_WEBAUTHN_VERIFICATION", status: 400, cause: raw });
    expect(mapped.message).toMatch(/could not be verified .*; sign in again\.$/);
    expect(toWebAuthnError("a string", "registration", ctx).message).toMatch(/register the key again/);
    const passthrough = new WebAuthnError("ERR_WEBAUTHN_MALFORMED", "x");
    expect(toWebAuthnError(passthrough, "registration", ctx)).toBe(passthrough);
  });
});

describe("createWebAuthn", () => {
  it("refuses a configuration without an RP ID or origins", () => {
    const store = openIdentityStore(":memory:");
    const authenticators = { userVerification: "required", requireDeviceBound: false } as const;
    expect(() =>
      createWebAuthn({ store, rp: { id: "", name: "x", origins: ["http://localhost"] }, authenticators }),
    ).toThrow(expect.objectContaining({ code: "ERR_WEBAUTHN_CONFIG" }));
    expect(() =>
      createWebAuthn({ store, rp: { id: "localhost", name: "x", origins: [] }, authenticators }),
    ).toThrow(/at least one origin/);
    store.close();
  });
});
