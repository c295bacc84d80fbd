import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openIdentityStore, type SqliteIdentityStore } from "../../store/identityStore.js";
import type { UserRecord } from "../../store/ports.js";
import { SessionError } from "./errors.js";
import { createSessions, type SessionEvent, type SessionsOptions } from "./sessions.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.UTC(2030, 0, 1, 8);

let dir: string;
const opened: SqliteIdentityStore[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cosmosgate-sessions-"));
});
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
function setup(overrides: Partial<SessionsOptions> = {}) {
  const file = join(dir, `state-${++files}.db`);
  const store = openIdentityStore(file);
  opened.push(store);
  const clock = { now: T0 };
  const user: UserRecord = {
    id: "u-ada",
    name: "ada",
    groups: ["readers"],
    admin: false,
    disabled: false,
    createdAt: T0 - HOUR,
    webauthnUserId: "wa-ada",
  };
  store.createUser(user);
  store.addCredential({
    id: "cred-ada",
    userId: user.id,
    publicKey: new Uint8Array([1, 2, 3]),
    counter: 0,
    transports: ["usb"],
    aaguid: "00000000-0000-0000-0000-000000000000",
    fmt: "none",
    deviceBound: true,
    backedUp: false,
    nickname: "YubiKey",
    createdAt: T0 - HOUR,
    useCount: 1,
  });
  const events: SessionEvent[] = [];
  const sessions = createSessions({
    store,
    clock: () => clock.now,
    events: (e) => events.push(e),
    ...overrides,
  });
  const start = () => sessions.start({ user, credentialId: "cred-ada", amr: ["hwk", "user"], authTime: T0 });
  return { store, clock, user, events, sessions, start, file };
}

function sessionError(fn: () => unknown): SessionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SessionError);
    return error as SessionError;
  }
  throw new Error("expected a SessionError");
}

