/**
 * The console's audit and policy API against a real gateway: people enroll and sign in with the
 * real WebAuthn ceremony (a software authenticator), make Cosmos DB requests through the data
 * plane, and the API must find exactly those records — computed here independently from the audit
 * database — and refuse what a person may not see.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/server";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../src/audit/types.js";
import { inviteUser } from "../src/identity/users/index.js";
import {
  createSoftAuthenticator,
  type SoftAuthenticator,
} from "../src/identity/webauthn/testing/softAuthenticator.js";
import type {
  AuditPage,
  AuditRecordDetail,
  PolicyView,
  TimelineView,
} from "../src/server/controlPlane/consoleApi.js";
import { type ControlPlaneResponse, controlPlaneClient } from "./helpers/controlPlaneClient.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

let h: Harness;
const client = controlPlaneClient(() => Number(new URL(h.controlUrl).port));
/** GET with a session cookie (the client adds the CSRF token to writes). */
const get = (path: string, cookie?: string) => client.send("GET", path, cookie);

interface Person {
  name: string;
  key: SoftAuthenticator;
  credential: string;
  cookie: string;
  token: string;
}

async function enroll(key: SoftAuthenticator, invite: string): Promise<string> {
  const options = await client.post("/auth/webauthn/register/options", { invite });
  expect(options.status, options.text).toBe(200);
  const verify = await client.post("/auth/webauthn/register/verify", {
    response: key.register(options.json as PublicKeyCredentialCreationOptionsJSON),
    nickname: "test key",
  });
  expect(verify.status, verify.text).toBe(200);
  return verify.json.credentialId as string;
}

async function signIn(name: string, key: SoftAuthenticator): Promise<{ cookie: string; token: string }> {
  const options = await client.post("/auth/webauthn/login/options", { username: name });
  expect(options.status, options.text).toBe(200);
  const res = await client.post("/auth/webauthn/login/verify", {
    response: key.authenticate(options.json as PublicKeyCredentialRequestOptionsJSON),
  });
  expect(res.status, res.text).toBe(200);
  return { cookie: res.cookie!, token: res.json.access_token as string };
}

async function person(name: string, invite: string): Promise<Person> {
  const key = createSoftAuthenticator({ rpId: "localhost", origin: h.controlUrl });
  const credential = await enroll(key, invite);
  return { name, key, credential, ...(await signIn(name, key)) };
}

