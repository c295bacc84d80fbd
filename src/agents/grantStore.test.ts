import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type GrantStore, openGrantStore } from "./grantStore.js";
import { canonicalGrant, type GrantRecord } from "./grants.js";

const T0 = Date.UTC(2026, 0, 1, 12);
let dir: string;
let file: string;
const open: GrantStore[] = [];
const store = (opts: Parameters<typeof openGrantStore>[1] = {}) => {
  const s = openGrantStore(file, { flushMs: 60_000, ...opts });
  open.push(s);
  return s;
};

function record(id: string, over: Partial<GrantRecord> = {}): GrantRecord {
  const g = {
    id,
    userId: "u-ada",
    person: "ada",
    agent: "report-bot",
    actions: ["metadata", "read"] as GrantRecord["actions"],
    scopes: ["/dbs/shop/colls/orders"],
    partitionKeys: null,
    publicKey: { kty: "EC" as const, crv: "P-256" as const, x: "x".repeat(43), y: "y".repeat(43) },
    keyThumbprint: "thumb",
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    budget: { requests: null, requestCharge: null },
    ...over,
  };
  return {
    status: "pending",
    confirmedBy: null,
    confirmedAt: null,
    confirmedAmr: null,
    revokedAt: null,
    revokedReason: null,
    canonical: canonicalGrant(g, "https://gate.example.com"),
    ...g,
  };
}
const id = (n: number) => `gr_${String(n).padStart(22, "A")}`;
const confirm = (s: GrantStore, gid: string) =>
  s.confirm(gid, { credentialId: "key-1", amr: ["hwk", "user"], at: T0 + 1000 });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-grants-"));
  file = join(dir, "state", "agents.db");
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("GrantStore: the control plane's writes", () => {
  it("stores a grant in a 0600 file; pending → active (once) → revoked (once)", () => {
    const s = store();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const g = record(id(1));
    s.create(g);
    expect(s.get(g.id)).toEqual(g);
    const active = confirm(s, g.id);
    expect(active).toMatchObject({
      status: "active",
      confirmedBy: "key-1",
      confirmedAt: T0 + 1000,
      confirmedAmr: ["hwk", "user"],
    });
    expect(confirm(s, g.id)).toBeUndefined();
    const revoked = s.revoke(g.id, "revoked by ada", T0 + 2000);
    expect(revoked).toMatchObject({
      status: "revoked",
      revokedAt: T0 + 2000,
      revokedReason: "revoked by ada",
    });
    expect(s.revoke(g.id, "again", T0 + 3000)).toBeUndefined();
    expect(confirm(s, g.id)).toBeUndefined();
    expect(s.get(id(9))).toBeUndefined();
  });

  it("lists a person's grants (newest first) or everyone's, and counts the live ones", () => {
    const s = store();
    s.create(record(id(1)));
    s.create(record(id(2), { createdAt: T0 + 10 }));
    s.create(record(id(3), { userId: "u-bob", person: "bob" }));
    s.create(record(id(4), { expiresAt: T0 - 1 }));
    expect(s.list({ userId: "u-ada" }).map((g) => g.id)).toEqual([id(2), id(1), id(4)]);
    expect(s.list().length).toBe(4);
    s.revoke(id(1), "x", T0);
    expect(s.countLive("u-ada", T0)).toBe(1);
  });
});

