import { afterEach, describe, expect, it } from "vitest";
import { WebAuthnError } from "../errors.js";
import { createEmulatorAuthenticator } from "../testing/createEmulatorAuthenticator.js";
import { createTestWebAuthn, type TestWebAuthn } from "../testing/createTestWebAuthn.js";
import { createSoftAuthenticator, type SoftAuthenticator } from "../testing/softAuthenticator.js";

let t: TestWebAuthn;
afterEach(() => t?.close());

async function refusal(fn: () => Promise<unknown>): Promise<WebAuthnError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WebAuthnError);
    return error as WebAuthnError;
  }
  throw new Error("expected a WebAuthnError, but the call succeeded");
}

/** A test gateway with "ada" enrolled on a device-bound soft key. */
async function withAda(opts: Parameters<typeof createTestWebAuthn>[0] = {}) {
  t = createTestWebAuthn(opts);
  const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
  const { user, credential } = await t.enroll("ada", key);
  t.events.length = 0;
  return { key, user, credential };
}

describe("authenticationOptions", () => {
  it("username-first: offers the user's keys that are not suspended, and binds the challenge to the user", async () => {
    const { user, credential } = await withAda();
    const second = await t.webauthn.verifyRegistration({
      response: createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }).register(
        await t.webauthn.registrationOptions({ userId: user.id }),
      ),
    });
    t.store.suspendCredential(second.credential.id, "test", t.now());
    const options = await t.webauthn.authenticationOptions({ username: "ada" });
    expect(options.allowCredentials?.map((c) => c.id)).toEqual([credential.id]);
    expect(options.allowCredentials?.[0]?.transports).toEqual(["usb"]);
    expect(options.rpId).toBe("localhost");
    expect(options.userVerification).toBe("required");
    expect(Buffer.from(options.challenge, "base64url")).toHaveLength(32);
    expect(t.store.consumeChallenge(options.challenge, t.now())).toMatchObject({
      purpose: "login",
      userId: user.id,
    });
  });

  it("discoverable, and for an unknown user: no allowCredentials (the same answer)", async () => {
    await withAda();
    const discoverable = await t.webauthn.authenticationOptions();
    const unknown = await t.webauthn.authenticationOptions({ username: "nobody" });
    expect(discoverable.allowCredentials).toBeUndefined();
    expect(unknown.allowCredentials).toBeUndefined();
    expect(Object.keys(unknown).sort()).toEqual(Object.keys(discoverable).sort());
  });

  it("refuses a malformed username with 400", async () => {
    await withAda();
    expect(await refusal(() => t.webauthn.authenticationOptions({ username: 42 as never }))).toMatchObject({
      code: "ERR_WEBAUTHN_MALFORMED",
      status: 400,
    });
  });
});

