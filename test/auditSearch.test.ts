import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalRecord, hashCanonical } from "../src/audit/chain.js";
import type { AuditEvent, AuditRecord } from "../src/audit/types.js";
import { createAuditWriter } from "../src/audit/writer.js";
import { main } from "../src/cli/main.js";
import { captureIo } from "../src/cli/testing.js";
import { openDatabase, openIdentityStore } from "../src/store/index.js";
import { launchChromium } from "./helpers/browser.js";
import { runCli, startCli } from "./helpers/cli.js";
import { type Harness, startHarness } from "./helpers/gateway.js";

/** A trail written by a real gateway: requests with the keys their tokens name. */
describe("audit search, export, keys and tail -f on a real gateway's trail", () => {
  let h: Harness;
  let config: string;
  let out: string;

  const aad = (jwt: string) => `type=aad&ver=1.0&sig=${jwt}`;
  async function request(sub: string, cred: string, method: string, path: string): Promise<number> {
    const token = await h.issuer.sign({ sub, groups: ["analysts"], claims: { cred } });
    const res = await h.raw(method, path, {
      authorization: aad(token),
      "x-ms-version": "2020-07-15",
      "x-ms-documentdb-partitionkey": '["o1"]',
    });
    return res.status;
  }

  beforeAll(async () => {
    h = await startHarness({ upstream: "embedded" });
    config = join(h.dir, "cosmosgate.yaml");
    out = mkdtempSync(join(tmpdir(), "cosmosgate-auditsearch-"));
    // The identity store names ada's key (the gateway has the store open too, as in production).
    const store = openIdentityStore(join(h.dir, "state", "state.db"));
    store.createUser({
      id: "u-ada",
      name: "ada",
      groups: ["analysts"],
      admin: false,
      disabled: false,
      createdAt: Date.now(),
      webauthnUserId: "w-ada",
    });
    for (const [id, nickname] of [
      ["kAda1", "ada's laptop key"],
      ["kAdaSpare", "spare"],
      ["kAdaSpare2", "spare"],
    ])
      store.addCredential({
        id,
        userId: "u-ada",
        publicKey: new Uint8Array([1]),
        counter: 0,
        transports: [],
        aaguid: "ee882879-721c-4913-9775-3dfcce97072a",
        fmt: "packed",
        deviceBound: true,
        backedUp: false,
        nickname,
        createdAt: Date.now(),
        useCount: 0,
      });
    store.close();
    for (let i = 0; i < 3; i++) await request("ada", "kAda1", "GET", "/dbs/shop/colls/orders/docs/o1");
    expect(await request("ada", "kAda1", "DELETE", "/dbs/shop/colls/orders/docs/o1")).toBe(403);
    expect(await request("bob", "kBob", "GET", "/dbs/shop/colls/users/docs/u1")).toBe(403);
  });

  afterAll(async () => {
    await h?.close();
    rmSync(out, { recursive: true, force: true });
  });

  /** In-process (fast): the same command line, with captured output. */
  const cli = async (...args: string[]) => {
    const io = captureIo();
    const code = await main(["node", "cosmosgate", "audit", ...args, "--config", config], io);
    return { code, stdout: io.stdout, stderr: io.stderr };
  };
  /** As a real child process. */
  const run = (...args: string[]) => runCli(["audit", ...args, "--config", config]);
  const records = (stdout: string) =>
    stdout
      .trim()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as AuditRecord);

  it("search finds by actor, action, decision, resource, time and key (ID or nickname)", async () => {
    const ada = await cli("search", "--actor", "ada", "--json");
    expect(ada.code).toBe(0);
    const adaRecords = records(ada.stdout);
    expect(adaRecords).toHaveLength(4);
    expect(adaRecords.every((r) => r.subject === "ada" && r.credential === "kAda1")).toBe(true);
    // Newest first by default.
    expect(adaRecords[0].actions).toEqual(["delete"]);

    const del = records((await cli("search", "--action", "delete", "--json")).stdout);
    expect(del.map((r) => [r.subject, r.decision])).toEqual([["ada", "deny"]]);

    const denied = records(
      (await cli("search", "--decision", "deny", "--type", "data.request", "--json")).stdout,
    );
    expect(denied.map((r) => r.subject).sort()).toEqual(["ada", "bob"]);

    const orders = records((await cli("search", "--resource", "/dbs/shop/colls/orders/", "--json")).stdout);
    expect(orders).toHaveLength(4);
    const users = records((await cli("search", "--resource", "/dbs/shop/colls/u*", "--json")).stdout);
    expect(users.map((r) => r.subject)).toEqual(["bob"]);

    const recent = records(
      (
        await cli(
          "search",
          "--actor",
          "ada",
          "--from",
          "1h",
          "--to",
          "now",
          "--order",
          "oldest",
          "--limit",
          "2",
          "--json",
        )
      ).stdout,
    );
    expect(recent.map((r) => r.actions)).toEqual([["read"], ["read"]]);
    expect((await cli("search", "--actor", "ada", "--to", "1h")).stderr).toMatch(/no audit record matches/);

    const byNick = await cli("search", "--key", "ada's laptop key", "--json");
    expect(byNick.code).toBe(0);
    expect(byNick.stderr).toMatch(/key "ada's laptop key" is credential kAda1 \(ada\)/);
    expect(records(byNick.stdout)).toHaveLength(4);
    const byId = records((await cli("search", "--key", "kBob", "--json")).stdout);
    expect(byId.map((r) => r.subject)).toEqual(["bob"]);

    const text = await run("search", "--actor", "bob");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/deny 403\/\d+ bob key=kBob read \/dbs\/shop\/colls\/users\/docs\/u1/);
  });

  it("search refuses bad options with exit 2 and says what to do", async () => {
    const cases: [string[], RegExp][] = [
      [["--action", "reed"], /--action "reed": not an action; use one of metadata, read/],
      [["--decision", "maybe"], /--decision "maybe": expected allow, deny or error/],
      [["--from", "yesterday"], /--from "yesterday": not a time; use ISO 8601/],
      [["--from", "now", "--to", "1h"], /--from now is not before --to 1h/],
      [["--limit", "0"], /--limit 0: expected a whole number from 1 to 10000000/],
      [["--limit", "ten"], /--limit ten: expected a whole number/],
      [["--order", "sideways"], /--order sideways: expected "newest" or "oldest"/],
      [["--type", "Sign In"], /--type "Sign In": expected an event type in dot.case/],
      [["--actor", ""], /--actor: give a value/],
      [
        ["--key", "spare"],
        /--key "spare": 2 keys have this nickname \(kAdaSpare of ada, kAdaSpare2 of ada\); give the credential ID/,
      ],
      [["--bogus"], /unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const res = await cli("search", ...args);
      expect({ args, code: res.code }).toEqual({ args, code: 2 });
      expect(res.stderr).toMatch(message);
    }
  });

  it("export writes a verifiable JSONL file (0600), refuses to overwrite it, and shows progress", async () => {
    const file = join(out, "trail.jsonl");
    const res = await run("export", "--out", file, "--progress");
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/\rexporting \[#{24}\] 100% (\d+)\/\1 records \([\d.]+s, \d+\/s\)\s*\n/);
    expect(res.stderr).toMatch(/exported \d+ record\(s\) to .*trail\.jsonl in [\d.]+ s \(\d+ records\/s\)/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = readFileSync(file, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    const recs = lines.filter((l) => l.checkpoint === undefined) as AuditRecord[];
    expect(recs.length).toBeGreaterThanOrEqual(5);
    let prev = "";
    for (const r of recs) {
      const { seq, prevHash, hash, ...event } = r;
      expect(prevHash).toBe(prev);
      expect(hashCanonical(prevHash, canonicalRecord(seq, event))).toBe(hash);
      prev = hash;
    }
    expect(existsSync(`${file}.${process.pid}.partial`)).toBe(false);
    // `audit verify --file` accepts the export as the whole trail.
    const verified = await cli("verify", "--file", file, "--complete");
    expect({ code: verified.code, err: verified.stderr }).toEqual({ code: 0, err: "" });

    const again = await cli("export", "--out", file);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/the file exists; choose another name or add --force/);
    expect((await cli("export", "--out", file, "--force", "--actor", "bob")).code).toBe(0);
    const bob = readFileSync(file, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(bob.filter((l) => l.checkpoint === undefined).map((r) => r.subject)).toEqual(["bob"]);

    const bad = await cli("export", "--format", "xml");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--format xml: expected "jsonl" or "csv"/);
  });

  it("export --format csv to standard output", async () => {
    const res = await cli("export", "--format", "csv", "--actor", "ada");
    expect(res.code).toBe(0);
    const rows = res.stdout.trimEnd().split("\r\n");
    expect(rows[0]).toMatch(/^seq,time,type,instance,subject,/);
    expect(rows).toHaveLength(5);
    expect(rows.slice(1).every((r) => r.includes(",ada,") && r.includes(",kAda1,"))).toBe(true);
    expect(res.stderr).toBe("");
  });

  it("keys reports each credential as a table, CSV and a self-contained HTML file", async () => {
    const table = await cli("keys");
    expect(table.code).toBe(0);
    const ada = table.stdout.split("\n").find((l) => l.startsWith("kAda1 "))!;
    expect(ada).toMatch(
      /kAda1\s+ada\s+ada's laptop key\s+device-bound\s+YubiKey 5 Series\s+active\s+\S+\s+\S+\s+4\s+1\s+0\s+0\s+0\s+delete=0\/1refused read=3/,
    );
    expect(table.stdout).toMatch(/^kBob\s+bob\s+-\s+-\s+-\s+unknown/m);
    expect(table.stdout).toMatch(/^kAdaSpare\s+ada\s+spare\s.*active\s+-\s+-\s+0\s+0\s+0\s+0\s+0\s+-$/m);

    const csv = await cli("keys", "--format", "csv", "--from", "1h");
    expect(csv.stdout.split("\r\n")[0]).toMatch(/^credential,owner,nickname,aaguid,/);

    const html = join(out, "keys.html");
    const res = await run("keys", "--format", "html", "--out", html);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/wrote the key-usage report \(4 key\(s\)\)/);
    const page = readFileSync(html, "utf8");
    expect(page).toContain("ada&#39;s laptop key");
    expect(page).not.toMatch(/https?:\/\/|<script|\bsrc=|\bhref=/i);
    expect(statSync(html).mode & 0o777).toBe(0o600);

    // Opened in a real browser, offline: the file is the only thing it loads, and the nickname is text.
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on("request", (r) => requests.push(r.url()));
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(pathToFileURL(html).href);
      expect(requests).toEqual([pathToFileURL(html).href]);
      expect(errors).toEqual([]);
      expect(await page.locator("svg").count()).toBe(5); // overall + one per key
      expect(await page.locator("td b", { hasText: "ada's laptop key" }).count()).toBe(1);
    } finally {
      await browser.close();
    }

    const bad = await cli("keys", "--format", "pdf");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--format pdf: expected "table", "csv" or "html"/);
  });

  it("tail -f prints new records as the gateway commits them, until Ctrl-C", async () => {
    const follow = startCli(["audit", "tail", "-f", "-n", "1", "--config", config]);
    try {
      await follow.waitFor(/\n/);
      await request("ada", "kAda1", "GET", "/dbs/shop/colls/orders/docs/followed");
      await follow.waitFor(/read \/dbs\/shop\/colls\/orders\/docs\/followed/, 10_000);
      await request("bob", "kBob", "GET", "/dbs/shop/colls/users/docs/followed-too");
      await follow.waitFor(/bob key=kBob read \/dbs\/shop\/colls\/users\/docs\/followed-too/, 10_000);
    } finally {
      expect(await follow.stop("SIGINT")).toBe(0);
    }
    expect(follow.output().stdout.trim().split("\n")).toHaveLength(3);
  });

  it("every subcommand has help with examples", async () => {
    for (const cmd of ["search", "export", "keys", "tail"]) {
      const io = captureIo();
      const res = { code: await main(["node", "cosmosgate", "audit", cmd, "--help"], io), stdout: io.stdout };
      expect({ cmd, code: res.code }).toEqual({ cmd, code: 0 });
      expect(res.stdout).toMatch(/Examples:\n {2}cosmosgate audit /);
    }
  });
});

