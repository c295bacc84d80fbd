import { describe, expect, it } from "vitest";
import { TokenError } from "../identity/errors.js";
import type { Principal } from "../identity/types.js";
import { createGrantEnforcer, type GrantLookup, grantOf, LiveGrant, type Usage } from "./enforce.js";
import type { GrantRecord } from "./grants.js";

const ISSUER = "https://gate.example.com";
const T0 = Date.UTC(2026, 0, 1, 12);
const ID = "gr_AAAAAAAAAAAAAAAAAAAAAA";
const usage = (): Usage => ({ baseRequests: 0, baseCharge: 0, unflushedRequests: 0, unflushedCharge: 0 });

function live(over: Partial<GrantRecord> = {}, u: Usage = usage()): LiveGrant {
  const g: GrantRecord = {
    id: ID,
    userId: "u-ada",
    person: "ada",
    agent: "report-bot",
    actions: ["metadata", "read", "query"],
    scopes: ["/dbs/shop/colls/orders", "/dbs/lab/colls/*"],
    partitionKeys: null,
    publicKey: { kty: "EC", crv: "P-256", x: "x", y: "y" },
    keyThumbprint: "t",
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    budget: { requests: null, requestCharge: null },
    status: "active",
    confirmedBy: "key-1",
    confirmedAt: T0,
    confirmedAmr: ["hwk"],
    revokedAt: null,
    revokedReason: null,
    canonical: "{}",
    ...over,
  };
  return new LiveGrant(g, u);
}

const seg = (path: string) => (path === "/" ? [] : path.slice(1).split("/"));

describe("LiveGrant.outside: the grant's actions, scopes and partition keys", () => {
  it("allows a granted action on a covered resource, naming the grant when not", () => {
    const g = live();
    expect(g.outside("read", seg("/dbs/shop/colls/orders/docs/o1"), ["c1"])).toBeUndefined();
    expect(g.outside("query", seg("/dbs/lab/colls/any/docs"), undefined)).toBeUndefined();
    expect(g.outside("delete", seg("/dbs/shop/colls/orders/docs/o1"), ["c1"])).toBe(
      `outside agent grant ${ID} (agent:report-bot for ada): [delete] is not granted (the grant allows metadata, read, query)`,
    );
    expect(g.outside("read", seg("/dbs/shop/colls/customers/docs/c1"), ["c1"])).toMatch(
      /\[\/dbs\/shop\/colls\/customers\/docs\/c1\] is not within the grant's scopes/,
    );
    expect(g.outside("read", seg("/dbs/shopping/colls/orders"), undefined)).toMatch(/not within/);
  });

  it("metadata reaches the ancestors of a granted scope (the SDK's discovery); other actions do not", () => {
    const g = live();
    for (const path of ["/", "/dbs/shop", "/dbs/shop/colls/orders", "/dbs/lab"]) {
      expect(g.outside("metadata", seg(path), undefined), path).toBeUndefined();
    }
    expect(g.outside("read", seg("/dbs/shop"), undefined)).toMatch(/not within/);
    expect(g.outside("metadata", seg("/dbs/crm"), undefined)).toMatch(/not within/);
  });

  it("a partition-key restriction: listed keys only, none missing (cross-partition), metadata exempt", () => {
    const g = live({ partitionKeys: ['["c1"]', '["eu",7]'] });
    expect(g.outside("read", seg("/dbs/shop/colls/orders/docs/o1"), ["c1"])).toBeUndefined();
    expect(g.outside("read", seg("/dbs/shop/colls/orders/docs/o1"), ["eu", 7])).toBeUndefined();
    expect(g.outside("read", seg("/dbs/shop/colls/orders/docs/o3"), ["c2"])).toMatch(
      /partition key \["c2"\] is not one the grant allows/,
    );
    expect(g.outside("read", seg("/dbs/shop/colls/orders/docs/o3"), ["eu"])).toMatch(
      /not one the grant allows/,
    );
    expect(g.outside("query", seg("/dbs/shop/colls/orders/docs"), undefined)).toMatch(/cross-partition/);
    expect(g.outside("metadata", seg("/dbs/shop/colls/orders"), undefined)).toBeUndefined();
  });
});

