import { describe, expect, it } from "vitest";
import { authenticatorNames, KNOWN_AUTHENTICATORS, ZERO_AAGUID } from "./authenticatorNames.js";

const AAGUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("authenticatorNames", () => {
  it("names common models by AAGUID in any case; unknown and all-zero AAGUIDs are null", () => {
    const nameOf = authenticatorNames();
    expect(nameOf("ee882879-721c-4913-9775-3dfcce97072a")).toBe("YubiKey 5 Series");
    expect(nameOf("EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4")).toBe("Google Password Manager");
    expect(nameOf("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")).toBe("iCloud Keychain");
    expect(nameOf("08987058-cadc-4b81-b6e1-30de50dcbe96")).toBe("Windows Hello");
    expect(nameOf(ZERO_AAGUID)).toBeNull();
    expect(nameOf("12345678-1234-1234-1234-123456789012")).toBeNull();
    expect(nameOf(undefined as unknown as string)).toBeNull();
  });

  it("prefers the configured metadata's names", () => {
    const custom = "0a1b2c3d-0000-4000-8000-000000000001";
    const nameOf = authenticatorNames(
      new Map([
        [custom, "Contoso Key"],
        ["ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 (firmware 5.4)"],
      ]),
    );
    expect(nameOf(custom.toUpperCase())).toBe("Contoso Key");
    expect(nameOf("ee882879-721c-4913-9775-3dfcce97072a")).toBe("YubiKey 5 (firmware 5.4)");
    expect(nameOf("d548826e-79b4-db40-a3d8-11116f7e8349")).toBe("Bitwarden");
  });

  it("keeps its table in lower-case AAGUID form, with names", () => {
    for (const [aaguid, name] of KNOWN_AUTHENTICATORS) {
      expect(aaguid).toMatch(AAGUID);
      expect(aaguid).not.toBe(ZERO_AAGUID);
      expect(name.length).toBeGreaterThan(2);
    }
  });
});
