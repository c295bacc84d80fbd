import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tail } from "../audit/query.js";
import { verifyChain } from "../audit/verify.js";
import { hashInviteSecret } from "../identity/users/index.js";
import { openIdentityStore, type SqliteIdentityStore } from "../store/identityStore.js";
import type { CredentialRecord, UserRecord } from "../store/ports.js";
import { openDatabase } from "../store/sqlite.js";
import { CliError } from "./io.js";
import { captureIo } from "./testing.js";
import { registerUsers } from "./users.js";

let dir: string;
let stateDir: string;
let config: string;
let store: SqliteIdentityStore;
const now = Date.now();

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-users-"));
  stateDir = join(dir, "state");
  config = join(dir, "cosmosgate.yaml");
  writeFileSync(config, `stateDir: ./state\ncontrolPlane:\n  publicUrl: https://gw.example.com/\n`);
  store = openIdentityStore(join(stateDir, "state.db")); // as the running gateway would have it open
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function users(...args: string[]) {
  const io = captureIo();
  const program = new Command("cosmosgate").exitOverride();
  program.configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  registerUsers(program, io);
  await program.parseAsync(["node", "cosmosgate", "users", ...args, "--config", config]);
  return io;
}

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

function addKey(user: UserRecord, id: string, extra: Partial<CredentialRecord> = {}): void {
  store.addCredential({
    id,
    userId: user.id,
    publicKey: new Uint8Array([1, 2, 3]),
    counter: 0,
    transports: ["usb"],
    aaguid: "00000000-0000-0000-0000-000000000000",
    fmt: "none",
    deviceBound: true,
    backedUp: false,
    nickname: `${user.name}'s key`,
    createdAt: now,
    useCount: 0,
    ...extra,
  });
}

function auditRecords() {
  const db = openDatabase(join(stateDir, "audit.db"), { readonly: true });
  try {
    expect(verifyChain(db).ok).toBe(true);
    return tail(db, 100);
  } finally {
    db.close();
  }
}

