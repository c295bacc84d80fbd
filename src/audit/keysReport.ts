import { readFileSync } from "node:fs";
import type { Database } from "../store/index.js";
import { AuditError } from "./errors.js";
import { csvText, csvValue } from "./export.js";

/**
 * The key-usage report: for each WebAuthn credential, who owns it, what it is, and what was done
 * with it in a time window — the evidence an auditor asks for ("which keys touched the data, when,
 * how often, and were any refused or suspended"). Computed from the audit trail (through its
 * indexes) and the identity store (owner, nickname, authenticator model, state).
 *
 * No charting or templating library: the HTML report is a few tables and bar charts as inline SVG,
 * and a dependency would bring scripts or external assets an offline auditor's file must not have.
 */

/** What the identity store knows of a credential. */
export interface KeyDirectoryEntry {
  id: string;
  /** The owner's user name. */
  owner?: string;
  nickname?: string;
  aaguid?: string;
  deviceBound?: boolean;
  backedUp?: boolean;
  createdAt?: number;
  suspendedAt?: number;
  suspendedReason?: string;
  /** Set when the key was removed (the store keeps a tombstone of its id). */
  removedAt?: number;
}

/** Allowed and refused (deny or error) records in one time bucket. */
export interface Bucket {
  allowed: number;
  denied: number;
}

/** Uses of one action by one key. */
export interface ActionCount {
  allowed: number;
  denied: number;
  errors: number;
}

/** One row of the report. */
export interface KeyUsage {
  credential: string;
  owner?: string;
  nickname?: string;
  aaguid?: string;
  /** The authenticator model's name, when the AAGUID is known. */
  authenticator?: string;
  /** "device-bound" (a hardware key), "synced" (a synced passkey), or undefined when unknown. */
  kind?: "device-bound" | "synced";
  /** "active", "suspended", "removed" (identity store), or "unknown" (not in the identity store). */
  status: "active" | "suspended" | "removed" | "unknown";
  suspendedReason?: string;
  registeredAt?: number;
  /** Time of the first and last use in the window (any record naming the key but its own management). */
  firstUse?: number;
  lastUse?: number;
  /** Records naming the key in the window, other than `credential.*` management events. */
  uses: number;
  allowed: number;
  /** Uses refused by policy or authentication (decision `deny`). */
  denied: number;
  /** Uses that failed (decision `error`). */
  errors: number;
  signIns: number;
  failedSignIns: number;
  /** `credential.suspended` events in the window. */
  suspensions: number;
  /** `credential.clone_suspected` events in the window. */
  cloneSuspected: number;
  /** Uses by short action ("read", "create", ...). */
  byAction: Record<string, ActionCount>;
  /** Uses per time bucket of the report, allowed vs refused. */
  buckets: Bucket[];
}

/** The report. */
export interface KeysReport {
  /** The window: `from` inclusive, `to` exclusive (ms since the epoch). */
  from: number;
  to: number;
  generatedAt: number;
  /** Width of a time bucket (ms) and the start of the first one. */
  bucketMs: number;
  bucketStart: number;
  bucketCount: number;
  keys: KeyUsage[];
  /** Every record of the window (with or without a key), allowed vs refused, per bucket. */
  overall: Bucket[];
  totals: { records: number; allowed: number; refused: number; withKey: number };
}

/** Options of {@link buildKeysReport}. */
export interface KeysReportOptions {
  /** Start of the window (inclusive); default the oldest record. */
  from?: number;
  /** End of the window (exclusive); default `now() + 1`. */
  to?: number;
  /** The clock (ms since the epoch). */
  now: () => number;
  /** What the identity store knows (see {@link readKeyDirectory}); default nothing. */
  directory?: ReadonlyMap<string, KeyDirectoryEntry>;
  /** Extra AAGUID → model names (e.g. from FIDO metadata, {@link loadAuthenticatorNames}). */
  authenticatorNames?: ReadonlyMap<string, string>;
  /** At most this many time buckets in the charts; default 48. */
  maxBuckets?: number;
}

