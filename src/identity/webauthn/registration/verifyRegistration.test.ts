import { afterEach, describe, expect, it } from "vitest";
import { hashInviteSecret } from "../../users/hashInviteSecret.js";
import { WebAuthnError } from "../errors.js";
import { createEmulatorAuthenticator } from "../testing/createEmulatorAuthenticator.js";
import { createTestWebAuthn, type TestWebAuthn } from "../testing/createTestWebAuthn.js";
import { createSoftAuthenticator } from "../testing/softAuthenticator.js";

let t: TestWebAuthn;
afterEach(() => t?.close());

/** Runs `fn` and returns the WebAuthnError it rejects with (fails on anything else). */
async function refusal(fn: () => Promise<unknown>): Promise<WebAuthnError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WebAuthnError);
    return error as WebAuthnError;
  }
  throw new Error("expected a WebAuthnError, but the call succeeded");
}

describe("registrationOptions", () => {
  it("asks for a discoverable credential, user verification per policy, no attestation, a stored 32-byte challenge", async () => {
    t = createTestWebAuthn();
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") });
    expect(options.rp).toEqual({ id: "localhost", name: "cosmosgate test" });
    expect(options.user.name).toBe("ada");
    expect(Buffer.from(options.user.id, "base64url")).toHaveLength(32);
    expect(Buffer.from(options.challenge, "base64url")).toHaveLength(32);
    expect(options.authenticatorSelection).toMatchObject({
      residentKey: "required",
      userVerification: "required",
    });
    expect(options.attestation).toBe("none");
    expect(options.timeout).toBe(300_000);
    const stored = t.store.consumeChallenge(options.challenge, t.now());
    expect(stored).toMatchObject({ purpose: "register", expiresAt: t.now() + 300_000 });
    expect(stored?.data).toMatchObject({ webauthnUserId: options.user.id });
    expect(typeof stored?.data?.inviteHash).toBe("string");
  });

  it("does not redeem the invite yet", async () => {
    t = createTestWebAuthn();
    const secret = t.invite("ada");
    await t.webauthn.registrationOptions({ inviteSecret: secret });
    await t.webauthn.registrationOptions({ inviteSecret: secret });
    expect(t.store.countUsers()).toBe(0);
  });

  it("refuses unknown, used, expired and malformed invites with 400", async () => {
    t = createTestWebAuthn();
    const unknown = await refusal(() => t.webauthn.registrationOptions({ inviteSecret: "A".repeat(43) }));
    expect(unknown).toMatchObject({ code: "ERR_WEBAUTHN_INVITE", status: 400 });
    expect(unknown.message).toMatch(/unknown invite; ask an administrator/);

    const malformed = await refusal(() => t.webauthn.registrationOptions({ inviteSecret: "not a secret!" }));
    expect(malformed).toMatchObject({ code: "ERR_WEBAUTHN_INVITE", status: 400 });

    const expiring = t.invite("bob", { expiresInMs: 1000 });
    t.advance(1000);
    const expired = await refusal(() => t.webauthn.registrationOptions({ inviteSecret: expiring }));
    expect(expired.message).toMatch(/expired/);

    await t.enroll("carol", createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }));
    const secret = t.invite("dave");
    await t.webauthn.verifyRegistration({
      response: createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }).register(
        await t.webauthn.registrationOptions({ inviteSecret: secret }),
      ),
    });
    const used = await refusal(() => t.webauthn.registrationOptions({ inviteSecret: secret }));
    expect(used.message).toMatch(/already used/);
  });

  it("for a signed-in user, excludes their keys and binds the challenge to them", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const { user, credential } = await t.enroll("ada", key);
    const options = await t.webauthn.registrationOptions({ userId: user.id });
    expect(options.user.id).toBe(user.webauthnUserId);
    expect(options.excludeCredentials?.map((c) => c.id)).toEqual([credential.id]);
    expect(t.store.consumeChallenge(options.challenge, t.now())?.userId).toBe(user.id);
  });

  it("refuses an unknown user (400), a disabled user (403) and an empty input (400)", async () => {
    t = createTestWebAuthn();
    const { user } = await t.enroll("ada", createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }));
    expect(await refusal(() => t.webauthn.registrationOptions({ userId: "nobody" }))).toMatchObject({
      code: "ERR_WEBAUTHN_USER",
      status: 400,
    });
    t.store.setUserDisabled(user.id, true);
    expect(await refusal(() => t.webauthn.registrationOptions({ userId: user.id }))).toMatchObject({
      code: "ERR_WEBAUTHN_USER_DISABLED",
      status: 403,
    });
    expect(await refusal(() => t.webauthn.registrationOptions({} as never))).toMatchObject({ status: 400 });
  });
});