/** A data-plane request with a person's access token. */
function data(p: Person, method: string, path: string, pk?: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${p.token}` };
  if (pk !== undefined) headers["x-ms-documentdb-partitionkey"] = pk;
  if (body !== undefined) headers["content-type"] = "application/json";
  return h.raw(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
}

/** Every record, straight from the audit database (the ground truth the API is compared with). */
function allRecords(): AuditRecord[] {
  const db = new Database(h.gw.auditFile, { readonly: true });
  try {
    return (
      db.prepare("SELECT seq, data, prev_hash, hash FROM audit_events ORDER BY seq").all() as {
        seq: number;
        data: string;
        prev_hash: string;
        hash: string;
      }[]
    ).map((r) => ({ ...JSON.parse(r.data), seq: r.seq, prevHash: r.prev_hash, hash: r.hash }));
  } finally {
    db.close();
  }
}

/** The seqs of the records matching `pred`, newest first (time, then seq), as the API orders them. */
function expected(pred: (r: AuditRecord) => boolean): number[] {
  return allRecords()
    .filter(pred)
    .sort((a, b) => b.time - a.time || b.seq - a.seq)
    .map((r) => r.seq);
}

async function search(query: string, cookie: string): Promise<number[]> {
  const res = await get(`/api/audit/records?limit=500${query ? `&${query}` : ""}`, cookie);
  expect(res.status, res.text).toBe(200);
  const page = res.json as AuditPage;
  expect(page.next).toBeNull();
  return page.records.map((r) => r.seq);
}

function errorCode(res: ControlPlaneResponse): string {
  return res.json?.code ?? res.json?.error;
}

let admin: Person;
let bob: Person;
let t0: number;
let mid: number;
let end: number;

beforeAll(async () => {
  h = await startHarness({ extraConfig: "audit:\n  checkpoints: {every: 5, interval: 1s}\n" });
  t0 = Date.now();
  admin = await person("admin", new URL(h.gw.firstAdminUrl!).searchParams.get("invite")!);
  const { secret } = inviteUser(h.gw.identity.store, {
    name: "bob",
    groups: ["analysts"],
    admin: false,
    clock: Date.now,
  });
  bob = await person("bob", secret);

  // The administrator sets up a database, a container and two items.
  expect((await data(admin, "POST", "/dbs", undefined, { id: "shop" })).status).toBe(201);
  const container = await data(admin, "POST", "/dbs/shop/colls", undefined, {
    id: "orders",
    partitionKey: { paths: ["/pk"], kind: "Hash" },
  });
  expect(container.status, container.body).toBe(201);
  for (const [id, pk] of [
    ["o1", "a"],
    ["o2", "b"],
  ]) {
    const created = await data(admin, "POST", "/dbs/shop/colls/orders/docs", `["${pk}"]`, { id, pk });
    expect(created.status, created.body).toBe(201);
  }
  // Bob reads (allowed by orders-reader)...
  expect((await data(bob, "GET", "/dbs/shop/colls/orders/docs/o1", '["a"]')).status).toBe(200);
  await sleep(5);
  mid = Date.now();
  await sleep(5);
  // ...and is refused a delete and a container he has no role on.
  expect((await data(bob, "DELETE", "/dbs/shop/colls/orders/docs/o2", '["b"]')).status).toBe(403);
  expect((await data(bob, "GET", "/dbs/shop/colls/secret/docs/x", '["x"]')).status).toBe(403);
  expect((await data(admin, "GET", "/dbs/shop/colls/orders/docs/o2", '["b"]')).status).toBe(200);
  end = Date.now() + 1;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe("GET /api/audit/records", () => {
  it("finds exactly the records of a person, a key, an action, a resource, a decision and a time window", async () => {
    const c = admin.cookie;
    expect(await search("actor=bob", c)).toEqual(expected((r) => r.subject === "bob"));
    expect(await search(`key=${encodeURIComponent(bob.credential)}`, c)).toEqual(
      expected((r) => r.credential === bob.credential),
    );
    expect(await search("action=delete", c)).toEqual(expected((r) => r.actions.includes("delete")));
    expect(await search(`resource=${encodeURIComponent("/dbs/shop/colls/orders/docs/o1")}`, c)).toEqual(
      expected((r) => r.resource === "/dbs/shop/colls/orders/docs/o1"),
    );
    expect(await search(`resource=${encodeURIComponent("/dbs/shop/")}`, c)).toEqual(
      expected((r) => r.resource.startsWith("/dbs/shop/")),
    );
    expect(await search("decision=deny", c)).toEqual(expected((r) => r.decision === "deny"));
    const from = new Date(mid).toISOString();
    const to = new Date(end).toISOString();
    expect(await search(`from=${from}&to=${to}`, c)).toEqual(expected((r) => r.time >= mid && r.time < end));
    // Combined: bob's refusals after the midpoint — exactly the two data-plane denials.
    const denied = await search(`actor=bob&decision=deny&type=data.request&from=${from}`, c);
    expect(denied).toEqual(
      expected(
        (r) => r.subject === "bob" && r.decision === "deny" && r.type === "data.request" && r.time >= mid,
      ),
    );
    expect(denied).toHaveLength(2);
    const records = (await get(`/api/audit/records?actor=bob&decision=deny&type=data.request`, c)).json
      .records as AuditRecord[];
    expect(records.map((r) => r.resource).sort()).toEqual([
      "/dbs/shop/colls/orders/docs/o2",
      "/dbs/shop/colls/secret/docs/x",
    ]);
    expect(records.every((r) => r.credential === bob.credential && typeof r.hash === "string")).toBe(true);
  });

  it("pages newest first through `before`, without gaps or repeats", async () => {
    const all = await search("", admin.cookie);
    expect(all.length).toBeGreaterThan(10);
    const seen: number[] = [];
    let before: number | null = null;
    let pages = 0;
    do {
      const res = await get(
        `/api/audit/records?limit=3${before === null ? "" : `&before=${before}`}`,
        admin.cookie,
      );
      expect(res.status, res.text).toBe(200);
      const page = res.json as AuditPage;
      expect(page.records.length).toBeLessThanOrEqual(3);
      seen.push(...page.records.map((r) => r.seq));
      before = page.next;
      pages += 1;
    } while (before !== null && pages < 200);
    // Reading the audit writes nothing to it: the pages hold exactly the whole trail, once each.
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(all);
    // The default limit is 100, the largest 500.
    const first = (await get("/api/audit/records?limit=2", admin.cookie)).json as AuditPage;
    expect(first.records.map((r) => r.seq)).toEqual(all.slice(0, 2));
    expect(first.next).toBe(all[1]);
  });

  it("shows a non-administrator only their own records, and refuses anyone else's", async () => {
    const mine = await search("", bob.cookie);
    expect(mine).toEqual(expected((r) => r.subject === "bob"));
    expect(mine.length).toBeGreaterThan(3);
    // Filters narrow within their own records.
    expect(await search("decision=deny", bob.cookie)).toEqual(
      expected((r) => r.subject === "bob" && r.decision === "deny"),
    );
    expect(await search("actor=bob&action=read", bob.cookie)).toEqual(
      expected((r) => r.subject === "bob" && r.actions.includes("read")),
    );
    // Asking for someone else is refused, not silently narrowed.
    const other = await get("/api/audit/records?actor=admin", bob.cookie);
    expect(other.status).toBe(403);
    expect(errorCode(other)).toBe("ERR_FORBIDDEN");
    // An administrator's record detail is "not found" to bob, like a record that does not exist.
    const adminSeq = expected((r) => r.subject === "admin" && r.type === "data.request")[0];
    const hidden = await get(`/api/audit/records/${adminSeq}`, bob.cookie);
    expect(hidden.status).toBe(404);
    expect(errorCode(hidden)).toBe("ERR_AUDIT_RECORD_NOT_FOUND");
    expect((await get("/api/audit/records/99999999", bob.cookie)).status).toBe(404);
    expect((await get(`/api/audit/records/${mine[0]}`, bob.cookie)).status).toBe(200);
    // Nor can an administrator's record serve as a page cursor.
    const cursor = await get(`/api/audit/records?before=${adminSeq}`, bob.cookie);
    expect(cursor.status).toBe(400);
    // Bob's pages.
    const page = (await get("/api/audit/records?limit=2", bob.cookie)).json as AuditPage;
    const next = (await get(`/api/audit/records?limit=2&before=${page.next}`, bob.cookie)).json as AuditPage;
    expect([...page.records, ...next.records].map((r) => r.seq)).toEqual(mine.slice(0, 4));
  });

  it("checks every query parameter and names the bad one", async () => {
    const c = admin.cookie;
    for (const [query, named] of [
      ["limit=0", /limit/],
      ["limit=501", /limit/],
      ["limit=ten", /limit/],
      ["before=-1", /before/],
      ["decision=maybe", /decision/],
      ["action=dlete", /action/],
      ["type=Data%20Request", /type/],
      ["from=yesterday", /from/],
      [`from=${new Date(end).toISOString()}&to=${new Date(t0).toISOString()}`, /from/],
      ["actor=", /actor/],
      ["actor=a&actor=b", /actor/],
      ["resource=%2Fdbs%0Ax", /resource/],
      ["colour=blue", /colour/],
    ] as const) {
      const res = await get(`/api/audit/records?${query}`, c);
      expect(res.status, `${query}: ${res.text}`).toBe(400);
      expect(res.json.message, query).toMatch(named);
    }
    expect((await get("/api/audit/records/abc", c)).status).toBe(400);
    expect((await get("/api/audit/timeline?buckets=201", c)).status).toBe(400);
    expect((await get("/api/audit/export?format=xml", c)).status).toBe(400);
    expect((await get("/api/audit/keys?actor=bob", c)).status).toBe(400);
  });

  it("answers 401 without a session", async () => {
    for (const path of [
      "/api/audit/records",
      "/api/audit/records/1",
      "/api/audit/timeline",
      "/api/audit/keys",
      "/api/audit/export",
      "/api/audit/stream",
      "/api/policy",
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
    }
  });
});

describe("GET /api/audit/timeline", () => {
  it("counts allowed and refused records per bucket, as the trail holds them", async () => {
    const from = t0 - 1000;
    const res = await get(
      `/api/audit/timeline?from=${new Date(from).toISOString()}&to=${new Date(end).toISOString()}&buckets=12`,
      admin.cookie,
    );
    expect(res.status, res.text).toBe(200);
    const view = res.json as TimelineView;
    expect(view.buckets.length).toBeGreaterThanOrEqual(1);
    expect(view.buckets.length).toBeLessThanOrEqual(12);
    const records = allRecords().filter((r) => r.time >= from && r.time < end);
    for (const b of view.buckets) {
      const start = Date.parse(b.start);
      const inside = records.filter((r) => r.time >= start && r.time < start + view.bucketMs);
      expect(b.allow, b.start).toBe(inside.filter((r) => r.decision === "allow").length);
      expect(b.deny, b.start).toBe(inside.filter((r) => r.decision !== "allow").length);
    }
    const sum = view.buckets.reduce((n, b) => n + b.allow + b.deny, 0);
    expect(sum).toBe(records.length);
    expect(view.buckets.reduce((n, b) => n + b.deny, 0)).toBeGreaterThanOrEqual(2);
  });

  it("counts only a non-administrator's own records, and honours the filters", async () => {
    const q = `from=${new Date(t0 - 1000).toISOString()}&to=${new Date(end).toISOString()}&buckets=5`;
    const mine = (await get(`/api/audit/timeline?${q}`, bob.cookie)).json as TimelineView;
    const bobs = allRecords().filter((r) => r.subject === "bob" && r.time >= t0 - 1000 && r.time < end);
    expect(mine.buckets.reduce((n, b) => n + b.allow, 0)).toBe(
      bobs.filter((r) => r.decision === "allow").length,
    );
    expect(mine.buckets.reduce((n, b) => n + b.deny, 0)).toBe(
      bobs.filter((r) => r.decision !== "allow").length,
    );
    const refused = (await get(`/api/audit/timeline?${q}&decision=deny`, admin.cookie)).json as TimelineView;
    expect(refused.buckets.reduce((n, b) => n + b.allow, 0)).toBe(0);
    expect(refused.buckets.reduce((n, b) => n + b.deny, 0)).toBe(
      allRecords().filter((r) => r.decision === "deny" && r.time >= t0 - 1000 && r.time < end).length,
    );
    expect((await get(`/api/audit/timeline?actor=admin`, bob.cookie)).status).toBe(403);
    // A window without records is all zeros.
    const future = `from=${new Date(end + 86_400_000).toISOString()}&to=${new Date(end + 2 * 86_400_000).toISOString()}`;
    const empty = (await get(`/api/audit/timeline?${future}&buckets=24`, admin.cookie)).json as TimelineView;
    expect(empty.bucketMs).toBe(3_600_000);
    expect(empty.buckets.length).toBe(24);
    expect(empty.buckets.every((b) => b.allow === 0 && b.deny === 0)).toBe(true);
    // The default window is the last 24 hours, in at most 200 buckets.
    const def = (await get("/api/audit/timeline?buckets=200", admin.cookie)).json as TimelineView;
    expect(Date.parse(def.to) - Date.parse(def.from)).toBe(86_400_000);
    expect(def.buckets.length).toBeLessThanOrEqual(200);
  });
});

describe("GET /api/audit/keys", () => {
  it("reports every key to an administrator and only their own to anyone else", async () => {
    const all = await get("/api/audit/keys", admin.cookie);
    expect(all.status, all.text).toBe(200);
    const ids = all.json.keys.map((k: { credential: string }) => k.credential);
    expect(ids).toEqual(expect.arrayContaining([admin.credential, bob.credential]));
    const bobRow = all.json.keys.find((k: { credential: string }) => k.credential === bob.credential);
    expect(bobRow).toMatchObject({ owner: "bob", nickname: "test key", status: "active" });
    expect(bobRow.byAction.delete).toMatchObject({ denied: 1 });

    const own = await get("/api/audit/keys", bob.cookie);
    expect(own.status, own.text).toBe(200);
    expect(own.json.keys.map((k: { credential: string }) => k.credential)).toEqual([bob.credential]);
    const k = own.json.keys[0];
    expect(own.json.totals).toEqual({
      records: k.uses,
      withKey: k.uses,
      allowed: k.allowed,
      refused: k.denied + k.errors,
    });
    const overall = own.json.overall.reduce(
      (n: number, b: { allowed: number; denied: number }) => n + b.allowed + b.denied,
      0,
    );
    expect(overall).toBe(k.uses);
  });
});

describe("GET /api/audit/export", () => {
  it("downloads the current filter as JSON lines, in chain order, with checkpoints", async () => {
    const res = await fetch(`${h.controlUrl}/api/audit/export?format=jsonl&actor=bob`, {
      headers: { cookie: `cg_session=${admin.cookie}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(
      /^attachment; filename="cosmosgate-audit-.*\.jsonl"$/,
    );
    expect(res.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text())
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const records = lines.filter((l) => l.seq !== undefined);
    expect(records.map((r) => r.seq)).toEqual(
      allRecords()
        .filter((r) => r.subject === "bob")
        .map((r) => r.seq),
    );
    expect(records.every((r) => r.subject === "bob" && /^[0-9a-f]{64}$/.test(r.hash))).toBe(true);
  });

  it("downloads CSV of the filter, and scopes a non-administrator to their own records", async () => {
    const csv = async (query: string, cookie: string) => {
      const res = await fetch(`${h.controlUrl}/api/audit/export?${query}`, {
        headers: { cookie: `cg_session=${cookie}` },
      });
      return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
    };
    const denied = await csv("format=csv&decision=deny", admin.cookie);
    expect(denied.status).toBe(200);
    expect(denied.type).toMatch(/^text\/csv/);
    const [header, ...rows] = denied.text.split("\r\n").filter(Boolean);
    expect(header.startsWith("seq,time,type,")).toBe(true);
    const seqs = rows.filter((r) => /^\d+,/.test(r)).map((r) => Number(r.split(",")[0]));
    expect(seqs).toEqual(
      allRecords()
        .filter((r) => r.decision === "deny")
        .map((r) => r.seq),
    );

    const own = await csv("format=csv", bob.cookie);
    const ownSeqs = own.text
      .split("\r\n")
      .filter((r) => /^\d+,/.test(r))
      .map((r) => Number(r.split(",")[0]));
    expect(ownSeqs).toEqual(
      allRecords()
        .filter((r) => r.subject === "bob")
        .map((r) => r.seq),
    );
    expect((await csv("format=csv&actor=admin", bob.cookie)).status).toBe(403);
    // Each finished export frees its place: more than the per-session limit, one after another.
    for (let i = 0; i < 3; i++) expect((await csv("format=jsonl", bob.cookie)).status).toBe(200);
  });
});