/**
 * Names of a few common authenticator models by AAGUID (from the community list
 * passkeydeveloper/passkey-authenticator-aaguids), for display only. A configured FIDO metadata
 * file (`identity.authenticators.metadataFile`) adds to it.
 */
export const KNOWN_AUTHENTICATORS: ReadonlyMap<string, string> = new Map([
  ["00000000-0000-0000-0000-000000000000", "unknown model (no attestation)"],
  ["08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"],
  ["2fc0579f-8113-47ea-b116-bb5a8db9202a", "YubiKey 5 Series with NFC"],
  ["531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"],
  ["adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"],
  ["bada5566-a7aa-401f-bd96-45619a55120d", "1Password"],
  ["d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"],
  ["ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"],
  ["ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"],
  ["fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "Apple Passwords (iCloud Keychain)"],
]);

/**
 * Reads the credentials of an identity store (`stateDir/state.db`, opened read-only by the
 * caller): live ones with their owner, and removed ones (tombstones).
 *
 * @throws {AuditError} `ERR_AUDIT_READ` when the tables cannot be read.
 *
 * @example
 * ```ts
 * const state = openDatabase(path.join(stateDir, "state.db"), { readonly: true });
 * const directory = readKeyDirectory(state);
 * state.close();
 * ```
 */
export function readKeyDirectory(state: Database): Map<string, KeyDirectoryEntry> {
  const out = new Map<string, KeyDirectoryEntry>();
  try {
    const rows = state
      .prepare(
        "SELECT c.id, u.name AS owner, c.nickname, c.aaguid, c.device_bound, c.backed_up, c.created_at, " +
          "c.suspended_at, c.suspended_reason FROM credentials AS c LEFT JOIN users AS u ON u.id = c.user_id",
      )
      .all() as {
      id: string;
      owner: string | null;
      nickname: string;
      aaguid: string;
      device_bound: number;
      backed_up: number;
      created_at: number;
      suspended_at: number | null;
      suspended_reason: string | null;
    }[];
    for (const r of rows) {
      const e: KeyDirectoryEntry = {
        id: r.id,
        nickname: r.nickname,
        aaguid: r.aaguid,
        deviceBound: r.device_bound === 1,
        backedUp: r.backed_up === 1,
        createdAt: r.created_at,
      };
      if (r.owner !== null) e.owner = r.owner;
      if (r.suspended_at !== null) e.suspendedAt = r.suspended_at;
      if (r.suspended_reason !== null) e.suspendedReason = r.suspended_reason;
      out.set(r.id, e);
    }
    const gone = state
      .prepare(
        "SELECT t.id, u.name AS owner, t.removed_at FROM credential_tombstones AS t LEFT JOIN users AS u ON u.id = t.user_id",
      )
      .all() as { id: string; owner: string | null; removed_at: number }[];
    for (const r of gone) {
      if (out.has(r.id)) continue;
      const e: KeyDirectoryEntry = { id: r.id, removedAt: r.removed_at };
      if (r.owner !== null) e.owner = r.owner;
      out.set(r.id, e);
    }
  } catch (err) {
    throw new AuditError(
      "ERR_AUDIT_READ",
      `cannot read the credentials of the identity store "${state.name}": ${message(err)}.`,
      { cause: err },
    );
  }
  return out;
}

/**
 * AAGUID → model name from a FIDO metadata file (a JSON array of metadata statements, each with
 * `aaguid` and `description`). Entries without both are skipped.
 *
 * @throws {AuditError} `ERR_AUDIT_READ` when the file cannot be read or is not a JSON array.
 */
export function loadAuthenticatorNames(file: string): Map<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new AuditError("ERR_AUDIT_READ", `cannot read the FIDO metadata file "${file}": ${message(err)}.`, {
      cause: err,
    });
  }
  if (!Array.isArray(parsed))
    throw new AuditError(
      "ERR_AUDIT_READ",
      `the FIDO metadata file "${file}" is not a JSON array of statements.`,
    );
  const out = new Map<string, string>();
  for (const s of parsed) {
    if (s === null || typeof s !== "object") continue;
    const { aaguid, description } = s as { aaguid?: unknown; description?: unknown };
    if (typeof aaguid === "string" && typeof description === "string")
      out.set(aaguid.toLowerCase(), description);
  }
  return out;
}