describe("GrantStore: the data path's view", () => {
  it("holds active and recently ended grants (not pending ones), and sees this store's writes at once", () => {
    const s = store();
    s.create(record(id(1)));
    expect(s.lookup(id(1), T0)).toBeUndefined();
    confirm(s, id(1));
    const live = s.lookup(id(1), T0);
    expect(live).toMatchObject({ id: id(1), status: "active", person: "ada", actor: "agent:report-bot" });
    expect(s.lookup(id(1), T0)).toBe(live); // no reload without a change
    s.revoke(id(1), "revoked by ada", T0 + 5);
    expect(s.lookup(id(1), T0 + 10)).toMatchObject({ status: "revoked", revokedReason: "revoked by ada" });
    // A day after it ended, it leaves the view.
    expect(s.lookup(id(1), T0 + 5 + 24 * 3_600_000 + 60_001)).toBeUndefined();
  });

  it("sees another connection's revocation on the next lookup (PRAGMA data_version), or within the poll with pollMs", async () => {
    const gateway = store();
    const other = store(); // another gateway process, or the CLI
    gateway.create(record(id(1)));
    confirm(gateway, id(1));
    expect(gateway.lookup(id(1), T0)?.status).toBe("active");
    other.revoke(id(1), "revoked elsewhere", T0 + 1);
    expect(gateway.lookup(id(1), T0 + 2)?.status).toBe("revoked");

    const polled = store({ pollMs: 20 });
    other.create(record(id(2)));
    confirm(other, id(2));
    polled.lookup(id(2), T0); // loads the view
    other.revoke(id(2), "x", T0 + 1);
    await new Promise((r) => setTimeout(r, 80));
    expect(polled.lookup(id(2), T0 + 2)?.status).toBe("revoked");
  });

  it("counts usage in memory and writes it in batches; two processes add up", () => {
    const a = store();
    const b = store();
    a.create(record(id(1), { budget: { requests: 5, requestCharge: null } }));
    confirm(a, id(1));
    const ga = a.lookup(id(1), T0)!;
    expect(ga.admit()).toBeUndefined();
    ga.charged(2.5);
    expect(ga.admit()).toBeUndefined();
    // Not written yet: the file says 0, this process says 2.
    expect(b.usage({ id: id(1) })).toEqual({ requests: 0, requestCharge: 0 });
    expect(a.usage({ id: id(1) })).toEqual({ requests: 2, requestCharge: 2.5 });
    a.flush();
    expect(b.usage({ id: id(1) })).toEqual({ requests: 2, requestCharge: 2.5 });
    expect(a.usage({ id: id(1) })).toEqual({ requests: 2, requestCharge: 2.5 });
    // B counts too; after both flush, the file has the sum, and each view sees it.
    const gb = b.lookup(id(1), T0)!;
    expect(gb.admit()).toBeUndefined();
    expect(gb.admit()).toBeUndefined();
    b.flush();
    expect(a.lookup(id(1), T0)!.usage).toMatchObject({ baseRequests: 4, unflushedRequests: 0 });
    expect(a.lookup(id(1), T0)!.admit()).toBeUndefined(); // the 5th
    expect(a.lookup(id(1), T0)!.admit()).toMatch(/spent its budget of 5 requests/);
    a.flush();
    expect(b.lookup(id(1), T0)!.admit()).toMatch(/spent its budget/);
    expect(b.usage({ id: id(1) })).toEqual({ requests: 5, requestCharge: 2.5 });
  });

  it("keeps unflushed counts across a reload of the view, and close() writes them", () => {
    const a = store();
    a.create(record(id(1)));
    confirm(a, id(1));
    const g = a.lookup(id(1), T0)!;
    g.admit();
    g.admit();
    a.create(record(id(2))); // a change: the view reloads
    const again = a.lookup(id(1), T0)!;
    expect(again).not.toBe(g);
    expect(again.usage).toBe(g.usage);
    expect(a.usage({ id: id(1) }).requests).toBe(2);
    a.close();
    open.splice(open.indexOf(a), 1);
    expect(store().usage({ id: id(1) }).requests).toBe(2);
  });

  it("the flush timer writes counted usage", async () => {
    const a = store({ flushMs: 20 });
    const b = store();
    a.create(record(id(1)));
    confirm(a, id(1));
    a.lookup(id(1), T0)!.admit();
    await new Promise((r) => setTimeout(r, 80));
    expect(b.usage({ id: id(1) }).requests).toBe(1);
  });
});

describe("GrantStore: assertion jtis", () => {
  it("single use until expiry, bounded per grant, shared by processes", () => {
    const a = store({ maxLiveJtis: 2 });
    const b = store({ maxLiveJtis: 2 });
    expect(a.useJti(id(1), "j1", T0 + 60_000, T0)).toBe("ok");
    expect(b.useJti(id(1), "j1", T0 + 60_000, T0)).toBe("replayed");
    expect(a.useJti(id(2), "j1", T0 + 60_000, T0)).toBe("ok");
    expect(a.useJti(id(1), "j2", T0 + 30_000, T0)).toBe("ok");
    expect(a.useJti(id(1), "j3", T0 + 60_000, T0)).toBe("full");
    // j2 expires: room again, and j1 is still remembered.
    expect(a.useJti(id(1), "j3", T0 + 90_000, T0 + 30_000)).toBe("ok");
    expect(a.useJti(id(1), "j1", T0 + 90_000, T0 + 30_000)).toBe("replayed");
    // Everything expired: the table is empty again.
    a.useJti(id(3), "x", T0 + 200_000, T0 + 100_000);
    expect(a.db.prepare("SELECT count(*) FROM assertion_jtis").pluck().get() as number).toBe(1);
  });
});
