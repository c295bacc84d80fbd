import { verifyAuthenticationResponse, verifyRegistrationResponse } from "@simplewebauthn/server";
import { describe, expect, it } from "vitest";
import { createSoftAuthenticator } from "./softAuthenticator.js";

const rpId = "localhost";
const origin = "http://localhost:8080";
const creation = {
  challenge: Buffer.alloc(32, 1).toString("base64url"),
  rp: { id: rpId, name: "test" },
  user: { id: Buffer.alloc(32, 2).toString("base64url"), name: "ada", displayName: "ada" },
  pubKeyCredParams: [{ alg: -7, type: "public-key" as const }],
};
const request = { challenge: Buffer.alloc(32, 3).toString("base64url"), rpId };

describe("createSoftAuthenticator", () => {
  it("makes responses SimpleWebAuthn verifies directly (none, packed self), with the requested flags", async () => {
    for (const fmt of ["none", "packed"] as const) {
      const key = createSoftAuthenticator({
        rpId,
        origin,
        fmt,
        aaguid: "11111111-2222-3333-4444-555555555555",
      });
      const reg = await verifyRegistrationResponse({
        response: key.register(creation),
        expectedChallenge: creation.challenge,
        expectedOrigin: origin,
        expectedRPID: rpId,
      });
      expect(reg.verified).toBe(true);
      expect(reg.registrationInfo).toMatchObject({
        fmt,
        aaguid: "11111111-2222-3333-4444-555555555555",
        credentialDeviceType: "singleDevice",
        credentialBackedUp: false,
        userVerified: true,
      });
      const auth = await verifyAuthenticationResponse({
        response: key.authenticate(request),
        expectedChallenge: request.challenge,
        expectedOrigin: origin,
        expectedRPID: rpId,
        credential: {
          id: key.credentials[0]!.id,
          publicKey: reg.registrationInfo!.credential.publicKey,
          counter: 0,
        },
      });
      expect(auth).toMatchObject({ verified: true, authenticationInfo: { newCounter: 1 } });
    }
  });

  it("makes synced passkeys with deviceBound: false", async () => {
    const key = createSoftAuthenticator({ rpId, origin, deviceBound: false });
    const reg = await verifyRegistrationResponse({
      response: key.register(creation),
      expectedChallenge: creation.challenge,
      expectedOrigin: origin,
      expectedRPID: rpId,
    });
    expect(reg.registrationInfo).toMatchObject({
      credentialDeviceType: "multiDevice",
      credentialBackedUp: true,
    });
  });

  it("honours excludeCredentials and allowCredentials, keeps counters, and clones", () => {
    const key = createSoftAuthenticator({ rpId, origin });
    const { id } = key.register(creation);
    expect(() => key.register({ ...creation, excludeCredentials: [{ id, type: "public-key" }] })).toThrow(
      /InvalidStateError/,
    );
    expect(() =>
      key.authenticate({ ...request, allowCredentials: [{ id: "AAAA", type: "public-key" }] }),
    ).toThrow(/NotAllowedError/);
    const twin = key.clone();
    key.authenticate(request);
    key.authenticate(request);
    expect(key.credentials[0]!.counter).toBe(2);
    expect(twin.credentials[0]!.counter).toBe(0);
    const answer = twin.authenticate({ ...request, allowCredentials: [{ id, type: "public-key" }] });
    expect(answer.id).toBe(id);
    expect(answer.response.userHandle).toBe(creation.user.id);
    expect(Buffer.from(answer.response.authenticatorData, "base64url").readUInt32BE(33)).toBe(1);
  });
});