describe("GET /api/audit/stream", () => {
  /** Opens a live stream; `events` collects the records it delivers. */
  async function open(cookie: string, query = "", lastEventId?: number) {
    const abort = new AbortController();
    const res = await fetch(`${h.controlUrl}/api/audit/stream${query}`, {
      headers: {
        cookie: `cg_session=${cookie}`,
        ...(lastEventId === undefined ? {} : { "last-event-id": String(lastEventId) }),
      },
      signal: abort.signal,
    });
    const events: AuditRecord[] = [];
    const state = { ended: false, endReason: undefined as string | undefined };
    let text = "";
    const done = (async () => {
      if (res.status !== 200 || res.body === null) return;
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body) {
          text += decoder.decode(chunk, { stream: true });
          let at = text.indexOf("\n\n");
          while (at >= 0) {
            const block = text.slice(0, at);
            text = text.slice(at + 2);
            if (/^event: record$/m.test(block)) {
              events.push(JSON.parse(/^data: (.*)$/m.exec(block)![1]));
            } else if (/^event: end$/m.test(block)) {
              state.endReason = JSON.parse(/^data: (.*)$/m.exec(block)![1]).reason;
            }
            at = text.indexOf("\n\n");
          }
        }
      } catch {
        // aborted
      }
      state.ended = true;
    })();
    return {
      res,
      events,
      get ended() {
        return state.ended;
      },
      get endReason() {
        return state.endReason;
      },
      async close() {
        abort.abort();
        await done;
      },
    };
  }

  async function until(check: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error("timed out waiting");
      await sleep(50);
    }
  }

  it("delivers each new matching record made after subscribing, only a person's own to them", async () => {
    const bobs = await open(bob.cookie);
    const admins = await open(admin.cookie, "?decision=deny");
    expect(bobs.res.status).toBe(200);
    expect(bobs.res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await sleep(100);
    expect((await data(admin, "GET", "/dbs/shop/colls/orders/docs/o1", '["a"]')).status).toBe(200);
    expect((await data(bob, "DELETE", "/dbs/shop/colls/orders/docs/o1", '["a"]')).status).toBe(403);
    await until(() => bobs.events.some((e) => e.type === "data.request") && admins.events.length > 0);
    await sleep(700); // one more poll: nothing else may arrive
    expect(bobs.events.map((e) => [e.subject, e.decision, e.resource])).toEqual([
      ["bob", "deny", "/dbs/shop/colls/orders/docs/o1"],
    ]);
    expect(admins.events.map((e) => [e.subject, e.decision])).toEqual([["bob", "deny"]]);
    expect(bobs.events[0].seq).toBe(expected((r) => r.subject === "bob")[0]);
    await bobs.close();
    await admins.close();
  });

  it("resumes after Last-Event-ID with what the person missed", async () => {
    const mine = expected((r) => r.subject === "bob").sort((a, b) => a - b);
    const last = mine[mine.length - 4];
    const stream = await open(bob.cookie, "", last);
    expect(stream.res.status).toBe(200);
    await until(() => stream.events.length >= 3);
    expect(stream.events.map((e) => e.seq)).toEqual(mine.slice(-3));
    await stream.close();
  });

  it("ends a stream whose session is signed out", async () => {
    const second = await signIn("bob", bob.key);
    const stream = await open(second.cookie);
    expect(stream.res.status).toBe(200);
    const out = await client.post("/auth/logout", {}, second.cookie);
    expect(out.status, out.text).toBe(200);
    // The next record for bob is not delivered: the stream ends, saying why.
    expect((await data(bob, "GET", "/dbs/shop/colls/orders/docs/o1", '["a"]')).status).toBe(200);
    await until(() => stream.ended);
    expect(stream.events).toEqual([]);
    expect(stream.endReason).toMatch(/revoked/);
    await stream.close();
  });

  it("allows a few streams per session, and frees one when its client goes away", async () => {
    const streams = [await open(bob.cookie), await open(bob.cookie), await open(bob.cookie)];
    expect(streams.map((s) => s.res.status)).toEqual([200, 200, 200]);
    const fourth = await open(bob.cookie);
    expect(fourth.res.status).toBe(429);
    expect(errorCode({ status: 429, text: "", json: await fourth.res.json() })).toBe("ERR_TOO_MANY_STREAMS");
    await streams[0].close();
    let again = await open(bob.cookie);
    for (let i = 0; again.res.status !== 200 && i < 20; i++) {
      await sleep(50);
      again = await open(bob.cookie);
    }
    expect(again.res.status).toBe(200);
    // Another session is not counted against bob's.
    const other = await open(admin.cookie);
    expect(other.res.status).toBe(200);
    for (const s of [...streams.slice(1), again, other]) await s.close();
    expect((await get("/api/audit/stream?actor=admin", bob.cookie)).status).toBe(403);
  });
});