describe("verifyRegistration", () => {
  it("enrolls a new user by invite with a synced passkey (nid-webauthn-emulator)", async () => {
    t = createTestWebAuthn();
    const secret = t.invite("ada", { groups: ["analysts"], admin: true });
    const options = await t.webauthn.registrationOptions({ inviteSecret: secret });
    const { user, credential } = await t.webauthn.verifyRegistration({
      response: createEmulatorAuthenticator(t.origin).register(options),
      nickname: "Laptop passkey",
    });
    expect(user).toMatchObject({ name: "ada", groups: ["analysts"], admin: true, disabled: false });
    expect(user.webauthnUserId).toBe(options.user.id);
    expect(t.store.getUserByName("ada")).toEqual(user);
    expect(credential).toMatchObject({
      userId: user.id,
      fmt: "none",
      deviceBound: false,
      backedUp: true,
      nickname: "Laptop passkey",
      counter: 0,
      useCount: 0,
      createdAt: t.now(),
    });
    expect(t.store.getCredential(credential.id)).toMatchObject({ id: credential.id, userId: user.id });
    expect(t.store.getInvite(hashInviteSecret(secret))?.usedAt).toBe(t.now());
    expect(t.events.map((e) => e.type)).toEqual(["user.enrolled", "credential.added"]);
    expect(t.events[0]).toMatchObject({ subject: "ada", credential: credential.id, decision: "allow" });
  });

  it("enrolls a device-bound key with a default nickname and the hardware flags", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({
      rpId: t.rpId,
      origin: t.origin,
      aaguid: "11111111-2222-3333-4444-555555555555",
    });
    const { credential } = await t.enroll("ada", key);
    expect(credential).toMatchObject({
      deviceBound: true,
      backedUp: false,
      aaguid: "11111111-2222-3333-4444-555555555555",
      transports: ["usb"],
      nickname: "Key added 2026-11-28",
    });
    expect(credential.publicKey).toBeInstanceOf(Uint8Array);
  });

  it("adds a second key for a signed-in user", async () => {
    t = createTestWebAuthn();
    const first = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const { user } = await t.enroll("ada", first);
    const second = createEmulatorAuthenticator(t.origin);
    const options = await t.webauthn.registrationOptions({ userId: user.id });
    const added = await t.webauthn.verifyRegistration({
      response: second.register(options),
      nickname: "Phone",
    });
    expect(added.user.id).toBe(user.id);
    expect(t.store.listCredentials(user.id)).toHaveLength(2);
    expect(t.store.countUsers()).toBe(1);
    expect(t.events.at(-1)).toMatchObject({ type: "credential.added", subject: "ada" });
    // both keys sign in, as the same user
    expect((await t.signIn(first, "ada")).user.id).toBe(user.id);
    expect((await t.signIn(second)).user.id).toBe(user.id);
  });

  it("refuses a replayed response: the challenge is single use", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const response = key.register(await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") }));
    await t.webauthn.verifyRegistration({ response });
    const error = await refusal(() => t.webauthn.verifyRegistration({ response }));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CHALLENGE", status: 400 });
    expect(error.message).toBe(
      "challenge expired or already used; start again (each challenge is valid once, for 5 minutes).",
    );
    expect(t.events.at(-1)).toMatchObject({ type: "registration.failed", decision: "deny" });
  });

  it("refuses an expired challenge", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") });
    t.advance(5 * 60 * 1000 + 1);
    const error = await refusal(() => t.webauthn.verifyRegistration({ response: key.register(options) }));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CHALLENGE", status: 400 });
    expect(t.store.countUsers()).toBe(0);
  });

  it("refuses a login challenge used for a registration", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") });
    const login = await t.webauthn.authenticationOptions({});
    const error = await refusal(() =>
      t.webauthn.verifyRegistration({ response: key.register(options, { challenge: login.challenge }) }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CHALLENGE", status: 400 });
    expect(error.message).toMatch(/"login" ceremony/);
  });

  it.each([
    [
      "wrong origin",
      { origin: "https://evil.example" },
      /origin this gateway does not serve; expected one of http:\/\/localhost:8080/,
    ],
    ["wrong RP ID hash", { rpId: "evil.example" }, /different relying party than "localhost"/],
    ["wrong type", { type: "webauthn.get" }, /not a registration response .*"webauthn.create"/],
    ["missing user verification", { flags: { uv: false } }, /did not verify the user .*set a PIN/],
    ["missing user presence", { flags: { up: false } }, /user presence; touch the key/],
    ["BS without BE", { flags: { be: false, bs: true } }, /backed up but not backup-eligible/],
  ] as const)("refuses %s with 400", async (_name, overrides, message) => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") });
    const error = await refusal(() =>
      t.webauthn.verifyRegistration({ response: key.register(options, overrides) }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_VERIFICATION", status: 400 });
    expect(error.message).toMatch(message);
    expect(t.store.countUsers()).toBe(0);
  });

  it("accepts no user verification when the policy only prefers it", async () => {
    t = createTestWebAuthn({ authenticators: { userVerification: "preferred" } });
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin, userVerification: false });
    const { credential } = await t.enroll("ada", key);
    const { amr, userVerified } = await t.signIn(key, "ada");
    expect(credential.deviceBound).toBe(true);
    expect(userVerified).toBe(false);
    expect(amr).toEqual(["hwk", "user"]);
  });

  it("refuses a credential ID already registered, to anyone", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const { credential } = await t.enroll("ada", key);
    const other = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("bob") });
    const error = await refusal(() =>
      t.webauthn.verifyRegistration({ response: other.register(options, { credentialId: credential.id }) }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CREDENTIAL_EXISTS", status: 400 });
    expect(error.message).toMatch(/already registered/);
    expect(t.store.getUserByName("bob")).toBeUndefined();
    // the invite was not burnt by the refusal
    expect(t.store.listUsers()).toHaveLength(1);
  });

  it("refuses to register the same key twice for one user (ignoring excludeCredentials)", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const { user, credential } = await t.enroll("ada", key);
    const options = await t.webauthn.registrationOptions({ userId: user.id });
    expect(() => key.register(options)).toThrow(/InvalidStateError/);
    const error = await refusal(() =>
      t.webauthn.verifyRegistration({
        response: key.register(options, { credentialId: credential.id, ignoreExclude: true }),
      }),
    );
    expect(error.code).toBe("ERR_WEBAUTHN_CREDENTIAL_EXISTS");
  });

  it("requireDeviceBound refuses a synced passkey with 403 and accepts a hardware key", async () => {
    t = createTestWebAuthn({ authenticators: { requireDeviceBound: true } });
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") });
    const error = await refusal(() =>
      t.webauthn.verifyRegistration({ response: createEmulatorAuthenticator(t.origin).register(options) }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_DEVICE_BOUND_REQUIRED", status: 403 });
    expect(error.message).toMatch(/synced passkey .*register a hardware security key/);

    const synced = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin, deviceBound: false });
    const again = await t.webauthn.registrationOptions({ inviteSecret: t.invite("bob") });
    expect(
      await refusal(() => t.webauthn.verifyRegistration({ response: synced.register(again) })),
    ).toMatchObject({
      status: 403,
    });

    const { credential } = await t.enroll(
      "carol",
      createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }),
    );
    expect(credential.deviceBound).toBe(true);
  });

  it("refuses a disabled user adding a key (403)", async () => {
    t = createTestWebAuthn();
    const { user } = await t.enroll("ada", createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }));
    const options = await t.webauthn.registrationOptions({ userId: user.id });
    t.store.setUserDisabled(user.id, true);
    const error = await refusal(() =>
      t.webauthn.verifyRegistration({
        response: createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }).register(options),
      }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_USER_DISABLED", status: 403 });
  });

  it("refuses when the invite was redeemed by someone else in the meantime", async () => {
    t = createTestWebAuthn();
    const secret = t.invite("ada");
    const a = await t.webauthn.registrationOptions({ inviteSecret: secret });
    const b = await t.webauthn.registrationOptions({ inviteSecret: secret });
    await t.webauthn.verifyRegistration({
      response: createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }).register(a),
    });
    const error = await refusal(() =>
      t.webauthn.verifyRegistration({
        response: createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }).register(b),
      }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_INVITE", status: 400 });
    expect(error.message).toMatch(/used or expired while you were registering/);
    expect(t.store.countUsers()).toBe(1);
  });

  it("refuses malformed input with 400 and a message naming the problem", async () => {
    t = createTestWebAuthn();
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    const options = await t.webauthn.registrationOptions({ inviteSecret: t.invite("ada") });
    const good = key.register(options);

    const badCbor = await refusal(() =>
      t.webauthn.verifyRegistration({
        response: {
          ...good,
          response: {
            ...good.response,
            attestationObject: Buffer.from([0xa3, 0x63, 0x66]).toString("base64url"),
          },
        },
      }),
    );
    expect(badCbor).toMatchObject({ code: "ERR_WEBAUTHN_MALFORMED", status: 400 });
    expect(badCbor.message).toMatch(/attestationObject is not valid CBOR/);

    const notAMap = await refusal(() =>
      t.webauthn.verifyRegistration({
        response: {
          ...good,
          response: { ...good.response, attestationObject: Buffer.from([0x01]).toString("base64url") },
        },
      }),
    );
    expect(notAMap.message).toMatch(/attestationObject is not a CBOR map/);

    const badNickname = await refusal(() =>
      t.webauthn.verifyRegistration({ response: good, nickname: "x".repeat(65) }),
    );
    expect(badNickname.message).toMatch(/nickname/);
    expect(t.store.countUsers()).toBe(0);

    // a garbled response did not use the challenge up: the genuine one still enrolls
    expect((await t.webauthn.verifyRegistration({ response: good })).user.name).toBe("ada");
  });
});
