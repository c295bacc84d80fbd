import { createHash } from "node:crypto";
import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../audit/chain.js";
import { compilePolicy } from "../policy/compilePolicy.js";
import { parsePolicy } from "../policy/parsePolicy.js";
import {
  canonicalGrant,
  checkGrantAgainstPolicy,
  type GrantRecord,
  grantChallenge,
  grantStatus,
  grantView,
  heldRights,
  isGrantId,
  newGrantId,
  normalizeGrantRequest,
} from "./grants.js";

const DAY = 86_400_000;

async function publicJwk() {
  const { publicKey } = await generateKeyPair("ES256");
  const { kty, crv, x, y } = await exportJWK(publicKey);
  return { kty, crv, x, y };
}

const policy = compilePolicy(
  parsePolicy(
    `roles:
  shop-writer:
    - allow: [metadata, read, query, create]
      on: /dbs/shop/colls/orders
    - allow: [read]
      on: /dbs/shop/colls/*
  everything:
    - allow: ["*"]
      on: /dbs/lab
members:
  shop-writer: ["group:writers"]
  everything: ["sub:root"]
`,
    "policy.yaml",
  ),
);

function record(over: Partial<GrantRecord> = {}): GrantRecord {
  const base = {
    id: "gr_AAAAAAAAAAAAAAAAAAAAAA",
    userId: "u1",
    person: "ada",
    agent: "report-bot",
    actions: ["metadata", "read"] as GrantRecord["actions"],
    scopes: ["/dbs/shop/colls/orders"],
    partitionKeys: null,
    publicKey: { kty: "EC" as const, crv: "P-256" as const, x: "x".repeat(43), y: "y".repeat(43) },
    keyThumbprint: "thumb",
    createdAt: Date.UTC(2026, 0, 1),
    expiresAt: Date.UTC(2026, 0, 1, 8),
    budget: { requests: null, requestCharge: null },
  };
  const g = { ...base, ...over };
  return {
    status: "active",
    confirmedBy: "key1",
    confirmedAt: g.createdAt,
    confirmedAmr: ["hwk", "user"],
    revokedAt: null,
    revokedReason: null,
    canonical: canonicalGrant(g, "https://gate.example.com"),
    ...g,
  };
}

describe("normalizeGrantRequest", () => {
  it("normalizes actions (policy order, deduplicated), scopes, partition keys, lifetime, budget and the key", async () => {
    const publicKey = await publicJwk();
    const req = await normalizeGrantRequest(
      {
        agent: "report-bot",
        actions: ["query", "read", "metadata", "read"],
        scopes: ["/dbs/shop/colls/orders", "/dbs/shop/colls/customers", "/dbs/shop/colls/orders"],
        partitionKeys: ['"c1"', '["c2"]', '["c1"]'],
        lifetime: "30m",
        budget: { requests: 10, requestCharge: 2.5 },
        publicKey,
      },
      { maxLifetimeMs: 7 * DAY },
    );
    expect(req).toMatchObject({
      agent: "report-bot",
      actions: ["metadata", "read", "query"],
      scopes: ["/dbs/shop/colls/customers", "/dbs/shop/colls/orders"],
      partitionKeys: ['["c1"]', '["c2"]'],
      lifetimeMs: 30 * 60_000,
      budget: { requests: 10, requestCharge: 2.5 },
      publicKey,
    });
    const { calculateJwkThumbprint } = await import("jose");
    expect(req.keyThumbprint).toBe(await calculateJwkThumbprint(publicKey, "sha256"));
  });

  it("defaults: 8 h (or the maximum when shorter), no partition keys, no budget", async () => {
    const base = { agent: "a", actions: ["read"], scopes: ["/dbs/x"], publicKey: await publicJwk() };
    const req = await normalizeGrantRequest(base, { maxLifetimeMs: 7 * DAY });
    expect(req).toMatchObject({
      lifetimeMs: 8 * 3_600_000,
      partitionKeys: null,
      budget: { requests: null, requestCharge: null },
    });
    expect((await normalizeGrantRequest(base, { maxLifetimeMs: 3_600_000 })).lifetimeMs).toBe(3_600_000);
  });

  it("refuses, naming the field: private keys, other curves, bad points, unknown actions, bad scopes, long lifetimes", async () => {
    const publicKey = await publicJwk();
    const ok = { agent: "report-bot", actions: ["read"], scopes: ["/dbs/shop"], publicKey };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ agent: "Report Bot" }, /agent/],
      [{ agent: "" }, /agent/],
      [{ actions: [] }, /actions/],
      [{ actions: ["drop"] }, /not a short action name/],
      [{ actions: ["*"] }, /not a short action name/],
      [{ scopes: ["dbs/shop"] }, /scopes/],
      [{ scopes: ["/dbs/shop/colls"] }, /scopes/],
      [{ scopes: ["/dbs/sh*"] }, /scopes/],
      [{ partitionKeys: ["c1"] }, /not JSON/],
      [{ partitionKeys: ["[]"] }, /partitionKeys/],
      [{ partitionKeys: ['[{"a":1}]'] }, /partitionKeys/],
      [{ lifetime: "10s" }, /at least 1 minute/],
      [{ lifetime: "8d" }, /longer than this gateway allows/],
      [{ lifetime: "soon" }, /lifetime/],
      [{ budget: { requests: 0 } }, /budget.requests/],
      [{ budget: { requests: 1.5 } }, /budget.requests/],
      [{ budget: { requestCharge: -1 } }, /budget.requestCharge/],
      [{ budget: { tokens: 1 } }, /unknown member/],
      [{ publicKey: undefined }, /publicKey/],
      [{ publicKey: { ...publicKey, d: "secret" } }, /private key/],
      [{ publicKey: { ...publicKey, crv: "P-384" } }, /P-256/],
      [{ publicKey: { kty: "RSA", n: "x", e: "AQAB" } }, /P-256/],
      [{ publicKey: { ...publicKey, x: "short" } }, /coordinates/],
      [{ publicKey: { ...publicKey, y: publicKey.x } }, /not on the curve|not a valid/],
      [{ actions: Array.from({ length: 101 }, () => "read") }, /at most 100/],
    ];
    for (const [over, message] of cases) {
      await expect(
        normalizeGrantRequest({ ...ok, ...over }, { maxLifetimeMs: 7 * DAY }),
        JSON.stringify(over),
      ).rejects.toMatchObject({
        statusCode: 400,
        code: "ERR_GRANT_INVALID",
        message: expect.stringMatching(message),
      });
    }
    await expect(normalizeGrantRequest([], { maxLifetimeMs: DAY })).rejects.toMatchObject({
      statusCode: 400,
    });
  });
});

