import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openIdentityStore, type SqliteIdentityStore } from "../../store/identityStore.js";
import type { UserRecord } from "../../store/ports.js";
import {
  disableUser,
  enableUser,
  firstAdminInvite,
  hashInviteSecret,
  inviteUser,
  listUsers,
  setUserGroups,
  UserError,
  type UserEvent,
} from "./index.js";

let store: SqliteIdentityStore;
let now: number;
const clock = () => now;
let events: UserEvent[];

beforeEach(() => {
  store = openIdentityStore(":memory:");
  now = Date.UTC(2026, 10, 28, 10, 0, 0);
  events = [];
});
afterEach(() => store.close());

function addUser(name: string, extra: Partial<UserRecord> = {}): UserRecord {
  const user: UserRecord = {
    id: `id-${name}`,
    name,
    groups: [],
    admin: false,
    disabled: false,
    createdAt: now,
    webauthnUserId: Buffer.from(name.padEnd(32, "x")).toString("base64url"),
    ...extra,
  };
  store.createUser(user);
  return user;
}

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error("expected a UserError");
}

describe("inviteUser", () => {
  it("returns a 32-byte secret, stores only its hash, expires in 24 h by default", () => {
    const { secret, expiresAt } = inviteUser(store, {
      name: "ada.lovelace@example",
      groups: ["analysts", "analysts", "ops"],
      admin: false,
      createdBy: "admin",
      clock,
      events: (e) => events.push(e),
    });
    expect(Buffer.from(secret, "base64url")).toHaveLength(32);
    expect(expiresAt).toBe(now + 24 * 3600 * 1000);
    expect(store.getInvite(secret)).toBeUndefined();
    expect(store.getInvite(hashInviteSecret(secret))).toMatchObject({
      userName: "ada.lovelace@example",
      groups: ["analysts", "ops"],
      admin: false,
      createdAt: now,
      expiresAt,
      createdBy: "admin",
    });
    expect(events).toEqual([
      expect.objectContaining({ type: "user.invited", subject: "ada.lovelace@example" }),
    ]);
  });

  it("honours expiresInMs", () => {
    const { expiresAt } = inviteUser(store, {
      name: "ada",
      groups: [],
      admin: true,
      expiresInMs: 60_000,
      clock,
    });
    expect(expiresAt).toBe(now + 60_000);
  });

  it.each(["", "a".repeat(65), "ada lovelace", "ada/x", "ädä", "a\n"])("refuses the name %j", (name) => {
    const error = userError(() => inviteUser(store, { name, groups: [], admin: false, clock }));
    expect(error).toMatchObject({ code: "ERR_USER_INVALID", status: 400 });
    expect(error.message).toMatch(/use 1–64 characters of A–Z, a–z, 0–9/);
  });

  it("refuses bad groups and lifetimes", () => {
    expect(userError(() => inviteUser(store, { name: "ada", groups: [""], admin: false, clock })).code).toBe(
      "ERR_USER_INVALID",
    );
    expect(
      userError(() => inviteUser(store, { name: "ada", groups: [], admin: false, expiresInMs: -1, clock }))
        .message,
    ).toMatch(/lifetime/);
  });

  it("refuses a name that exists", () => {
    addUser("ada");
    const error = userError(() => inviteUser(store, { name: "ada", groups: [], admin: false, clock }));
    expect(error).toMatchObject({ code: "ERR_USER_EXISTS", status: 409 });
    expect(error.message).toMatch(/already exists; choose another name, or have ada sign in and add a key/);
  });
});

describe("firstAdminInvite", () => {
  it("invites an administrator named admin while there are no users, a fresh one each time", () => {
    const a = firstAdminInvite(store, clock);
    const b = firstAdminInvite(store, clock);
    expect(a?.secret).not.toBe(b?.secret);
    expect(store.getInvite(hashInviteSecret(a!.secret))).toMatchObject({
      userName: "admin",
      admin: true,
      expiresAt: now + 24 * 3600 * 1000,
      createdBy: "cosmosgate",
    });
  });

  it("returns undefined once a user exists", () => {
    addUser("someone");
    expect(firstAdminInvite(store, clock)).toBeUndefined();
  });
});