describe("GET /api/policy and POST /api/policy/explain", () => {
  it("shows the policy with members to administrators only, and its native RBAC mapping", async () => {
    const full = (await get("/api/policy", admin.cookie)).json as PolicyView;
    expect(full.version).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(full.file).toBe(h.policyFile);
    expect(Number.isNaN(Date.parse(full.loadedAt))).toBe(false);
    const reader = full.roles.find((r) => r.name === "orders-reader")!;
    expect(reader.members).toEqual(["group:analysts"]);
    expect(reader.rules).toEqual([
      { allow: ["metadata", "read", "query", "changeFeed"], on: "/dbs/shop/colls/orders", rule: 0 },
    ]);
    expect(reader.native.builtIn).toEqual({
      name: "Cosmos DB Built-in Data Reader",
      id: "00000000-0000-0000-0000-000000000001",
    });
    const adminRole = full.roles.find((r) => r.name === "admin")!;
    expect(adminRole.native.notExpressible).toEqual([expect.stringMatching(/manage/)]);
    expect(full.roles.find((r) => r.name === "Cosmos DB Built-in Data Contributor")?.members).toEqual([
      "sub:carol",
    ]);

    const limited = (await get("/api/policy", bob.cookie)).json as PolicyView;
    expect(limited.version).toBe(full.version);
    expect(limited.roles.map((r) => r.name)).toEqual(full.roles.map((r) => r.name));
    expect(limited.roles.every((r) => r.members.length === 0)).toBe(true);
    expect(limited.roles.map((r) => r.native)).toEqual(full.roles.map((r) => r.native));
  });

  it("explains a person's own allow and deny, with the rule, and refuses to explain someone else's to them", async () => {
    const explain = (body: unknown, cookie: string) => client.post("/api/policy/explain", body, cookie);
    const allowed = await explain({ action: "read", resource: "/dbs/shop/colls/orders/docs/o1" }, bob.cookie);
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.json.decision.effect).toBe("allow");
    expect(allowed.json.matched).toMatchObject({
      role: "orders-reader",
      rule: 0,
      on: ["/dbs/shop/colls/orders"],
    });
    expect(allowed.json.principal).toEqual({ sub: "bob", groups: ["analysts"] });

    const denied = await explain(
      { action: "delete", resource: "/dbs/shop/colls/orders/docs/o1" },
      bob.cookie,
    );
    expect(denied.status).toBe(200);
    expect(denied.json.decision.effect).toBe("deny");
    expect(denied.json.close).toEqual([
      expect.objectContaining({
        role: "orders-reader",
        rule: 0,
        why: expect.stringMatching(/does not allow \[delete\]/),
      }),
    ]);
    // Who holds the role that would allow it is not bob's to see.
    expect(denied.json.wouldAllow.length).toBeGreaterThan(0);
    expect(denied.json.wouldAllow.every((r: { members: string[] }) => r.members.length === 0)).toBe(true);

    for (const body of [
      { person: "admin", action: "read", resource: "/" },
      { sub: "carol", action: "read", resource: "/" },
      { groups: ["cosmos-admins"], action: "delete", resource: "/dbs/shop" },
    ]) {
      const res = await explain(body, bob.cookie);
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(errorCode(res)).toBe("ERR_FORBIDDEN");
    }
    // Naming himself is fine.
    expect((await explain({ person: "bob", action: "read", resource: "/dbs/shop" }, bob.cookie)).status).toBe(
      200,
    );
  });

  it("lets an administrator explain anyone, by user name or subject and groups", async () => {
    const explain = (body: unknown) => client.post("/api/policy/explain", body, admin.cookie);
    const byName = await explain({
      person: "bob",
      action: "delete",
      resource: "/dbs/shop/colls/orders/docs/o1",
    });
    expect(byName.status, byName.text).toBe(200);
    expect(byName.json.principal).toEqual({ sub: "bob", groups: ["analysts"] });
    expect(byName.json.decision.effect).toBe("deny");
    expect(byName.json.wouldAllow).toEqual(
      expect.arrayContaining([expect.objectContaining({ role: "admin", members: ["group:cosmos-admins"] })]),
    );
    const bySub = await explain({
      sub: "carol",
      groups: [],
      action: "upsert",
      resource: "/dbs/x/colls/y/docs/z",
    });
    expect(bySub.json.decision.effect).toBe("allow");
    expect(bySub.json.matched.role).toBe("Cosmos DB Built-in Data Contributor");
    const self = await explain({ action: "manage", resource: "/dbs/shop" });
    expect(self.json).toMatchObject({ principal: { sub: "admin" }, matched: { role: "admin" } });

    expect((await explain({ person: "nobody", action: "read", resource: "/" })).status).toBe(404);
    const badAction = await explain({ person: "bob", action: "dlete", resource: "/" });
    expect(badAction.status).toBe(400);
    expect(badAction.json.message).toMatch(/action "dlete"/);
    const badResource = await explain({ person: "bob", action: "read", resource: "dbs/shop" });
    expect(badResource.status).toBe(400);
    expect(badResource.json.message).toMatch(/resource "dbs\/shop"/);
    expect((await explain({ action: "read" })).json.message).toMatch(/resource/);
    expect((await explain({ person: "bob", sub: "x", action: "read", resource: "/" })).status).toBe(400);
  });

  it("refuses an explain request without the session's CSRF token", async () => {
    const res = await client.post("/api/policy/explain", { action: "read", resource: "/" }, bob.cookie, {
      csrf: false,
    });
    expect(res.status).toBe(403);
    expect(errorCode(res)).toBe("ERR_CSRF");
  });
});