const BUCKET_STEPS = [
  60_000,
  5 * 60_000,
  15 * 60_000,
  3_600_000,
  3 * 3_600_000,
  6 * 3_600_000,
  12 * 3_600_000,
  86_400_000,
  7 * 86_400_000,
  30 * 86_400_000,
  365 * 86_400_000,
];

const MANAGEMENT = "credential.";

/**
 * Builds the key-usage report for a time window. The records up to the index's high-water mark
 * are aggregated by SQLite through the time index (`audit_index_time`, joined to
 * `audit_index_actions` for the counts by action); the few newer records are read directly.
 * Memory grows with the number of keys and buckets, not with the number of records.
 *
 * @throws {AuditError} `ERR_AUDIT_ARGUMENT` for a bad window; `ERR_AUDIT_READ`.
 *
 * @example
 * ```ts
 * const report = buildKeysReport(auditDb, { from: Date.now() - 30 * 86_400_000, now: Date.now, directory });
 * process.stdout.write(formatKeysTable(report));
 * ```
 */
export function buildKeysReport(db: Database, opts: KeysReportOptions): KeysReport {
  const now = opts.now();
  for (const [name, v] of [
    ["from", opts.from],
    ["to", opts.to],
  ] as const) {
    if (v !== undefined && !Number.isFinite(v))
      throw new AuditError("ERR_AUDIT_ARGUMENT", `keys report: ${name} must be a time in milliseconds.`);
  }
  const maxBuckets = Math.max(1, Math.trunc(opts.maxBuckets ?? 48));
  const directory = opts.directory ?? new Map<string, KeyDirectoryEntry>();
  return read(db, () => {
    const head = db.prepare("SELECT coalesce(max(seq), 0) FROM audit_events").pluck().get() as number;
    const hw = Math.min(
      head,
      db.prepare("SELECT coalesce(max(seq), 0) FROM audit_index").pluck().get() as number,
    );
    const to = opts.to ?? now + 1;
    let from = opts.from;
    if (from === undefined) {
      const first = db
        .prepare(
          "SELECT min(t) FROM (SELECT min(time) AS t FROM audit_index UNION ALL SELECT min(time) FROM audit_events WHERE seq > ?)",
        )
        .pluck()
        .get(hw) as number | null;
      from = first !== null && first < to ? first : to - 86_400_000;
    }
    if (from >= to)
      throw new AuditError(
        "ERR_AUDIT_ARGUMENT",
        `keys report: the window is empty (from ${iso(from)} is not before to ${iso(to)}); swap or widen it.`,
      );
    const span = to - from;
    const bucketMs =
      BUCKET_STEPS.find((s) => Math.ceil(span / s) <= maxBuckets) ?? Math.ceil(span / maxBuckets);
    const bucketStart = Math.floor(from / bucketMs) * bucketMs;
    const bucketCount = Math.max(1, Math.ceil((to - bucketStart) / bucketMs));

    const keys = new Map<string, KeyUsage>();
    const overall: Bucket[] = emptyBuckets(bucketCount);
    const totals = { records: 0, allowed: 0, refused: 0, withKey: 0 };
    const usage = (id: string): KeyUsage => {
      let k = keys.get(id);
      if (k === undefined) {
        k = newUsage(id, bucketCount);
        keys.set(id, k);
      }
      return k;
    };
    const add = (
      credential: string | null,
      type: string,
      decision: string,
      bucket: number,
      n: number,
      first: number,
      last: number,
    ) => {
      const allowed = decision === "allow";
      const b = overall[Math.min(bucket, bucketCount - 1)];
      if (allowed) b.allowed += n;
      else b.denied += n;
      totals.records += n;
      if (allowed) totals.allowed += n;
      else totals.refused += n;
      if (credential === null || credential === "") return;
      totals.withKey += n;
      const k = usage(credential);
      if (type === "credential.suspended") k.suspensions += n;
      else if (type === "credential.clone_suspected") k.cloneSuspected += n;
      if (type.startsWith(MANAGEMENT)) return;
      k.uses += n;
      if (allowed) k.allowed += n;
      else if (decision === "deny") k.denied += n;
      else k.errors += n;
      if (type === "signin.succeeded") k.signIns += n;
      else if (type === "signin.failed") k.failedSignIns += n;
      const kb = k.buckets[Math.min(bucket, bucketCount - 1)];
      if (allowed) kb.allowed += n;
      else kb.denied += n;
      if (k.firstUse === undefined || first < k.firstUse) k.firstUse = first;
      if (k.lastUse === undefined || last > k.lastUse) k.lastUse = last;
    };
    const addAction = (credential: string, type: string, action: string, decision: string, n: number) => {
      if (type.startsWith(MANAGEMENT)) return;
      const k = usage(credential);
      let a = k.byAction[action];
      if (a === undefined) {
        a = { allowed: 0, denied: 0, errors: 0 };
        k.byAction[action] = a;
      }
      if (decision === "allow") a.allowed += n;
      else if (decision === "deny") a.denied += n;
      else a.errors += n;
    };

    // The indexed records: aggregated by SQLite through the time index.
    const groups = db
      .prepare(
        "SELECT i.credential AS credential, i.type AS type, i.decision AS decision, CAST((i.time - ?) / ? AS INTEGER) AS bucket, " +
          "count(*) AS n, min(i.time) AS first, max(i.time) AS last " +
          "FROM audit_index AS i INDEXED BY audit_index_time WHERE i.time >= ? AND i.time < ? AND i.seq <= ? " +
          "GROUP BY i.credential, i.type, i.decision, bucket",
      )
      .iterate(bucketStart, bucketMs, from, to, hw) as IterableIterator<{
      credential: string | null;
      type: string;
      decision: string;
      bucket: number;
      n: number;
      first: number;
      last: number;
    }>;
    for (const g of groups) add(g.credential, g.type, g.decision, g.bucket, g.n, g.first, g.last);
    const actions = db
      .prepare(
        "SELECT i.credential AS credential, i.type AS type, x.action AS action, i.decision AS decision, count(*) AS n " +
          "FROM audit_index AS i INDEXED BY audit_index_time CROSS JOIN audit_index_actions AS x ON x.seq = i.seq " +
          "WHERE i.time >= ? AND i.time < ? AND i.seq <= ? AND i.credential IS NOT NULL AND i.credential <> '' " +
          "GROUP BY i.credential, i.type, x.action, i.decision",
      )
      .iterate(from, to, hw) as IterableIterator<{
      credential: string;
      type: string;
      action: string;
      decision: string;
      n: number;
    }>;
    for (const g of actions) addAction(g.credential, g.type, g.action, g.decision, g.n);

    // The records newer than the index: a batch or two, read one by one.
    const tail = db
      .prepare(
        "SELECT credential, type, decision, time, actions FROM audit_events WHERE seq > ? AND seq <= ? AND time >= ? AND time < ?",
      )
      .iterate(hw, head, from, to) as IterableIterator<{
      credential: string | null;
      type: string;
      decision: string;
      time: number;
      actions: string;
    }>;
    for (const r of tail) {
      add(r.credential, r.type, r.decision, Math.floor((r.time - bucketStart) / bucketMs), 1, r.time, r.time);
      if (r.credential === null || r.credential === "") continue;
      for (const a of parseActions(r.actions)) addAction(r.credential, r.type, a, r.decision, 1);
    }

    // Keys of the identity store that were not used in the window are part of the evidence too
    // (removed keys only when they appear in the window).
    for (const e of directory.values()) if (e.removedAt === undefined) usage(e.id);

    const names = opts.authenticatorNames;
    // A key's latest records: the unindexed tail first, then through the credential index.
    const tailRecords = db
      .prepare(
        "SELECT data FROM audit_events WHERE seq > ? AND seq <= ? AND credential = ? ORDER BY seq DESC LIMIT 20",
      )
      .pluck();
    const indexedRecords = db
      .prepare(
        "SELECT e.data FROM audit_index AS i INDEXED BY audit_index_credential_time CROSS JOIN audit_events AS e ON e.seq = i.seq " +
          "WHERE i.credential = ? AND i.seq <= ? ORDER BY i.time DESC, i.seq DESC LIMIT 20",
      )
      .pluck();
    function* latest(credential: string): Generator<string> {
      yield* tailRecords.iterate(hw, head, credential) as IterableIterator<string>;
      yield* indexedRecords.iterate(credential, hw) as IterableIterator<string>;
    }
    for (const k of keys.values()) {
      const e = directory.get(k.credential);
      if (e !== undefined) {
        if (e.owner !== undefined) k.owner = e.owner;
        if (e.nickname !== undefined) k.nickname = e.nickname;
        if (e.aaguid !== undefined) k.aaguid = e.aaguid;
        if (e.deviceBound !== undefined) k.kind = e.deviceBound ? "device-bound" : "synced";
        if (e.createdAt !== undefined) k.registeredAt = e.createdAt;
        k.status =
          e.removedAt !== undefined ? "removed" : e.suspendedAt !== undefined ? "suspended" : "active";
        if (e.suspendedReason !== undefined) k.suspendedReason = e.suspendedReason;
      }
      if (k.owner === undefined || k.nickname === undefined || k.aaguid === undefined || k.kind === undefined)
        fillFromRecords(k, latest(k.credential));
      if (k.aaguid !== undefined)
        k.authenticator =
          names?.get(k.aaguid.toLowerCase()) ?? KNOWN_AUTHENTICATORS.get(k.aaguid.toLowerCase());
    }

    const list = [...keys.values()].sort(
      (a, b) =>
        cmp(a.owner ?? "\uffff", b.owner ?? "\uffff") ||
        cmp(a.nickname ?? "", b.nickname ?? "") ||
        cmp(a.credential, b.credential),
    );
    return { from, to, generatedAt: now, bucketMs, bucketStart, bucketCount, keys: list, overall, totals };
  });
}