describe("cosmosgate users", () => {
  it("invite prints a one-time enrollment URL on the public URL, stores its hash, and audits", async () => {
    const io = await users("invite", "ada", "--group", "analysts", "--group", "ops", "--expires", "2h");
    const m = /^(https:\/\/gw\.example\.com\/enroll\?invite=([A-Za-z0-9_-]{43}))$/m.exec(io.stdout);
    expect(m).not.toBeNull();
    expect(io.stdout).toMatch(
      /Invited ada \(groups analysts, ops\)\. Enrollment URL, valid once until \S+Z \(2h\)/,
    );
    const invite = store.getInvite(hashInviteSecret(m![2]));
    expect(invite).toMatchObject({ userName: "ada", groups: ["analysts", "ops"], admin: false });
    expect(invite!.expiresAt - invite!.createdAt).toBe(2 * 3600_000);
    expect(invite!.createdBy).toMatch(/^cli:/);
    const [record] = auditRecords();
    expect(record).toMatchObject({ type: "user.invited", resource: "/users/ada", decision: "allow" });
    expect(record.subject).toMatch(/^cli:/);
    expect(JSON.stringify(record)).not.toContain(m![2]); // the secret is never audited
  });

  it("invite --admin --json, and refuses bad input with the reason", async () => {
    const io = await users("invite", "grace", "--admin", "--json");
    const out = JSON.parse(io.stdout);
    expect(out).toMatchObject({ name: "grace", url: expect.stringMatching(/\/enroll\?invite=/) });
    addUser("ada");
    await expect(users("invite", "ada")).rejects.toThrow(/already exists/);
    await expect(users("invite", "bad name")).rejects.toThrow(/not valid/);
    await expect(users("invite", "x", "--expires", "45d")).rejects.toMatchObject({ exitCode: 2 });
  });

  it("list shows groups, admin, disabled, keys and last use", async () => {
    const ada = addUser("ada", { groups: ["analysts"], admin: true });
    addKey(ada, "k1", { lastUsedAt: Date.UTC(2026, 0, 2) });
    addKey(ada, "k2", { lastUsedAt: Date.UTC(2026, 0, 3), suspendedAt: now, suspendedReason: "counter" });
    addUser("bob", { disabled: true });
    const io = await users("list");
    const lines = io.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME +GROUPS +ADMIN +DISABLED +KEYS +LAST USED$/);
    expect(lines[1]).toMatch(/^ada +analysts +yes +no +2 \(1 suspended\) +2026-01-03T00:00:00\.000Z$/);
    expect(lines[2]).toMatch(/^bob +- +no +yes +0 +never$/);
    const json = JSON.parse((await users("list", "--json")).stdout);
    expect(json[0]).toMatchObject({ name: "ada", keys: 2, suspendedKeys: 1, admin: true });
  });

  it("disable revokes the user's sessions at once; enable lets them sign in again; both audited", async () => {
    addUser("root", { admin: true });
    const ada = addUser("ada");
    addKey(ada, "k1");
    store.createSession({
      id: "s1",
      userId: ada.id,
      credentialId: "k1",
      amr: ["hwk"],
      authTime: now,
      createdAt: now,
      expiresAt: now + 3600_000,
    });
    const io = await users("disable", "ada");
    expect(io.stdout).toContain("Disabled ada; 1 session(s) revoked.");
    // the gateway's own connection sees it
    expect(store.getUserByName("ada")?.disabled).toBe(true);
    expect(store.getSession("s1")?.revokedAt).toBeDefined();
    expect(store.revocations().disabledSubjects.has("ada")).toBe(true);
    await users("enable", "ada");
    expect(store.getUserByName("ada")?.disabled).toBe(false);
    expect(auditRecords().map((r) => [r.type, r.resource])).toEqual([
      ["user.disabled", "/users/ada"],
      ["user.enabled", "/users/ada"],
    ]);
  });

  it("refuses to disable the last administrator and unknown users", async () => {
    addUser("root", { admin: true });
    const error = await users("disable", "root").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as Error).message).toMatch(/last enabled administrator/);
    await expect(users("enable", "nobody")).rejects.toThrow(/no user is named "nobody"/);
  });

  it("keys lists a user's keys; reenable-key re-enables a suspended one", async () => {
    const ada = addUser("ada");
    addKey(ada, "k1", { lastUsedAt: Date.UTC(2026, 0, 2), useCount: 7 });
    addKey(ada, "k2", {
      deviceBound: false,
      suspendedAt: Date.UTC(2026, 0, 4),
      suspendedReason: "counter went backwards",
    });
    const io = await users("keys", "ada");
    expect(io.stdout).toMatch(/^CREDENTIAL ID +NICKNAME +TYPE +CREATED +LAST USED +USES +STATUS$/m);
    expect(io.stdout).toMatch(/^k1 +ada's key +hardware-bound +\S+ +2026-01-02T00:00:00\.000Z +7 +active$/m);
    expect(io.stdout).toMatch(
      /^k2 +ada's key +synced passkey .* suspended 2026-01-04T00:00:00\.000Z: counter went backwards$/m,
    );

    const re = await users("reenable-key", "k2");
    expect(re.stdout).toContain("Re-enabled the key k2 of ada");
    expect(store.getCredential("k2")?.suspendedAt).toBeUndefined();
    expect((await users("reenable-key", "k2")).stdout).toContain("not suspended; nothing to do");
    await expect(users("reenable-key", "nope")).rejects.toThrow(/no key has the credential ID "nope"/);
    const [record] = auditRecords();
    expect(record).toMatchObject({
      type: "credential.reenabled",
      credential: "k2",
      resource: "/users/ada",
      subjectKind: "operator",
      // The key is described from the store when the event is recorded.
      credentialName: "ada's key",
      deviceBound: false,
      details: { user: "ada" },
    });
    expect(record.subject).toMatch(/^cli:/);
    expect(JSON.parse((await users("keys", "ada", "--json")).stdout)[1]).toMatchObject({
      id: "k2",
      suspended: null,
    });
  });

  it("refuses to run against a directory where the gateway never ran", async () => {
    writeFileSync(config, `stateDir: ./elsewhere\n`);
    await expect(users("list")).rejects.toThrow(/no gateway state at .*elsewhere.*start the gateway once/);
    expect(existsSync(join(dir, "elsewhere"))).toBe(false);
  });

  it("has help with examples for every subcommand", async () => {
    for (const cmd of ["invite", "list", "disable", "enable", "keys", "reenable-key"]) {
      await expect(users(cmd, "--help")).rejects.toMatchObject({ code: "commander.helpDisplayed" });
    }
  });
});
