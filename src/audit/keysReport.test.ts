import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase, openIdentityStore } from "../store/index.js";
import {
  buildKeysReport,
  esc,
  formatKeysCsv,
  formatKeysHtml,
  formatKeysTable,
  type KeysReport,
  loadAuthenticatorNames,
  readKeyDirectory,
} from "./keysReport.js";
import type { AuditEvent } from "./types.js";
import { createAuditWriter } from "./writer.js";

const T0 = Date.UTC(2025, 3, 1);
const HOUR = 3_600_000;
const YUBIKEY = "ee882879-721c-4913-9775-3dfcce97072a";
const CUSTOM = "12345678-aaaa-4bbb-8ccc-1234567890ab";
const EVIL_NICK = '<script>alert("x")</script> & co';

let dir: string;
let audit: Database;
let report: KeysReport;
let directory: ReturnType<typeof readKeyDirectory>;

function req(
  time: number,
  credential: string,
  subject: string,
  actions: string[],
  decision: AuditEvent["decision"],
): AuditEvent {
  return {
    time,
    type: "data.request",
    subject,
    subjectKind: "user",
    credential,
    actions,
    resource: "/dbs/shop/colls/orders/docs/1",
    decision,
    reason: "test",
    status: decision === "allow" ? 200 : decision === "deny" ? 403 : 503,
    durationMs: 1,
  };
}

function identity(
  time: number,
  type: string,
  credential: string,
  subject: string,
  decision: AuditEvent["decision"] = "allow",
): AuditEvent {
  return {
    time,
    type,
    subject,
    subjectKind: subject.startsWith("cli:") ? "operator" : "user",
    credential,
    actions: [],
    resource: `/users/${subject}`,
    decision,
    reason: type,
    status: 0,
    durationMs: 0,
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cosmosgate-keys-"));
  // The identity store: ada has a YubiKey and a synced passkey (with a hostile nickname); bob's
  // key was removed; carol's is suspended.
  const store = openIdentityStore(path.join(dir, "state.db"));
  const user = (id: string, name: string) =>
    store.createUser({
      id,
      name,
      groups: [],
      admin: false,
      disabled: false,
      createdAt: T0 - 86_400_000,
      webauthnUserId: `w-${id}`,
    });
  user("u1", "ada");
  user("u2", "bob");
  user("u3", "carol");
  const key = (id: string, userId: string, nickname: string, aaguid: string, deviceBound: boolean) =>
    store.addCredential({
      id,
      userId,
      publicKey: new Uint8Array([1, 2, 3]),
      counter: 0,
      transports: ["usb"],
      aaguid,
      fmt: "packed",
      deviceBound,
      backedUp: !deviceBound,
      nickname,
      createdAt: T0 - 86_400_000,
      useCount: 0,
    });
  key("kAda1", "u1", "ada's YubiKey", YUBIKEY, true);
  key("kAda2", "u1", EVIL_NICK, CUSTOM, false);
  key("kBob", "u2", "bob's key", YUBIKEY, true);
  key("kCarol", "u3", "carol's key", YUBIKEY, true);
  key("kIdle", "u3", "never used", YUBIKEY, true);
  store.removeCredential("kBob");
  store.suspendCredential("kCarol", "signature counter went backwards", T0 + 5 * HOUR);
  directory = readKeyDirectory(store.db);
  store.close();

  audit = openDatabase(path.join(dir, "audit.db"));
  const w = createAuditWriter(audit);
  const events: AuditEvent[] = [
    identity(T0 + 10 * 60_000, "signin.succeeded", "kAda1", "ada"),
    req(T0 + HOUR, "kAda1", "ada", ["read"], "allow"),
    req(T0 + HOUR + 1, "kAda1", "ada", ["read"], "allow"),
    req(T0 + 2 * HOUR, "kAda1", "ada", ["create", "read"], "allow"),
    req(T0 + 3 * HOUR, "kAda1", "ada", ["delete"], "deny"),
    req(T0 + 3 * HOUR + 5, "kAda1", "ada", ["delete"], "deny"),
    req(T0 + 4 * HOUR, "kAda1", "ada", ["query"], "error"),
    identity(T0 + 20 * 60_000, "signin.failed", "kAda1", "ada", "deny"),
    req(T0 + HOUR, "kAda2", "ada", ["query"], "allow"),
    req(T0 + 2 * HOUR, "kBob", "bob", ["read"], "allow"),
    identity(T0 + 3 * HOUR, "credential.removed", "kBob", "cli:root"),
    req(T0 + 4 * HOUR, "kCarol", "carol", ["read"], "allow"),
    identity(T0 + 5 * HOUR, "credential.clone_suspected", "kCarol", "carol", "deny"),
    identity(T0 + 5 * HOUR, "credential.suspended", "kCarol", "carol"),
    req(T0 + 5 * HOUR + 1, "kCarol", "carol", ["read"], "deny"),
    // A key the identity store does not know (a federated principal's), with facts in its records.
    {
      ...req(T0 + 6 * HOUR, "kFed", "svc-ci", ["read"], "allow"),
      credentialName: "ci runner",
      aaguid: CUSTOM,
      deviceBound: false,
    },
    // Outside the window.
    req(T0 - 2 * HOUR, "kAda1", "ada", ["read"], "allow"),
    req(T0 + 30 * HOUR, "kAda1", "ada", ["read"], "allow"),
    // No key at all.
    req(T0 + 2 * HOUR, "", "anonymous", ["read"], "deny"),
  ];
  // Most in one indexed group, the last few as single commits (the unindexed tail).
  const group = Array.from({ length: 300 }, (_, i) =>
    req(T0 + 7 * HOUR + i, "kAda2", "ada", ["read"], "allow"),
  );
  await Promise.all([...events.slice(0, 10), ...group].map((e) => w.append(e)));
  for (const e of events.slice(10)) await w.append(e);
  const hw = audit.prepare("SELECT max(seq) FROM audit_index").pluck().get() as number;
  const head = audit.prepare("SELECT max(seq) FROM audit_events").pluck().get() as number;
  expect(hw).toBeLessThan(head);
  report = buildKeysReport(audit, {
    from: T0,
    to: T0 + 24 * HOUR,
    now: () => T0 + 25 * HOUR,
    directory,
    authenticatorNames: new Map([[CUSTOM, "Contoso Passkey Manager"]]),
  });
});

