import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MetadataService } from "@simplewebauthn/server";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { openIdentityStore } from "../../../store/identityStore.js";
import { WebAuthnError } from "../errors.js";
import { createWebAuthn } from "../index.js";
import { type AttestationCa, createAttestationCa } from "../testing/createAttestationCa.js";
import { createEmulatorAuthenticator } from "../testing/createEmulatorAuthenticator.js";
import { createTestWebAuthn, type TestWebAuthn } from "../testing/createTestWebAuthn.js";
import { createSoftAuthenticator } from "../testing/softAuthenticator.js";
import { loadMetadataStatements } from "./loadMetadataStatements.js";
import { useMetadataService } from "./useMetadataService.js";

const LISTED = "4b7c9a4e-0d3c-4a57-9a3e-6f1d8e2c5b10";
const UNLISTED = "9e1f3c5a-7b2d-4e6f-8a0c-1d3e5f7a9b2c";

let dir: string;
let vendor: AttestationCa;
let other: AttestationCa;
let rogue: AttestationCa;
let metadataFile: string;
let t: TestWebAuthn;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-attestation-"));
  vendor = await createAttestationCa(LISTED, "Acme Keys");
  other = await createAttestationCa(UNLISTED, "Other Keys");
  // A rogue CA that issues an attestation certificate claiming the listed model.
  rogue = await createAttestationCa(LISTED, "Rogue Keys");
  metadataFile = await vendor.writeMetadataFile(dir, [other.statement]);
});
afterEach(() => t?.close());

function gateway() {
  t = createTestWebAuthn({ authenticators: { allowAaguids: [LISTED.toUpperCase()], metadataFile } });
  return t;
}

async function refusal(fn: () => Promise<unknown>): Promise<WebAuthnError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WebAuthnError);
    return error as WebAuthnError;
  }
  throw new Error("expected a WebAuthnError, but the call succeeded");
}

async function register(authenticator: { register: (o: never) => unknown }) {
  const options = await t.webauthn.registrationOptions({
    inviteSecret: t.invite(`u${Math.random().toString(36).slice(2, 8)}`),
  });
  return t.webauthn.verifyRegistration({ response: authenticator.register(options as never) });
}

describe("AAGUID allow-list with FIDO metadata", () => {
  it("asks for direct attestation", async () => {
    gateway();
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") });
    expect(options.attestation).toBe("direct");
  });

  it("enrolls a listed model whose packed full attestation chains to its metadata root, and it signs in", async () => {
    gateway();
    const key = createSoftAuthenticator({
      rpId: t.rpId,
      origin: t.origin,
      aaguid: LISTED,
      fmt: "packed",
      attestation: vendor.attestation,
    });
    const { credential, user } = await t.enroll("ada", key);
    expect(credential).toMatchObject({ fmt: "packed", aaguid: LISTED, deviceBound: true });
    expect((await t.signIn(key, "ada")).user.id).toBe(user.id);
  });

  it('refuses fmt "none" (403), from the soft authenticator and from nid-webauthn-emulator', async () => {
    gateway();
    const none = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin, aaguid: LISTED, fmt: "none" });
    const error = await refusal(() => register(none));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_ATTESTATION_REQUIRED", status: 403 });
    expect(error.message).toMatch(/no attestation \(fmt "none"\)/);

    const error2 = await refusal(() => register(createEmulatorAuthenticator(t.origin)));
    expect(error2).toMatchObject({ code: "ERR_WEBAUTHN_ATTESTATION_REQUIRED", status: 403 });
    expect(t.store.countUsers()).toBe(0);
  });

  it("refuses self attestation (packed without x5c) with 403", async () => {
    gateway();
    const self = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin, aaguid: LISTED, fmt: "packed" });
    const error = await refusal(() => register(self));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_ATTESTATION_REQUIRED", status: 403 });
    expect(error.message).toMatch(/self attestation/);
  });

  it("refuses an unlisted model even with a valid attestation and a metadata statement (403)", async () => {
    gateway();
    const key = createSoftAuthenticator({
      rpId: t.rpId,
      origin: t.origin,
      aaguid: UNLISTED,
      fmt: "packed",
      attestation: other.attestation,
    });
    const error = await refusal(() => register(key));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_AAGUID_NOT_ALLOWED", status: 403 });
    expect(error.message).toMatch(new RegExp(`model ${UNLISTED} is not on this gateway's allow-list`));
  });

  it("refuses a listed AAGUID whose attestation does not chain to that model's metadata root (403)", async () => {
    gateway();
    const forged = createSoftAuthenticator({
      rpId: t.rpId,
      origin: t.origin,
      aaguid: LISTED,
      fmt: "packed",
      attestation: rogue.attestation,
    });
    const error = await refusal(() => register(forged));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_AAGUID_NOT_ALLOWED", status: 403 });
    expect(error.message).toMatch(/does not chain to a trusted metadata statement/);
  });

  it("refuses an attestation certificate issued for another AAGUID (400)", async () => {
    gateway();
    // Other Keys' certificate names UNLISTED in its AAGUID extension; the authenticator data claims LISTED.
    const mismatched = createSoftAuthenticator({
      rpId: t.rpId,
      origin: t.origin,
      aaguid: LISTED,
      fmt: "packed",
      attestation: other.attestation,
    });
    const error = await refusal(() => register(mismatched));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_VERIFICATION", status: 400 });
    expect(error.message).toMatch(
      /attestation statement is invalid \(Certificate extension id-fido-gen-ce-aaguid/,
    );
  });
});