/** Fills what the identity store did not know from the key's latest records (newest first). */
function fillFromRecords(k: KeyUsage, datas: Generator<string>): void {
  try {
    for (const data of datas) {
      const r = JSON.parse(data) as Record<string, unknown>;
      if (k.nickname === undefined && typeof r.credentialName === "string") k.nickname = r.credentialName;
      if (k.aaguid === undefined && typeof r.aaguid === "string") k.aaguid = r.aaguid;
      if (k.kind === undefined && typeof r.deviceBound === "boolean")
        k.kind = r.deviceBound ? "device-bound" : "synced";
      // The holder of the key is the subject of its uses (management events name the operator).
      if (
        k.owner === undefined &&
        typeof r.subject === "string" &&
        r.subject !== "" &&
        r.subjectKind !== "operator" &&
        r.subjectKind !== "system" &&
        typeof r.type === "string" &&
        !r.type.startsWith(MANAGEMENT)
      )
        k.owner = r.subject;
      if (k.owner !== undefined && k.nickname !== undefined && k.aaguid !== undefined && k.kind !== undefined)
        break;
    }
  } finally {
    datas.return(undefined);
  }
}

// ---- formats -------------------------------------------------------------------------------

/**
 * The report as aligned text columns, one key a line (values made printable: control characters
 * escaped), with the window and totals above.
 *
 * @example
 * ```ts
 * io.out(formatKeysTable(report));
 * ```
 */