describe("disableUser / enableUser / listUsers", () => {
  it("disables a user and revokes their sessions; enables again", () => {
    addUser("root", { admin: true });
    const ada = addUser("ada");
    store.createSession({
      id: "s1",
      userId: ada.id,
      credentialId: "c1",
      amr: ["hwk"],
      authTime: now,
      createdAt: now,
      expiresAt: now + 3_600_000,
    });
    const { user, revokedSessions } = disableUser(store, "ada", clock, (e) => events.push(e));
    expect(user.disabled).toBe(true);
    expect(revokedSessions).toEqual(["s1"]);
    expect(store.getUserByName("ada")?.disabled).toBe(true);
    expect(store.getSession("s1")).toMatchObject({ revokedAt: now, revokedReason: "user disabled" });
    expect(store.revocations().disabledSubjects.has("ada")).toBe(true);
    expect(events).toEqual([
      expect.objectContaining({ type: "user.disabled", subject: "ada", decision: "deny" }),
    ]);

    expect(enableUser(store, "ada", clock, (e) => events.push(e)).disabled).toBe(false);
    expect(store.getUserByName("ada")?.disabled).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: "user.enabled", subject: "ada" });
  });

  it("refuses an unknown user (404) and the last enabled administrator (409)", () => {
    expect(userError(() => disableUser(store, "nobody", clock))).toMatchObject({
      code: "ERR_USER_UNKNOWN",
      status: 404,
    });
    expect(userError(() => enableUser(store, "nobody", clock)).status).toBe(404);
    addUser("root", { admin: true });
    addUser("old", { admin: true, disabled: true });
    const error = userError(() => disableUser(store, "root", clock));
    expect(error).toMatchObject({ code: "ERR_USER_LAST_ADMIN", status: 409 });
    addUser("second", { admin: true });
    expect(disableUser(store, "root", clock).user.disabled).toBe(true);
  });

  it("lists users sorted by name", () => {
    addUser("zoe");
    addUser("ada");
    addUser("Bob");
    expect(listUsers(store).map((u) => u.name)).toEqual(["Bob", "ada", "zoe"]);
  });
});

describe("setUserGroups", () => {
  const session = (id: string, userId: string) =>
    store.createSession({
      id,
      userId,
      credentialId: "c1",
      amr: ["hwk"],
      authTime: now,
      createdAt: now,
      expiresAt: now + 3_600_000,
    });

  it("adding groups changes them without revoking sessions", () => {
    const ada = addUser("ada", { groups: ["analysts"] });
    session("s1", ada.id);
    const r = setUserGroups(store, "ada", ["analysts", "ops", "ops"], clock, (e) => events.push(e));
    expect(r).toMatchObject({ added: ["ops"], removed: [], revokedSessions: [] });
    expect(store.getUserByName("ada")?.groups).toEqual(["analysts", "ops"]);
    expect(store.getSession("s1")?.revokedAt).toBeUndefined();
    expect(events).toEqual([
      expect.objectContaining({
        type: "user.groups_changed",
        subject: "ada",
        details: { groups: "analysts,ops", added: "ops", removed: "", revokedSessions: 0 },
      }),
    ]);
  });

  it("taking a group away revokes the user's sessions at once", () => {
    const ada = addUser("ada", { groups: ["analysts", "writers"] });
    session("s1", ada.id);
    const r = setUserGroups(store, "ada", ["analysts"], clock, (e) => events.push(e));
    expect(r).toMatchObject({ added: [], removed: ["writers"], revokedSessions: ["s1"] });
    expect(store.getSession("s1")).toMatchObject({ revokedAt: now, revokedReason: "groups changed" });
    expect(events[0]?.reason).toMatch(/1 session\(s\) revoked/);
  });

  it("setting the same groups changes and emits nothing", () => {
    addUser("ada", { groups: ["a", "b"] });
    expect(setUserGroups(store, "ada", ["b", "a"], clock, (e) => events.push(e)).revokedSessions).toEqual([]);
    expect(events).toEqual([]);
  });

  it.each([
    [["x".repeat(129)]],
    [[""]],
    [["a\u0000b"]],
    [[1]],
    ["analysts"],
    [Array.from({ length: 65 }, (_, i) => `g${i}`)],
  ])("refuses the group list %j (400) and changes nothing", (groups) => {
    addUser("ada", { groups: ["analysts"] });
    expect(userError(() => setUserGroups(store, "ada", groups, clock))).toMatchObject({
      code: "ERR_USER_INVALID",
      status: 400,
    });
    expect(store.getUserByName("ada")?.groups).toEqual(["analysts"]);
  });

  it("refuses an unknown user (404)", () => {
    expect(userError(() => setUserGroups(store, "nobody", [], clock)).status).toBe(404);
  });
});

describe("listPendingInvites", () => {
  it("lists invites neither used nor expired, by user name", () => {
    inviteUser(store, { name: "zoe", groups: [], admin: false, clock });
    const ada = inviteUser(store, { name: "ada", groups: ["ops"], admin: true, clock, expiresInMs: 60_000 });
    const used = inviteUser(store, { name: "bob", groups: [], admin: false, clock });
    store.redeemInvite(hashInviteSecret(used.secret), now);
    expect(store.listPendingInvites(now).map((i) => [i.userName, i.expiresAt])).toEqual([
      ["ada", ada.expiresAt],
      ["zoe", now + 24 * 3600 * 1000],
    ]);
    expect(store.listPendingInvites(now + 60_000).map((i) => i.userName)).toEqual(["zoe"]);
  });
});