describe("checkGrantAgainstPolicy", () => {
  const writer = { sub: "ada", groups: ["writers"] };

  it("allows what the person holds on the scope or above it, and nothing else", () => {
    expect(
      checkGrantAgainstPolicy(policy, writer, ["metadata", "read", "query"], ["/dbs/shop/colls/orders"]),
    ).toEqual([]);
    expect(checkGrantAgainstPolicy(policy, writer, ["read"], ["/dbs/shop/colls/orders/docs/o1"])).toEqual([]);
    // read on any container of shop (the person's rule has a *): a * in the grant is covered.
    expect(checkGrantAgainstPolicy(policy, writer, ["read"], ["/dbs/shop/colls/customers"])).toEqual([]);
    expect(checkGrantAgainstPolicy(policy, writer, ["read"], ["/dbs/shop/colls/*"])).toEqual([]);
    expect(checkGrantAgainstPolicy(policy, writer, ["delete", "read"], ["/dbs/shop/colls/orders"])).toEqual([
      { action: "delete", scope: "/dbs/shop/colls/orders" },
    ]);
    expect(checkGrantAgainstPolicy(policy, writer, ["query"], ["/dbs/shop/colls/*"])).toEqual([
      { action: "query", scope: "/dbs/shop/colls/*" },
    ]);
  });

  it("does not count the metadata discovery rule: metadata above the held scope is not held", () => {
    expect(checkGrantAgainstPolicy(policy, writer, ["metadata"], ["/dbs/shop"])).toEqual([
      { action: "metadata", scope: "/dbs/shop" },
    ]);
    expect(checkGrantAgainstPolicy(policy, writer, ["read"], ["/"])).toEqual([
      { action: "read", scope: "/" },
    ]);
  });

  it("a wildcard in the grant needs a wildcard in the person's rule", () => {
    expect(
      checkGrantAgainstPolicy(policy, { sub: "root", groups: [] }, ["delete"], ["/dbs/lab/colls/*"]),
    ).toEqual([]);
    expect(
      checkGrantAgainstPolicy(policy, { sub: "root", groups: [] }, ["delete"], ["/dbs/*/colls/x"]),
    ).toEqual([{ action: "delete", scope: "/dbs/*/colls/x" }]);
    expect(
      checkGrantAgainstPolicy(policy, { sub: "nobody", groups: [] }, ["read"], ["/dbs/lab"]),
    ).toHaveLength(1);
  });
});