describe("LiveGrant budgets", () => {
  it("requests never exceed the budget (counted before forwarding)", () => {
    const u = usage();
    const g = live({ budget: { requests: 3, requestCharge: null } }, u);
    expect([g.admit(), g.admit(), g.admit()]).toEqual([undefined, undefined, undefined]);
    expect(g.admit()).toMatch(/spent its budget of 3 requests; ask ada for a new grant/);
    expect(u.unflushedRequests).toBe(3);
  });

  it("request charge: refused once the answers' charges reach it (the last one may overshoot)", () => {
    const u = usage();
    const g = live({ budget: { requests: null, requestCharge: 10 } }, u);
    expect(g.admit()).toBeUndefined();
    g.charged(6);
    expect(g.admit()).toBeUndefined();
    g.charged(6.5);
    expect(g.admit()).toMatch(/spent its budget of 10 request units/);
    expect(u.unflushedCharge).toBe(12.5);
    g.charged(undefined);
    g.charged(-1);
    expect(u.unflushedCharge).toBe(12.5);
  });

  it("counts what other processes wrote (base) and what this one has not (unflushed)", () => {
    const g = live({ budget: { requests: 5, requestCharge: null } }, { ...usage(), baseRequests: 4 });
    expect(g.admit()).toBeUndefined();
    expect(g.admit()).toMatch(/spent/);
  });
});

describe("createGrantEnforcer.authenticate", () => {
  const grants = new Map<string, LiveGrant>();
  const store: GrantLookup = { lookup: (id) => grants.get(id) };
  const enforcer = createGrantEnforcer(store, { issuer: ISSUER });
  const principal = (over: Partial<Principal> = {}): Principal => ({
    sub: "ada",
    kind: "agent",
    groups: ["writers"],
    issuer: ISSUER,
    exp: 0,
    actor: { sub: "agent:report-bot" },
    grant: ID,
    ...over,
  });
  const refused = (p: Principal, now: number, message: RegExp) => {
    let err: unknown;
    try {
      enforcer.authenticate(p, now);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokenError);
    expect(err).toMatchObject({ code: "ERR_TOKEN_REVOKED", message: expect.stringMatching(message) });
  };

  it("returns the active grant of an agent's token", () => {
    grants.set(ID, live());
    expect(enforcer.authenticate(principal(), T0)).toBe(grants.get(ID));
  });

  it("no grant: a person's token passes; a federated agent passes; an own agent token without a grant is refused", () => {
    expect(
      enforcer.authenticate(principal({ grant: undefined, actor: undefined, kind: "user" }), T0),
    ).toBeUndefined();
    expect(
      enforcer.authenticate(principal({ grant: undefined, issuer: "https://login.example.com/" }), T0),
    ).toBeUndefined();
    refused(principal({ grant: undefined }), T0, /must name its grant/);
  });

  it("refuses unknown, revoked, pending and expired grants, and a token whose person or agent is not the grant's", () => {
    grants.set(ID, live());
    refused(principal({ grant: "gr_ZZZZZZZZZZZZZZZZZZZZZZ" }), T0, /unknown or expired/);
    refused(principal({ issuer: "https://other.example.com" }), T0, /only this gateway's own tokens/);
    refused(
      principal({ tokenIssuer: ISSUER, issuer: "https://login.example.com/" }),
      T0,
      /only this gateway's/,
    );
    refused(principal(), T0 + 3_600_000, /expired at/);
    refused(principal({ sub: "bob" }), T0, /person or agent/);
    refused(principal({ actor: { sub: "agent:other" } }), T0, /person or agent/);
    grants.set(ID, live({ status: "revoked", revokedReason: "revoked by ada" }));
    refused(principal(), T0, /was revoked \(revoked by ada\)/);
    grants.set(ID, live({ status: "pending" }));
    refused(principal(), T0, /never confirmed/);
  });

  it("grantOf without a grant store refuses tokens that name a grant (fail closed)", () => {
    expect(grantOf(undefined, principal({ grant: undefined }), T0)).toBeUndefined();
    expect(() => grantOf(undefined, principal(), T0)).toThrow(TokenError);
  });
});