describe("GET /api/audit/records/:seq", () => {
  /** Waits until a signed checkpoint covers `seq`. */
  async function checkpointAtOrAfter(seq: number): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const db = new Database(h.gw.auditFile, { readonly: true });
      const top = db.prepare("SELECT coalesce(max(seq), 0) FROM audit_checkpoints").pluck().get() as number;
      db.close();
      if (top >= seq) return;
      if (Date.now() > deadline) throw new Error(`no checkpoint reached ${seq}`);
      await sleep(100);
    }
  }

  it("verifies a record: its hash, its link, and the signed checkpoint that covers it", async () => {
    const seq = expected((r) => r.subject === "bob" && r.decision === "deny")[0];
    await checkpointAtOrAfter(seq);
    const res = await get(`/api/audit/records/${seq}`, bob.cookie);
    expect(res.status, res.text).toBe(200);
    const d = res.json as AuditRecordDetail;
    const truth = allRecords();
    const stored = truth.find((r) => r.seq === seq)!;
    expect(d.record).toEqual(stored);
    expect(d.chain).toEqual({
      seq,
      hash: stored.hash,
      prevHash: truth.find((r) => r.seq === seq - 1)!.hash,
      hashOk: true,
      linkOk: true,
      length: expect.any(Number),
    });
    // The trail keeps growing (sign-ins, checkpoints' neighbours): at least what was read just before.
    expect(d.chain.length).toBeGreaterThanOrEqual(truth.length);
    expect(d.checkpoint).toMatchObject({ signatureOk: true, coversRecord: true });
    expect(d.checkpoint!.seq).toBeGreaterThanOrEqual(seq);
    expect(d.checkpoint!.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("shows a record altered in the audit database as failing its hash, and a rewritten hash as a broken link", async () => {
    const seqs = expected((r) => r.subject === "bob" && r.type === "data.request").sort((a, b) => a - b);
    const [altered, rehashed] = seqs;
    await checkpointAtOrAfter(Math.max(altered, rehashed) + 1);
    const before = (await get(`/api/audit/records/${altered}`, admin.cookie)).json as AuditRecordDetail;
    expect(before.chain.hashOk).toBe(true);

    const db = new Database(h.gw.auditFile);
    try {
      // Someone with write access to the file edits a record...
      const changed = db
        .prepare(
          'UPDATE audit_events SET data = replace(data, \'"reason":"\', \'"reason":"edited: \') WHERE seq = ?',
        )
        .run(altered);
      expect(changed.changes).toBe(1);
      // ...and rewrites another record's hash.
      db.prepare("UPDATE audit_events SET hash = ? WHERE seq = ?").run("0".repeat(64), rehashed);
    } finally {
      db.close();
    }

    const after = (await get(`/api/audit/records/${altered}`, admin.cookie)).json as AuditRecordDetail;
    expect(after.record.reason).toMatch(/^edited: /);
    expect(after.chain.hashOk).toBe(false);
    expect(after.checkpoint).toMatchObject({ signatureOk: true, coversRecord: false });

    const next = (await get(`/api/audit/records/${rehashed + 1}`, admin.cookie)).json as AuditRecordDetail;
    expect(next.chain.hashOk).toBe(true);
    expect(next.chain.linkOk).toBe(false);
    const broken = (await get(`/api/audit/records/${rehashed}`, admin.cookie)).json as AuditRecordDetail;
    expect(broken.chain.hashOk).toBe(false);
  });
});