afterAll(() => {
  audit.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const key = (id: string) => report.keys.find((k) => k.credential === id)!;

describe("buildKeysReport", () => {
  it("counts uses by action, denials, errors and sign-ins per key, in the window only", () => {
    const k = key("kAda1");
    expect(k).toMatchObject({
      owner: "ada",
      nickname: "ada's YubiKey",
      aaguid: YUBIKEY,
      authenticator: "YubiKey 5 Series",
      kind: "device-bound",
      status: "active",
      uses: 8,
      allowed: 4,
      denied: 3,
      errors: 1,
      signIns: 1,
      failedSignIns: 1,
      suspensions: 0,
      firstUse: T0 + 10 * 60_000,
      lastUse: T0 + 4 * HOUR,
    });
    expect(k.byAction).toEqual({
      read: { allowed: 3, denied: 0, errors: 0 },
      create: { allowed: 1, denied: 0, errors: 0 },
      delete: { allowed: 0, denied: 2, errors: 0 },
      query: { allowed: 0, denied: 0, errors: 1 },
    });
  });

  it("counts the unindexed tail and the indexed records alike", () => {
    expect(key("kAda2")).toMatchObject({
      uses: 301,
      allowed: 301,
      byAction: { read: { allowed: 300 }, query: { allowed: 1 } },
    });
    expect(key("kFed").uses).toBe(1);
  });

  it("counts suspensions and clone suspicions, not as uses", () => {
    expect(key("kCarol")).toMatchObject({
      status: "suspended",
      suspendedReason: "signature counter went backwards",
      suspensions: 1,
      cloneSuspected: 1,
      uses: 2,
      denied: 1,
      lastUse: T0 + 5 * HOUR + 1,
    });
  });

  it("names removed keys, idle keys, and keys known only from the trail", () => {
    expect(key("kBob")).toMatchObject({ status: "removed", owner: "bob", uses: 1 });
    expect(key("kIdle")).toMatchObject({ status: "active", uses: 0, owner: "carol" });
    expect(key("kIdle").firstUse).toBeUndefined();
    expect(key("kFed")).toMatchObject({
      status: "unknown",
      owner: "svc-ci",
      nickname: "ci runner",
      aaguid: CUSTOM,
      authenticator: "Contoso Passkey Manager",
      kind: "synced",
    });
    expect(key("kAda2")).toMatchObject({ kind: "synced", authenticator: "Contoso Passkey Manager" });
  });

  it("charts activity per time bucket, per key and overall", () => {
    expect(report.bucketMs).toBe(HOUR);
    expect(report.bucketCount).toBe(24);
    const b = key("kAda1").buckets;
    expect(b[0]).toEqual({ allowed: 1, denied: 1 }); // sign-in and failed sign-in
    expect(b[1]).toEqual({ allowed: 2, denied: 0 });
    expect(b[3]).toEqual({ allowed: 0, denied: 2 });
    expect(b[4]).toEqual({ allowed: 0, denied: 1 });
    const total = report.overall.reduce((n, x) => n + x.allowed + x.denied, 0);
    expect(total).toBe(report.totals.records);
    expect(report.totals.records).toBe(317); // 19 events - 2 outside the window + 300
    expect(report.overall[2].denied).toBeGreaterThanOrEqual(1); // the anonymous refusal counts overall
  });

  it("defaults the window to the oldest record .. now, and refuses an empty one", () => {
    const all = buildKeysReport(audit, { now: () => T0 + 40 * HOUR, directory });
    expect(all.from).toBe(T0 - 2 * HOUR);
    expect(key("kAda1").uses + 2).toBe(all.keys.find((k) => k.credential === "kAda1")!.uses);
    expect(() => buildKeysReport(audit, { from: T0, to: T0, now: () => T0 })).toThrow(
      expect.objectContaining({ code: "ERR_AUDIT_ARGUMENT" }),
    );
  });
});

describe("report formats", () => {
  it("table: aligned columns, one line per key, control characters escaped", () => {
    const text = formatKeysTable({
      ...report,
      keys: [...report.keys, { ...key("kFed"), nickname: "two\nlines" }],
    });
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^Key usage 2025-04-01T00:00:00.000Z to 2025-04-02T00:00:00.000Z/);
    expect(lines[1]).toMatch(/^KEY\s+OWNER\s+NICKNAME\s+TYPE\s+AUTHENTICATOR\s+STATUS/);
    expect(lines).toHaveLength(2 + report.keys.length + 1);
    const ownerCol = lines[1].indexOf("OWNER");
    for (const l of lines.slice(2)) expect(l[ownerCol - 1]).toBe(" ");
    expect(text).toContain("two\\u000alines");
    const ada = lines.find((l) => l.startsWith("kAda1"))!;
    expect(ada).toContain("create=1 delete=0/2refused query=0/1refused read=3");
  });

  it("csv: a column per action, formula-safe cells", () => {
    const rows = formatKeysCsv(report).trimEnd().split("\r\n");
    const header = rows[0].split(",");
    expect(header).toEqual(
      expect.arrayContaining(["action:read", "action:delete", "denied:delete", "suspensions"]),
    );
    const ada = rows.find((r) => r.startsWith("kAda1,"))!.split(",");
    expect(ada[header.indexOf("action:read")]).toBe("3");
    expect(ada[header.indexOf("denied:delete")]).toBe("2");
    expect(ada[header.indexOf("uses")]).toBe("8");
    const evil = formatKeysCsv({ ...report, keys: [{ ...key("kAda1"), nickname: "=HYPERLINK(1)" }] });
    expect(evil).toContain(",'=HYPERLINK(1),");
  });

  it("html: escapes every value (a <script> nickname stays text)", () => {
    const html = formatKeysHtml(report);
    expect(html).not.toContain(EVIL_NICK);
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co");
    expect(html).toContain("ada&#39;s YubiKey");
  });

  it("html: one self-contained file, no external reference of any kind", () => {
    const html = formatKeysHtml(report);
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(html).not.toMatch(/\b(src|href|action|xlink:href)\s*=/i);
    expect(html).not.toMatch(/url\(|@import|@font-face|<link|<iframe|<object|<embed|<img|<script/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/\son\w+\s*=/i); // no event-handler attributes
  });

  it("html: an overall chart and one chart per key, allowed vs refused", () => {
    const html = formatKeysHtml(report);
    const svgs = html.match(/<svg /g) ?? [];
    expect(svgs).toHaveLength(1 + report.keys.length);
    expect(html).toContain('fill="#2e7d32"');
    expect(html).toContain('fill="#c62828"');
    expect(html).toContain("<title>2025-04-01 03:00 UTC: 0 allowed, 2 refused</title>");
  });

  it("esc covers the five HTML specials", () => {
    expect(esc(`<a href="x" title='y'>&</a>`)).toBe(
      "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
  });
});

describe("loadAuthenticatorNames", () => {
  it("reads descriptions from a FIDO metadata file", () => {
    const file = path.join(dir, "mds.json");
    fs.writeFileSync(
      file,
      JSON.stringify([{ aaguid: CUSTOM.toUpperCase(), description: "Contoso Key" }, { aaguid: 1 }]),
    );
    expect(loadAuthenticatorNames(file)).toEqual(new Map([[CUSTOM, "Contoso Key"]]));
    fs.writeFileSync(file, "{}");
    expect(() => loadAuthenticatorNames(file)).toThrow(expect.objectContaining({ code: "ERR_AUDIT_READ" }));
  });
});