describe("verifyAuthentication", () => {
  it("signs in by username with a device-bound key: amr hwk + user + pin, counter and use recorded", async () => {
    const { key, user, credential } = await withAda();
    t.advance(60_000);
    const result = await t.signIn(key, "ada");
    expect(result.user).toEqual(user);
    expect(result.userVerified).toBe(true);
    expect(result.amr).toEqual(["hwk", "user", "pin"]);
    expect(result.credential).toMatchObject({
      id: credential.id,
      counter: 1,
      useCount: 1,
      lastUsedAt: t.now(),
    });
    expect(t.store.getCredential(credential.id)).toMatchObject({ counter: 1, useCount: 1 });
    expect(t.events).toEqual([
      expect.objectContaining({
        type: "signin.succeeded",
        subject: "ada",
        credential: credential.id,
        decision: "allow",
      }),
    ]);
  });

  it("signs in discoverably with a synced passkey (nid-webauthn-emulator): amr swk", async () => {
    t = createTestWebAuthn();
    const passkey = createEmulatorAuthenticator(t.origin);
    const { user } = await t.enroll("ada", passkey);
    const result = await t.signIn(passkey);
    expect(result.user.id).toBe(user.id);
    expect(result.amr).toEqual(["swk", "user", "pin"]);
    expect(result.credential.backedUp).toBe(true);
  });

  it("accepts authenticators without a counter (always 0)", async () => {
    const { key } = await withAda();
    await t.signIn(
      { register: key.register, authenticate: (o) => key.authenticate(o, { counter: 0 }) },
      "ada",
    );
    const again = await t.signIn({
      register: key.register,
      authenticate: (o) => key.authenticate(o, { counter: 0 }),
    });
    expect(again.credential.counter).toBe(0);
  });

  it("returns the data of a non-login ceremony and keeps purposes apart", async () => {
    const { key, user } = await withAda();
    const options = await t.webauthn.authenticationOptions({
      userId: user.id,
      purpose: "approval",
      data: { op: "delete" },
    });
    const response = key.authenticate(options);
    const wrong = await refusal(() => t.webauthn.verifyAuthentication({ response }));
    expect(wrong).toMatchObject({ code: "ERR_WEBAUTHN_CHALLENGE", status: 400 });

    const options2 = await t.webauthn.authenticationOptions({
      userId: user.id,
      purpose: "approval",
      data: { op: "delete" },
    });
    const ok = await t.webauthn.verifyAuthentication({
      response: key.authenticate(options2),
      purpose: "approval",
    });
    expect(ok.challengeData).toEqual({ op: "delete" });
  });

  it("refuses a replayed response", async () => {
    const { key } = await withAda();
    const response = key.authenticate(await t.webauthn.authenticationOptions({ username: "ada" }));
    await t.webauthn.verifyAuthentication({ response });
    const error = await refusal(() => t.webauthn.verifyAuthentication({ response }));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CHALLENGE", status: 400 });
    expect(error.message).toMatch(/^challenge expired or already used; start again/);
    expect(t.events.at(-1)).toMatchObject({ type: "signin.failed", decision: "deny" });
  });

  it("refuses an expired challenge", async () => {
    const { key } = await withAda();
    const options = await t.webauthn.authenticationOptions({ username: "ada" });
    t.advance(5 * 60 * 1000);
    const error = await refusal(() =>
      t.webauthn.verifyAuthentication({ response: key.authenticate(options) }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CHALLENGE", status: 400 });
  });

  it("refuses a challenge the gateway never issued", async () => {
    const { key } = await withAda();
    const options = await t.webauthn.authenticationOptions({});
    const error = await refusal(() =>
      t.webauthn.verifyAuthentication({
        response: key.authenticate(options, { challenge: Buffer.alloc(32, 7).toString("base64url") }),
      }),
    );
    expect(error.code).toBe("ERR_WEBAUTHN_CHALLENGE");
  });

  it.each([
    ["wrong origin", { origin: "http://localhost:9999" }, /origin this gateway does not serve/],
    ["wrong RP ID hash", { rpId: "example.com" }, /different relying party than "localhost"/],
    [
      "wrong type",
      { type: "webauthn.create" },
      /not an authentication response \(clientDataJSON.type must be "webauthn.get"\)/,
    ],
    ["missing user verification", { flags: { uv: false } }, /did not verify the user/],
    ["missing user presence", { flags: { up: false } }, /user presence/],
    ["BS without BE", { flags: { be: false, bs: true } }, /backed up but not backup-eligible/],
    ["a changed backup eligibility", { flags: { be: true, bs: false } }, /backup eligibility changed/],
    ["a bad signature", { badSignature: true }, /signature is invalid/],
  ] as const)("refuses %s with 400", async (_name, overrides, message) => {
    const { key, credential } = await withAda();
    const options = await t.webauthn.authenticationOptions({ username: "ada" });
    const error = await refusal(() =>
      t.webauthn.verifyAuthentication({ response: key.authenticate(options, overrides) }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_VERIFICATION", status: 400 });
    expect(error.message).toMatch(message);
    expect(t.store.getCredential(credential.id)).toMatchObject({ useCount: 0 });
    expect(t.events.at(-1)).toMatchObject({ type: "signin.failed", subject: "ada", decision: "deny" });
  });

  it("refuses an unknown credential", async () => {
    await withAda();
    const stranger = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    stranger.register({
      challenge: "AAAA",
      rp: { id: t.rpId, name: "x" },
      user: { id: "AQID", name: "x", displayName: "x" },
      pubKeyCredParams: [],
    });
    const error = await refusal(() => t.signIn(stranger));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_UNKNOWN_CREDENTIAL", status: 400 });
    expect(error.message).toMatch(/^unknown credential/);
  });

  it("refuses another user's credential on a username-first challenge, also for a name that does not exist", async () => {
    await withAda();
    const bobKey = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    await t.enroll("bob", bobKey);
    const forAda = await t.webauthn.authenticationOptions({ username: "ada" });
    const error = await refusal(() =>
      t.webauthn.verifyAuthentication({
        response: bobKey.authenticate(forAda, { credentialId: bobKey.credentials[0]!.id }),
      }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_WRONG_USER", status: 400 });
    expect(error.message).toMatch(/^credential belongs to another user/);

    const forNobody = await t.webauthn.authenticationOptions({ username: "nobody" });
    const error2 = await refusal(() =>
      t.webauthn.verifyAuthentication({ response: bobKey.authenticate(forNobody) }),
    );
    expect(error2.code).toBe("ERR_WEBAUTHN_WRONG_USER");
  });

  it("refuses a userHandle that is not the owner's", async () => {
    const { key } = await withAda();
    const bob = await t.enroll("bob", createSoftAuthenticator({ rpId: t.rpId, origin: t.origin }));
    const options = await t.webauthn.authenticationOptions({});
    const error = await refusal(() =>
      t.webauthn.verifyAuthentication({
        response: key.authenticate(options, { userHandle: bob.user.webauthnUserId }),
      }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_WRONG_USER", status: 400 });
    expect(error.message).toMatch(/user handle does not belong/);
    // no userHandle at all is fine (non-discoverable answers may omit it)
    const ok = await t.webauthn.verifyAuthentication({
      response: key.authenticate(await t.webauthn.authenticationOptions({ username: "ada" }), {
        userHandle: null,
      }),
    });
    expect(ok.user.name).toBe("ada");
  });

  it("refuses a disabled user with 403 (after the key proved possession)", async () => {
    const { key, user } = await withAda();
    t.store.setUserDisabled(user.id, true);
    const error = await refusal(() => t.signIn(key, "ada"));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_USER_DISABLED", status: 403 });
    expect(error.message).toMatch(/disabled; ask an administrator/);
    // a forged response for a disabled user learns nothing about the state
    const options = await t.webauthn.authenticationOptions({ username: "ada" });
    const forged = await refusal(() =>
      t.webauthn.verifyAuthentication({ response: key.authenticate(options, { badSignature: true }) }),
    );
    expect(forged.status).toBe(400);
  });

  it("suspends a key whose counter goes backwards (a clone), revokes its sessions, and refuses it afterwards", async () => {
    const { key, user, credential } = await withAda();
    const twin: SoftAuthenticator = key.clone();
    await t.signIn(key, "ada"); // counter 1
    await t.signIn(key, "ada"); // counter 2
    t.store.createSession({
      id: "s1",
      userId: user.id,
      credentialId: credential.id,
      amr: ["hwk"],
      authTime: t.now(),
      createdAt: t.now(),
      expiresAt: t.now() + 3_600_000,
    });
    const error = await refusal(() => t.signIn(twin, "ada")); // counter 1 again
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CLONE_SUSPECTED", status: 403 });
    expect(error.message).toBe(
      "the key's signature counter went backwards — it may have been cloned; it is suspended until an administrator re-enables it.",
    );
    expect(t.store.getCredential(credential.id)).toMatchObject({
      suspendedAt: t.now(),
      suspendedReason: "clone suspected: signature counter went backwards",
      counter: 2,
    });
    expect(t.store.getSession("s1")?.revokedAt).toBe(t.now());
    expect(t.events.map((e) => e.type).slice(-3)).toEqual([
      "credential.clone_suspected",
      "credential.suspended",
      "signin.failed",
    ]);
    expect(t.events.at(-3)).toMatchObject({
      subject: "ada",
      credential: credential.id,
      decision: "deny",
      details: { storedCounter: 2, presentedCounter: 1 },
    });
    expect(t.events.at(-2)).toMatchObject({
      subject: "ada",
      credential: credential.id,
      credentialName: credential.nickname,
      deviceBound: credential.deviceBound,
      decision: "deny",
      details: { revokedSessions: 1 },
    });
    expect(t.events.at(-1)?.details).toEqual({ code: "ERR_WEBAUTHN_CLONE_SUSPECTED" });

    // the genuine key (counter 3) is now refused too, until re-enabled
    const suspended = await refusal(() => t.signIn(key, "ada"));
    expect(suspended).toMatchObject({ code: "ERR_WEBAUTHN_KEY_SUSPENDED", status: 403 });
    expect(suspended.message).toMatch(/^key suspended; ask an administrator to re-enable it/);
    // ... and it is no longer offered
    expect((await t.webauthn.authenticationOptions({ username: "ada" })).allowCredentials).toBeUndefined();
    t.store.reenableCredential(credential.id);
    expect((await t.signIn(key, "ada")).credential.counter).toBe(4);
  });

  it("does not suspend a key on a forged response with a low counter", async () => {
    const { key, credential } = await withAda();
    await t.signIn(key, "ada");
    await t.signIn(key, "ada");
    const options = await t.webauthn.authenticationOptions({ username: "ada" });
    const error = await refusal(() =>
      t.webauthn.verifyAuthentication({
        response: key.authenticate(options, { counter: 1, badSignature: true }),
      }),
    );
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_VERIFICATION", status: 400 });
    expect(t.store.getCredential(credential.id)?.suspendedAt).toBeUndefined();
  });

  it("an equal non-zero counter is a regression too", async () => {
    const { key } = await withAda();
    await t.signIn(
      { register: key.register, authenticate: (o) => key.authenticate(o, { counter: 5 }) },
      "ada",
    );
    const error = await refusal(() =>
      t.signIn({ register: key.register, authenticate: (o) => key.authenticate(o, { counter: 5 }) }, "ada"),
    );
    expect(error.code).toBe("ERR_WEBAUTHN_CLONE_SUSPECTED");
  });

  it("a sign-in that loses the race to record its counter is refused as a regression (concurrent sign-ins)", async () => {
    const { key, credential } = await withAda();
    await t.signIn(key, "ada"); // counter 1
    const twin: SoftAuthenticator = key.clone();
    const [a, b] = [
      await t.webauthn.authenticationOptions({ username: "ada" }),
      await t.webauthn.authenticationOptions({ username: "ada" }),
    ];
    // Both read the stored counter (1) before either records its own (2): only one may win.
    const results = await Promise.allSettled([
      t.webauthn.verifyAuthentication({ response: key.authenticate(a) }),
      t.webauthn.verifyAuthentication({ response: twin.authenticate(b) }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ code: "ERR_WEBAUTHN_CLONE_SUSPECTED", status: 403 });
    expect(t.store.getCredential(credential.id)).toMatchObject({
      counter: 2,
      useCount: 2,
      suspendedReason: "clone suspected: signature counter went backwards",
    });
  });

  it("the lost race is detected at the write: a counter recorded in between refuses and suspends", async () => {
    const { key, credential } = await withAda();
    await t.signIn(key, "ada"); // counter 1
    const record = t.store.recordCredentialUse.bind(t.store);
    let raced = false;
    t.store.recordCredentialUse = (id, counter, backedUp, at) => {
      if (!raced) {
        raced = true;
        record(id, counter, backedUp, at); // a concurrent sign-in (a clone) records the same counter first
      }
      return record(id, counter, backedUp, at);
    };
    const error = await refusal(() => t.signIn(key, "ada"));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_CLONE_SUSPECTED", status: 403 });
    expect(t.store.getCredential(credential.id)).toMatchObject({ counter: 2, useCount: 2 });
    expect(t.store.getCredential(credential.id)?.suspendedAt).toBeDefined();
    expect(t.events.map((e) => e.type).slice(-3)).toEqual([
      "credential.clone_suspected",
      "credential.suspended",
      "signin.failed",
    ]);
  });

  it("refuses malformed responses with 400, never a raw error", async () => {
    const { key } = await withAda();
    const options = await t.webauthn.authenticationOptions({ username: "ada" });
    const good = key.authenticate(options);
    const cases: [unknown, RegExp][] = [
      [
        { ...good, response: { ...good.response, authenticatorData: "!!" } },
        /authenticatorData is not base64url/,
      ],
      [
        { ...good, response: { ...good.response, clientDataJSON: "bm90IGpzb24" } },
        /clientDataJSON is not base64url-encoded UTF-8 JSON/,
      ],
      [
        { ...good, response: { ...good.response, clientDataJSON: Buffer.from("[1]").toString("base64url") } },
        /not a JSON object/,
      ],
      [
        {
          ...good,
          response: {
            ...good.response,
            clientDataJSON: Buffer.from('{"type":"webauthn.get"}').toString("base64url"),
          },
        },
        /"challenge"/,
      ],
      [{ ...good, type: 1 }, /type must be "public-key"/],
      ["{}", /must be a JSON object/],
    ];
    for (const [response, message] of cases) {
      const error = await refusal(() => t.webauthn.verifyAuthentication({ response }));
      expect(error).toMatchObject({ code: "ERR_WEBAUTHN_MALFORMED", status: 400 });
      expect(error.message).toMatch(message);
    }
    const short = { ...good, response: { ...good.response, authenticatorData: "AAAA" } };
    const error = await refusal(() => t.webauthn.verifyAuthentication({ response: short }));
    expect(error).toMatchObject({ code: "ERR_WEBAUTHN_MALFORMED", status: 400 });
    expect(error.message).toMatch(/authenticatorData cannot be parsed/);
    // none of these used the challenge up: the genuine response still signs in
    expect((await t.webauthn.verifyAuthentication({ response: good })).user.name).toBe("ada");
  });
});