describe("attestation configuration", () => {
  it("refuses allowAaguids without a metadata file, an AAGUID without a statement, and a bad file", async () => {
    const store = openIdentityStore(":memory:");
    const base = { store, rp: { id: "localhost", name: "x", origins: ["http://localhost:8080"] } };
    const policy = { userVerification: "required", requireDeviceBound: false } as const;
    expect(() => createWebAuthn({ ...base, authenticators: { ...policy, allowAaguids: [LISTED] } })).toThrow(
      /allowAaguids needs metadataFile/,
    );
    expect(() =>
      createWebAuthn({
        ...base,
        authenticators: { ...policy, allowAaguids: ["00000000-0000-0000-0000-000000000001"], metadataFile },
      }),
    ).toThrow(/has no statement for it/);
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{not json");
    expect(() =>
      createWebAuthn({ ...base, authenticators: { ...policy, allowAaguids: [LISTED], metadataFile: bad } }),
    ).toThrow(expect.objectContaining({ code: "ERR_WEBAUTHN_CONFIG", status: 500 }));
    await writeFile(bad, JSON.stringify([{ aaguid: LISTED }]));
    expect(() => loadMetadataStatements(bad)).toThrow(/attestationRootCertificates/);
    expect(() => loadMetadataStatements(join(dir, "missing.json"))).toThrow(/cannot be read/);
    store.close();
  });

  it("initializes MetadataService once for the same statements, again for new ones, and refuses a conflicting one", async () => {
    const spy = vi.spyOn(MetadataService, "initialize");
    const statements = loadMetadataStatements(metadataFile);
    await useMetadataService(statements);
    const before = spy.mock.calls.length;
    await useMetadataService(statements);
    expect(spy.mock.calls.length).toBe(before);
    await useMetadataService(
      [rogue.statement].map((s) => ({ ...s, aaguid: "12345678-0000-4000-8000-000000000000" })),
    );
    expect(spy.mock.calls.length).toBe(before + 1);
    expect(spy.mock.calls.at(-1)?.[0]).toMatchObject({ mdsServers: [], verificationMode: "strict" });
    await expect(useMetadataService([rogue.statement])).rejects.toMatchObject({
      code: "ERR_WEBAUTHN_CONFIG",
    });
    spy.mockRestore();
  });
});
