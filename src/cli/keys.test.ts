import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tail } from "../audit/query.js";
import { createKeyring } from "../identity/tokens/keyring.js";
import { openIdentityStore, type SqliteIdentityStore } from "../store/identityStore.js";
import { openDatabase } from "../store/sqlite.js";
import { keyRows, registerKeys } from "./keys.js";
import { captureIo } from "./testing.js";

const MIN = 60_000;
let dir: string;
let config: string;
let store: SqliteIdentityStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-keys-"));
  config = join(dir, "cosmosgate.yaml");
  writeFileSync(config, "stateDir: ./state\n");
  store = openIdentityStore(join(dir, "state", "state.db"));
});
afterEach(() => {
  store.close();
  delete process.env.COSMOSGATE_TEST_KEK;
  rmSync(dir, { recursive: true, force: true });
});

async function keys(...args: string[]) {
  const io = captureIo();
  const program = new Command("cosmosgate").exitOverride();
  program.configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  registerKeys(program, io);
  await program.parseAsync(["node", "cosmosgate", "keys", ...args, "--config", config]);
  return io;
}

/** The keys a gateway would have made when it started `agoMs` ago (default settings). */
async function gatewayStartedAgo(agoMs: number, kek?: Uint8Array) {
  const keyring = createKeyring({ store, clock: () => Date.now() - agoMs, ...(kek ? { kek } : {}) });
  await keyring.ensure();
}

describe("cosmosgate keys", () => {
  it("list says when there are no keys yet", async () => {
    expect((await keys("list")).stdout).toContain("No signing keys yet");
  });

  it("list shows kid, state, created, activates, retires, leaves JWKS", async () => {
    await gatewayStartedAgo(30 * MIN);
    const io = await keys("list");
    const lines = io.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^KID +STATE +CREATED +ACTIVATES +RETIRES +LEAVES JWKS +AT REST$/);
    expect(lines[1]).toMatch(/^\S{43} +current +\S+Z +\S+Z +\S+Z +\S+Z +plain$/);
    expect(lines[2]).toMatch(/^\S{43} +next +/);
    const rows = JSON.parse((await keys("list", "--json")).stdout);
    expect(rows.map((r: { state: string }) => r.state)).toEqual(["current", "next"]);
    expect(rows[0]).toEqual(keyRows(store.listSigningKeys(), Date.now())[0]);
  });

  it("rotate switches to the published next key at once, retires the old one, and audits", async () => {
    await gatewayStartedAgo(30 * MIN);
    const [current, next] = keyRows(store.listSigningKeys(), Date.now());
    const io = await keys("rotate");
    expect(io.stdout).toContain(`Rotated: ${next.kid} signs now; ${current.kid} retired`);
    const after = keyRows(store.listSigningKeys(), Date.now());
    expect(after.map((r) => [r.kid === current.kid || r.kid === next.kid ? r.kid : "new", r.state])).toEqual([
      [current.kid, "retired"],
      [next.kid, "current"],
      ["new", "next"],
    ]);
    // the retired key stays in the JWKS past its tokens' lifetime
    const retired = after[0];
    expect(Date.parse(retired.leavesJwks) - Date.parse(retired.retires)).toBeGreaterThanOrEqual(10 * MIN);

    const db = openDatabase(join(dir, "state", "audit.db"), { readonly: true });
    try {
      const records = tail(db, 10);
      expect(records.map((r) => r.type)).toEqual([
        "signing_key.retired",
        "signing_key.activated",
        "signing_key.created",
      ]);
      expect(records[0].reason).toContain("(cosmosgate keys rotate)");
      expect(records[0].resource).toBe(`/keys/${current.kid}`);
    } finally {
      db.close();
    }
  });

  it("rotate right after a rotation schedules the switch for when the next key is published long enough", async () => {
    await gatewayStartedAgo(30 * MIN);
    await keys("rotate");
    const io = await keys("rotate");
    expect(io.stdout).toMatch(/^Rotation scheduled: \S+ replaces \S+ at \S+Z, once it has been in the JWKS/);
  });

  it("rotate needs the key-encryption key when one is configured, and encrypts new keys with it", async () => {
    const kek = randomBytes(32);
    writeFileSync(
      config,
      "stateDir: ./state\nidentity:\n  tokens:\n    keyEncryption: {env: COSMOSGATE_TEST_KEK}\n",
    );
    await gatewayStartedAgo(30 * MIN, kek);
    expect((await keys("list")).stdout).toContain("encrypted"); // listing needs no KEK
    await expect(keys("rotate")).rejects.toThrow(/COSMOSGATE_TEST_KEK.*is not set/);
    process.env.COSMOSGATE_TEST_KEK = kek.toString("base64");
    await keys("rotate");
    expect(keyRows(store.listSigningKeys(), Date.now()).every((r) => r.encrypted)).toBe(true);
    process.env.COSMOSGATE_TEST_KEK = randomBytes(32).toString("base64");
    await expect(keys("rotate")).rejects.toThrow(/different key encryption key/);
  });

  it("has help for list and rotate", async () => {
    for (const cmd of ["list", "rotate"]) {
      await expect(keys(cmd, "--help")).rejects.toMatchObject({ code: "commander.helpDisplayed" });
    }
  });
});