export function formatKeysTable(r: KeysReport): string {
  const header = [
    "KEY",
    "OWNER",
    "NICKNAME",
    "TYPE",
    "AUTHENTICATOR",
    "STATUS",
    "FIRST USE",
    "LAST USE",
    "USES",
    "DENIED",
    "ERRORS",
    "SIGN-INS",
    "SUSPENSIONS",
    "BY ACTION",
  ];
  const rows = r.keys.map((k) => [
    k.credential,
    k.owner ?? "-",
    k.nickname ?? "-",
    k.kind ?? "-",
    k.authenticator ?? k.aaguid ?? "-",
    k.status,
    k.firstUse === undefined ? "-" : iso(k.firstUse),
    k.lastUse === undefined ? "-" : iso(k.lastUse),
    String(k.uses),
    String(k.denied),
    String(k.errors),
    k.failedSignIns > 0 ? `${k.signIns} (+${k.failedSignIns} failed)` : String(k.signIns),
    k.cloneSuspected > 0 ? `${k.suspensions} (+${k.cloneSuspected} clone)` : String(k.suspensions),
    actionSummary(k.byAction) || "-",
  ]);
  const cells = rows.map((row) => row.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const intro =
    `Key usage ${iso(r.from)} to ${iso(r.to)} (generated ${iso(r.generatedAt)}): ` +
    `${r.keys.length} key(s); ${r.totals.records} record(s), ${r.totals.withKey} naming a key, ${r.totals.refused} refused.\n`;
  return `${intro}${[line(header), ...cells.map(line)].join("\n")}\n`;
}

/**
 * The report as CSV (RFC 4180, formula-injection safe, see {@link csvText}): one row per key,
 * a column per action seen (`action:read`, ...) counting allowed uses and one (`denied:read`, ...)
 * counting refused ones.
 */
export function formatKeysCsv(r: KeysReport): string {
  const actions = [...new Set(r.keys.flatMap((k) => Object.keys(k.byAction)))].sort();
  const header = [
    "credential",
    "owner",
    "nickname",
    "aaguid",
    "authenticator",
    "type",
    "status",
    "suspendedReason",
    "registeredAt",
    "firstUse",
    "lastUse",
    "uses",
    "allowed",
    "denied",
    "errors",
    "signIns",
    "failedSignIns",
    "suspensions",
    "cloneSuspected",
    ...actions.map((a) => `action:${a}`),
    ...actions.map((a) => `denied:${a}`),
    "windowFrom",
    "windowTo",
  ];
  const time = (t: number | undefined) => (t === undefined ? "" : iso(t));
  let out = `${header.map(csvText).join(",")}\r\n`;
  for (const k of r.keys) {
    const cells = [
      csvText(k.credential),
      csvValue(k.owner),
      csvValue(k.nickname),
      csvValue(k.aaguid),
      csvValue(k.authenticator),
      csvValue(k.kind),
      k.status,
      csvValue(k.suspendedReason),
      time(k.registeredAt),
      time(k.firstUse),
      time(k.lastUse),
      k.uses,
      k.allowed,
      k.denied,
      k.errors,
      k.signIns,
      k.failedSignIns,
      k.suspensions,
      k.cloneSuspected,
      ...actions.map((a) => k.byAction[a]?.allowed ?? 0),
      ...actions.map((a) => (k.byAction[a] ? k.byAction[a].denied + k.byAction[a].errors : 0)),
      iso(r.from),
      iso(r.to),
    ];
    out += `${cells.join(",")}\r\n`;
  }
  return out;
}

/**
 * The report as one self-contained HTML file an auditor can open offline: inline CSS, inline SVG
 * bar charts (activity over time, allowed vs refused, overall and per key), no script, no external
 * font, image or style sheet (a Content-Security-Policy of `default-src 'none'` says so to the
 * browser too). Every value from the trail or the identity store is HTML-escaped.
 */
export function formatKeysHtml(r: KeysReport): string {
  const title = `cosmosgate key-usage report, ${day(r.from)} to ${day(r.to)}`;
  const rows = r.keys
    .map((k) => {
      const actions =
        Object.entries(k.byAction)
          .sort(([a], [b]) => cmp(a, b))
          .map(
            ([a, c]) =>
              `<span class="act">${esc(a)}&nbsp;${c.allowed}${c.denied + c.errors > 0 ? ` <em>(${c.denied + c.errors} refused)</em>` : ""}</span>`,
          )
          .join(" ") || "&ndash;";
      const susp =
        k.suspensions + k.cloneSuspected > 0
          ? `${k.suspensions}${k.cloneSuspected > 0 ? ` <em>(+${k.cloneSuspected} clone suspected)</em>` : ""}`
          : "0";
      return (
        `<tr class="${esc(k.status)}">` +
        `<td><b>${esc(k.nickname ?? "(no nickname)")}</b><br><code>${esc(k.credential)}</code></td>` +
        `<td>${esc(k.owner ?? "unknown")}</td>` +
        `<td>${esc(k.authenticator ?? "unknown model")}<br><code>${esc(k.aaguid ?? "")}</code></td>` +
        `<td>${esc(k.kind ?? "unknown")}</td>` +
        `<td>${esc(k.status)}${k.suspendedReason ? `<br><small>${esc(k.suspendedReason)}</small>` : ""}</td>` +
        `<td>${k.firstUse === undefined ? "&ndash;" : esc(isoMinute(k.firstUse))}</td>` +
        `<td>${k.lastUse === undefined ? "&ndash;" : esc(isoMinute(k.lastUse))}</td>` +
        `<td class="n">${k.uses}</td><td class="n">${k.denied}</td><td class="n">${k.errors}</td>` +
        `<td class="n">${k.signIns}${k.failedSignIns > 0 ? ` <em>(+${k.failedSignIns} failed)</em>` : ""}</td>` +
        `<td class="n">${susp}</td><td>${actions}</td>` +
        `<td>${barChart(k.buckets, r, 220, 40, `Activity of ${k.nickname ?? k.credential}`)}</td></tr>`
      );
    })
    .join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#1b1b1b}
h1{font-size:1.4em;margin:0 0 .3em}
.meta{color:#555;margin:0 0 1.5em}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all;color:#444}
tr.suspended td,tr.removed td{background:#fff4f4}
.act{display:inline-block;margin:0 .4em .2em 0;padding:0 .3em;background:#eef3fb;border-radius:3px}
em{color:#b71c1c;font-style:normal}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em;vertical-align:middle}
svg{display:block}
@media print{th{position:static}}
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="meta">Window ${esc(iso(r.from))} &ndash; ${esc(iso(r.to))} (UTC, end excluded) &middot; generated ${esc(iso(r.generatedAt))} &middot;
${r.keys.length} key(s) &middot; ${r.totals.records} audit record(s), ${r.totals.withKey} naming a key, ${r.totals.refused} refused &middot;
one bar = ${esc(duration(r.bucketMs))}</p>
<h2>All activity</h2>
<p class="legend"><span style="background:#2e7d32"></span>allowed<span style="background:#c62828"></span>refused (denied or failed)</p>
${barChart(r.overall, r, 900, 160, "All audit records")}
<h2>Keys</h2>
<table>
<thead><tr><th>Key</th><th>Owner</th><th>Authenticator (AAGUID)</th><th>Type</th><th>Status</th><th>First use</th><th>Last use</th><th>Uses</th><th>Denied</th><th>Errors</th><th>Sign-ins</th><th>Suspensions</th><th>By action</th><th>Activity</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<p class="meta">Uses are the audit records naming the key other than its own management events (credential.*). Sources: the hash-chained audit trail and the gateway's identity store.</p>
</body>
</html>
`;
}

/** A stacked bar chart (allowed below, refused above) of buckets, as inline SVG. */
function barChart(
  buckets: readonly Bucket[],
  r: KeysReport,
  width: number,
  height: number,
  label: string,
): string {
  const n = buckets.length;
  const axis = height >= 100 ? 18 : 0;
  const top = axis > 0 ? 16 : 0; // room for the scale label above the bars
  const plot = height - axis;
  let max = 0;
  for (const b of buckets) max = Math.max(max, b.allowed + b.denied);
  const w = width / n;
  let bars = "";
  for (let i = 0; i < n; i++) {
    const b = buckets[i];
    const total = b.allowed + b.denied;
    if (total === 0) continue;
    const x = (i * w).toFixed(1);
    const bw = Math.max(1, w - 1).toFixed(1);
    const ha = max === 0 ? 0 : (b.allowed / max) * (plot - top - 2);
    const hd = max === 0 ? 0 : (b.denied / max) * (plot - top - 2);
    const tip = `${isoMinute(r.bucketStart + i * r.bucketMs)}: ${b.allowed} allowed, ${b.denied} refused`;
    bars += `<g><title>${esc(tip)}</title>`;
    if (b.allowed > 0)
      bars += `<rect x="${x}" y="${(plot - ha).toFixed(1)}" width="${bw}" height="${Math.max(ha, 0.5).toFixed(1)}" fill="#2e7d32"/>`;
    if (b.denied > 0)
      bars += `<rect x="${x}" y="${(plot - ha - hd).toFixed(1)}" width="${bw}" height="${Math.max(hd, 0.5).toFixed(1)}" fill="#c62828"/>`;
    bars += "</g>";
  }
  let labels = "";
  if (axis > 0) {
    labels =
      `<text x="0" y="${height - 4}" font-size="11" fill="#555">${esc(isoMinute(r.bucketStart))}</text>` +
      `<text x="${width}" y="${height - 4}" font-size="11" fill="#555" text-anchor="end">${esc(isoMinute(r.to))}</text>` +
      `<text x="2" y="11" font-size="11" fill="#555">max ${max} per ${esc(duration(r.bucketMs))}</text>`;
  }
  return (
    `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(label)}">` +
    `<title>${esc(label)}</title><line x1="0" y1="${plot}" x2="${width}" y2="${plot}" stroke="#999" stroke-width="1"/>` +
    `${bars}${labels}</svg>`
  );
}

/** Escapes text for HTML element content and quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

// ---- helpers -------------------------------------------------------------------------------

function newUsage(id: string, buckets: number): KeyUsage {
  return {
    credential: id,
    status: "unknown",
    uses: 0,
    allowed: 0,
    denied: 0,
    errors: 0,
    signIns: 0,
    failedSignIns: 0,
    suspensions: 0,
    cloneSuspected: 0,
    byAction: {},
    buckets: emptyBuckets(buckets),
  };
}

function emptyBuckets(n: number): Bucket[] {
  return Array.from({ length: n }, () => ({ allowed: 0, denied: 0 }));
}

function parseActions(text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? [...new Set(v.filter((a): a is string => typeof a === "string"))] : [];
  } catch {
    return [];
  }
}

function actionSummary(byAction: Record<string, ActionCount>): string {
  return Object.entries(byAction)
    .sort(([a], [b]) => cmp(a, b))
    .map(([a, c]) => `${a}=${c.allowed}${c.denied + c.errors > 0 ? `/${c.denied + c.errors}refused` : ""}`)
    .join(" ");
}

// Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
const CONTROL = /[\p{Cc}\u2028\u2029]/gu;

function printable(s: string): string {
  return s.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function duration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} day(s)`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} hour(s)`;
  if (ms % 60_000 === 0) return `${ms / 60_000} minute(s)`;
  return `${Math.round(ms / 1000)} s`;
}

function read<T>(db: Database, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AuditError) throw err;
    throw new AuditError("ERR_AUDIT_READ", `cannot read the audit trail in "${db.name}": ${message(err)}.`, {
      cause: err,
    });
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