describe("heldRights", () => {
  it("lists what the person holds, scope by scope, actions in the policy's order", () => {
    expect(heldRights(policy, { sub: "ada", groups: ["writers"] })).toEqual([
      { scope: "/dbs/shop/colls/*", actions: ["read"] },
      { scope: "/dbs/shop/colls/orders", actions: ["metadata", "read", "create", "query"] },
    ]);
    expect(heldRights(policy, { sub: "nobody", groups: [] })).toEqual([]);
    expect(heldRights(policy, { sub: "root", groups: [] })[0]).toMatchObject({ scope: "/dbs/lab" });
  });
});

describe("canonicalGrant and grantChallenge", () => {
  it("is canonical JSON (sorted keys, no whitespace) of what the grant gives, and the challenge is its SHA-256", () => {
    const g = record({ partitionKeys: ['["c1"]'], budget: { requests: 5, requestCharge: null } });
    const text = canonicalGrant(g, "https://gate.example.com");
    expect(canonicalJson(JSON.parse(text))).toBe(text);
    expect(text).not.toMatch(/\s/);
    expect(JSON.parse(text)).toEqual({
      type: "cosmosgate.agent-grant/1",
      gateway: "https://gate.example.com",
      id: g.id,
      person: "ada",
      agent: "report-bot",
      actions: ["metadata", "read"],
      scopes: ["/dbs/shop/colls/orders"],
      partitionKeys: ['["c1"]'],
      publicKey: g.publicKey,
      keyThumbprint: "thumb",
      createdAt: "2026-01-01T00:00:00.000Z",
      expiresAt: "2026-01-01T08:00:00.000Z",
      budget: { requests: 5, requestCharge: null },
    });
    expect(grantChallenge(text)).toBe(createHash("sha256").update(text, "utf8").digest("base64url"));
    expect(grantChallenge(text)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("changes with anything the grant gives, and not with status or usage", () => {
    const base = canonicalGrant(record(), "https://gate.example.com");
    for (const over of [
      { actions: ["metadata", "read", "delete"] as GrantRecord["actions"] },
      { scopes: ["/dbs/shop"] },
      { partitionKeys: ['["c2"]'] },
      { agent: "other-bot" },
      { person: "bob" },
      { keyThumbprint: "other" },
      { expiresAt: Date.UTC(2026, 0, 2) },
      { budget: { requests: 1, requestCharge: null } },
      { id: "gr_BBBBBBBBBBBBBBBBBBBBBB" },
    ]) {
      expect(canonicalGrant(record(over), "https://gate.example.com"), JSON.stringify(over)).not.toBe(base);
    }
    expect(canonicalGrant(record(), "https://other.example.com")).not.toBe(base);
    expect(canonicalGrant(record({ status: "revoked", confirmedBy: "k9" }), "https://gate.example.com")).toBe(
      base,
    );
  });
});

describe("grant ids, status and view", () => {
  it("ids are gr_ and 22 base64url characters", () => {
    const id = newGrantId();
    expect(isGrantId(id)).toBe(true);
    expect(newGrantId()).not.toBe(id);
    for (const bad of ["", "gr_", "gr_short", "x".repeat(25), `${id}x`, "gr_AAAAAAAAAAAAAAAAAAAA/A", 7]) {
      expect(isGrantId(bad)).toBe(false);
    }
  });

  it("status: revoked, expired, pending, exhausted (either budget), active", () => {
    const g = record({ budget: { requests: 10, requestCharge: 5 } });
    const t = g.createdAt + 1000;
    const none = { requests: 0, requestCharge: 0 };
    expect(grantStatus(g, none, t)).toBe("active");
    expect(grantStatus(g, none, g.expiresAt)).toBe("expired");
    expect(grantStatus({ ...g, status: "pending" }, none, t)).toBe("pending");
    expect(grantStatus({ ...g, status: "revoked" }, none, t)).toBe("revoked");
    expect(grantStatus(g, { requests: 10, requestCharge: 0 }, t)).toBe("exhausted");
    expect(grantStatus(g, { requests: 1, requestCharge: 5.5 }, t)).toBe("exhausted");
    const view = grantView(g, { requests: 3, requestCharge: 1.23456 }, t);
    expect(view).toMatchObject({
      status: "active",
      used: { requests: 3, requestCharge: 1.23 },
      createdAt: "2026-01-01T00:00:00.000Z",
      confirmedAt: "2026-01-01T00:00:00.000Z",
      revokedAt: null,
    });
    expect(view).not.toHaveProperty("publicKey");
    expect(view).not.toHaveProperty("canonical");
  });
});