describe("createSessions: start", () => {
  it("creates a 12 h session and a refresh token stored only as its SHA-256", () => {
    const { start, store, events } = setup();
    const { session, refreshToken } = start();
    expect(session).toMatchObject({
      userId: "u-ada",
      credentialId: "cred-ada",
      amr: ["hwk", "user"],
      authTime: T0,
      createdAt: T0,
      expiresAt: T0 + 12 * HOUR,
    });
    expect(store.getSession(session.id)).toEqual(session);
    expect(refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = store.db.prepare("SELECT * FROM refresh_tokens").all() as Array<{
      hash: string;
      expires_at: number;
    }>;
    expect(rows).toHaveLength(1);
    expect(rows[0].hash).toBe(createHash("sha256").update(refreshToken).digest("base64url"));
    expect(rows[0].expires_at).toBe(T0 + 12 * HOUR);
    expect(JSON.stringify(store.db.prepare("SELECT * FROM sessions").all())).not.toContain(refreshToken);
    expect(events.map((e) => e.type)).toEqual(["session.started"]);
  });

  it("refuses a disabled user", () => {
    const { sessions, user } = setup();
    const error = sessionError(() =>
      sessions.start({
        user: { ...user, disabled: true },
        credentialId: "cred-ada",
        amr: ["hwk"],
        authTime: T0,
      }),
    );
    expect(error).toMatchObject({ code: "ERR_USER_DISABLED", status: 403 });
  });
});

describe("createSessions: refresh", () => {
  it("rotates: each refresh token works once and yields a new one", () => {
    const { start, sessions, clock, events } = setup();
    const first = start();
    clock.now += 10 * MIN;
    const second = sessions.refresh(first.refreshToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.session.id).toBe(first.session.id);
    expect(second.user.name).toBe("ada");
    clock.now += 10 * MIN;
    const third = sessions.refresh(second.refreshToken);
    expect(third.session.id).toBe(first.session.id);
    expect(events.map((e) => e.type)).toEqual(["session.started", "session.refreshed", "session.refreshed"]);
  });

  it("treats a reused refresh token as theft: revokes the whole session", () => {
    const { start, sessions, clock, store, events } = setup();
    const { session, refreshToken: stolen } = start();
    clock.now += MIN;
    const legit = sessions.refresh(stolen); // the legitimate client rotates
    clock.now += MIN;
    const reuse = sessionError(() => sessions.refresh(stolen)); // the copy is presented
    expect(reuse).toMatchObject({ code: "ERR_REFRESH_REUSED", status: 400, oauthError: "invalid_grant" });
    expect(store.getSession(session.id)).toMatchObject({
      revokedAt: clock.now,
      revokedReason: "refresh token reuse",
    });
    expect(events.filter((e) => e.type === "refresh_token.reused")).toEqual([
      expect.objectContaining({ sessionId: session.id, userId: "u-ada", at: clock.now }),
    ]);
    expect(events.at(-1)).toMatchObject({ type: "session.revoked", reason: "refresh token reuse" });
    // The token from the legitimate rotation is refused from now on too.
    const after = sessionError(() => sessions.refresh(legit.refreshToken));
    expect(after).toMatchObject({ code: "ERR_SESSION_REVOKED", oauthError: "invalid_grant" });
    expect(after.message).toMatch(/refresh token reuse.*Sign in again/);
    expect(sessionError(() => sessions.refresh(stolen)).code).toBe("ERR_REFRESH_REUSED");
  });

  it("ends at maxAge: the session expires and a new tap is needed", () => {
    const { start, sessions, clock } = setup({ maxAgeMs: 2 * HOUR });
    let { refreshToken } = start();
    clock.now = T0 + 2 * HOUR - 1;
    ({ refreshToken } = sessions.refresh(refreshToken));
    clock.now = T0 + 2 * HOUR;
    const error = sessionError(() => sessions.refresh(refreshToken));
    expect(error).toMatchObject({ code: "ERR_SESSION_EXPIRED", status: 400, oauthError: "invalid_grant" });
    expect(error.message).toMatch(/sign in again with your key/);
  });

  it("lets an unused refresh token expire after refreshTtl (idle timeout)", () => {
    const { start, sessions, clock } = setup({ refreshTtlMs: HOUR });
    const { refreshToken } = start();
    clock.now = T0 + HOUR;
    expect(sessionError(() => sessions.refresh(refreshToken)).code).toBe("ERR_REFRESH_EXPIRED");
  });

  it("stops when the user is disabled or the key suspended or removed, and revokes the session", () => {
    const cases = [
      ["user disabled", (s: SqliteIdentityStore) => s.setUserDisabled("u-ada", true)],
      [
        "credential suspended",
        (s: SqliteIdentityStore) => s.suspendCredential("cred-ada", "clone suspected", T0),
      ],
      ["credential removed", (s: SqliteIdentityStore) => s.removeCredential("cred-ada")],
    ] as const;
    for (const [reason, act] of cases) {
      const { start, sessions, store } = setup();
      const { session, refreshToken } = start();
      act(store);
      const error = sessionError(() => sessions.refresh(refreshToken));
      expect(error.code).toBe("ERR_SESSION_REVOKED");
      expect(store.getSession(session.id)?.revokedReason).toBe(reason);
    }
  });

  it("refuses malformed and unknown refresh tokens without touching the store", () => {
    const { sessions } = setup();
    for (const token of ["", "short", "x".repeat(42) + "!", 42 as never]) {
      expect(sessionError(() => sessions.refresh(token)).code).toBe("ERR_REFRESH_INVALID");
    }
    expect(sessionError(() => sessions.refresh("A".repeat(43))).code).toBe("ERR_REFRESH_INVALID");
  });
});

describe("createSessions: revoke", () => {
  it("revokes by session id or by refresh token (unknown tokens are ignored, RFC 7009)", () => {
    const { start, sessions, store, clock } = setup();
    const a = start();
    const b = start();
    clock.now += MIN;
    sessions.revoke({ sessionId: a.session.id }, "signed out");
    expect(store.getSession(a.session.id)).toMatchObject({
      revokedAt: clock.now,
      revokedReason: "signed out",
    });
    expect(sessionError(() => sessions.refresh(a.refreshToken)).code).toBe("ERR_SESSION_REVOKED");
    // The session it named is returned, for the audit record (token.revoked names its subject).
    expect(sessions.revoke({ refreshToken: b.refreshToken }, "oauth revoke")?.id).toBe(b.session.id);
    expect(store.getSession(b.session.id)?.revokedReason).toBe("oauth revoke");
    expect(sessions.revoke({ refreshToken: "B".repeat(43) }, "x")).toBeUndefined();
    expect(sessions.revoke({ refreshToken: "garbage" }, "x")).toBeUndefined();
    expect(sessionError(() => sessions.revoke({ sessionId: "nope" }, "x"))).toMatchObject({
      code: "ERR_SESSION_NOT_FOUND",
      status: 404,
    });
  });
});