describe("audit export and tail -f at volume (records from the batch writer)", () => {
  let dir: string;
  let config: string;
  const N = 20_000;
  const ev = (i: number): AuditEvent => ({
    time: Date.UTC(2025, 0, 1) + i * 100,
    type: "data.request",
    subject: `user${i % 50}`,
    credential: `key${i % 80}`,
    actions: [i % 7 === 0 ? "delete" : "read"],
    resource: `/dbs/shop/colls/orders/docs/${i}`,
    decision: i % 7 === 0 ? "deny" : "allow",
    reason: "volume",
    status: i % 7 === 0 ? 403 : 200,
    durationMs: 1,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cosmosgate-auditvolume-"));
    config = join(dir, "cosmosgate.yaml");
    writeFileSync(config, `stateDir: ${join(dir, "state")}\n`);
    const db = openDatabase(join(dir, "state", "audit.db"));
    const w = createAuditWriter(db);
    for (let base = 0; base < N; base += 1000)
      await Promise.all(Array.from({ length: 1000 }, (_, i) => w.append(ev(base + i))));
    await w.close();
    db.close();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("exports every record of a filter, in seq order, to standard output", async () => {
    const res = await runCli(["audit", "export", "--key", "key3", "--config", config], { timeoutMs: 60_000 });
    expect(res.code).toBe(0);
    const seqs = res.stdout
      .trimEnd()
      .split("\n")
      .map((l) => (JSON.parse(l) as AuditRecord).seq);
    expect(seqs).toHaveLength(N / 80);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const all = await runCli(["audit", "export", "--format", "csv", "--config", config], {
      timeoutMs: 60_000,
    });
    expect(all.stdout.trimEnd().split("\r\n")).toHaveLength(N + 1);
  });

  it("tail -f -n 0 prints only what comes after it started, and stops when asked", async () => {
    let stop!: (signal: string) => void;
    const io = { ...captureIo(), waitForStop: () => new Promise<string>((r) => (stop = r)) };
    const out = { text: "" };
    io.out = (t: string) => {
      out.text += t;
    };
    const done = main(["node", "cosmosgate", "audit", "tail", "-f", "-n", "0", "--config", config], io);
    await new Promise((r) => setTimeout(r, 300));
    const db = openDatabase(join(dir, "state", "audit.db"));
    const w = createAuditWriter(db);
    await Promise.all([0, 1, 2].map((i) => w.append({ ...ev(i), subject: `late${i}` })));
    await w.close();
    db.close();
    for (let i = 0; i < 100 && out.text.split("\n").length < 4; i++)
      await new Promise((r) => setTimeout(r, 50));
    stop("SIGINT");
    expect(await done).toBe(0);
    expect(
      out.text
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[3]),
    ).toEqual(["late0", "late1", "late2"]);
  });

  it("tail -f keeps up with a burst larger than one page", async () => {
    const db = openDatabase(join(dir, "state", "audit.db"));
    const last = db.prepare("SELECT max(seq) FROM audit_events").pluck().get() as number;
    const follow = startCli(["audit", "tail", "-f", "-n", "1", "--json", "--config", config]);
    try {
      await follow.waitFor(new RegExp(`"seq":${last}\\b`)); // the last record: it follows from here
      const w = createAuditWriter(db);
      await Promise.all(Array.from({ length: 2500 }, (_, i) => w.append(ev(N + i))));
      await w.close();
      await follow.waitFor(new RegExp(`"seq":${last + 2500}\\b`), 15_000);
    } finally {
      db.close();
      expect(await follow.stop("SIGINT")).toBe(0);
    }
    const seqs = follow
      .output()
      .stdout.trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as AuditRecord).seq);
    expect(seqs).toEqual(Array.from({ length: 2501 }, (_, i) => last + i));
  });
});
