import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CredentialsFileContent,
  credentialsFilePath,
  readCredentials,
  type StoredSession,
  updateCredentials,
  withCredentialsLock,
  writeCredentials,
} from "./credentialsFile.js";
import { GatewayCredentialError } from "./errors.js";
import { normalizeGatewayUrl } from "./urls.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-creds-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const session = (gateway: string, n = 1): StoredSession => ({
  gateway,
  tokenEndpoint: `${gateway}/oauth/token`,
  revocationEndpoint: `${gateway}/oauth/revoke`,
  accessToken: `at-${n}`,
  expiresAt: 1_900_000_000_000,
  refreshToken: `rt-${n}`,
  dataPlane: "https://localhost:8081",
});

const content = (...sessions: StoredSession[]): CredentialsFileContent => ({
  version: 1,
  gateways: Object.fromEntries(sessions.map((s) => [s.gateway, s])),
});

const mode = (p: string) => statSync(p).mode & 0o777;

describe("credentialsFilePath", () => {
  it("prefers COSMOSGATE_CREDENTIALS, then XDG_CONFIG_HOME, then ~/.config", () => {
    expect(credentialsFilePath({ COSMOSGATE_CREDENTIALS: "/x/c.json", XDG_CONFIG_HOME: "/xdg" })).toBe(
      "/x/c.json",
    );
    expect(credentialsFilePath({ XDG_CONFIG_HOME: "/xdg" })).toBe("/xdg/cosmosgate/credentials.json");
    expect(credentialsFilePath({})).toMatch(/\.config\/cosmosgate\/credentials\.json$/);
  });
});

describe("writeCredentials / readCredentials", () => {
  it("creates the directory 0700 and the file 0600, and reads back what it wrote", async () => {
    const file = join(dir, "cfg", "cosmosgate", "credentials.json");
    const c = content(session("http://localhost:8080"), session("https://gw.example.com", 2));
    await writeCredentials(file, c);
    expect(mode(join(dir, "cfg", "cosmosgate"))).toBe(0o700);
    expect(mode(file)).toBe(0o600);
    expect(await readCredentials(file)).toEqual(c);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual(c);
  });

  it("stays 0600 under a permissive umask", async () => {
    const old = process.umask(0);
    try {
      const file = join(dir, "cosmosgate", "credentials.json");
      await writeCredentials(file, content(session("http://localhost:8080")));
      expect(mode(file)).toBe(0o600);
      expect(mode(join(dir, "cosmosgate"))).toBe(0o700);
    } finally {
      process.umask(old);
    }
  });

  it("replaces atomically: no temporary file is left and a reader never sees a partial file", async () => {
    const file = join(dir, "credentials.json");
    await writeCredentials(file, content(session("http://localhost:8080")));
    const big = content(...Array.from({ length: 200 }, (_, i) => session(`https://gw${i}.example.com`, i)));
    const reads: Promise<CredentialsFileContent>[] = [];
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      writes.push(writeCredentials(file, i % 2 === 0 ? big : content(session("http://localhost:8080"))));
      reads.push(readCredentials(file));
    }
    await Promise.all(writes);
    for (const r of await Promise.all(reads)) expect([1, 200]).toContain(Object.keys(r.gateways).length);
    expect(readdirSync(dir).sort()).toEqual(["credentials.json"]);
  });

  it("reads an absent file as no sessions", async () => {
    expect(await readCredentials(join(dir, "nope.json"))).toEqual({ version: 1, gateways: {} });
  });

  it.skipIf(process.platform === "win32")(
    "refuses a file other users can read, saying chmod 600",
    async () => {
      const file = join(dir, "credentials.json");
      await writeCredentials(file, content(session("http://localhost:8080")));
      chmodSync(file, 0o644);
      const error = await readCredentials(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GatewayCredentialError);
      expect(error).toMatchObject({ code: "ERR_CREDENTIALS_FILE" });
      expect((error as Error).message).toContain(`chmod 600 ${file}`);
      expect((error as Error).message).toContain("0644");
      chmodSync(file, 0o640);
      await expect(readCredentials(file)).rejects.toThrow(/chmod 600/);
      chmodSync(file, 0o600);
      expect(Object.keys((await readCredentials(file)).gateways)).toEqual(["http://localhost:8080"]);
    },
  );

  it("refuses damaged files with what to do", async () => {
    const file = join(dir, "credentials.json");
    writeFileSync(file, "{not json", { mode: 0o600 });
    await expect(readCredentials(file)).rejects.toThrow(/not valid JSON.*cosmosgate login/);
    writeFileSync(file, JSON.stringify({ version: 2, gateways: {} }), { mode: 0o600 });
    await expect(readCredentials(file)).rejects.toThrow(/not a cosmosgate credentials file/);
    writeFileSync(file, JSON.stringify({ version: 1, gateways: { "http://x": { gateway: 1 } } }), {
      mode: 0o600,
    });
    await expect(readCredentials(file)).rejects.toThrow(/damaged entry for http:\/\/x/);
  });

  it("tightens its own cosmosgate directory when it was created too open", async () => {
    const cg = join(dir, "cosmosgate");
    mkdirSync(cg, { mode: 0o755 });
    chmodSync(cg, 0o755);
    await writeCredentials(join(cg, "credentials.json"), content());
    expect(mode(cg)).toBe(0o700);
  });
});

describe("withCredentialsLock / updateCredentials", () => {
  it("serializes read-modify-write cycles so no update is lost", async () => {
    const file = join(dir, "credentials.json");
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        updateCredentials(file, async (c) => {
          await new Promise((r) => setTimeout(r, 2));
          c.gateways[`https://gw${i}.example.com`] = session(`https://gw${i}.example.com`, i);
          return c;
        }),
      ),
    );
    expect(Object.keys((await readCredentials(file)).gateways)).toHaveLength(10);
    expect(readdirSync(dir).sort()).toEqual(["credentials.json"]);
  });

  it("takes over a lock left by a process that is gone", async () => {
    const file = join(dir, "credentials.json");
    writeFileSync(`${file}.lock`, "999999999\n", { mode: 0o600 });
    expect(await withCredentialsLock(file, async () => "ran", { waitMs: 2000 })).toBe("ran");
  });

  it("gives up with a clear message when a live process keeps the lock", async () => {
    const file = join(dir, "credentials.json");
    writeFileSync(`${file}.lock`, `${process.ppid}\n`, { mode: 0o600 });
    await expect(withCredentialsLock(file, async () => "ran", { waitMs: 100 })).rejects.toThrow(
      /held .*credentials\.json\.lock.*delete that file/,
    );
  });
});

describe("normalizeGatewayUrl", () => {
  it("canonicalizes and refuses plain HTTP to other machines", () => {
    expect(normalizeGatewayUrl("HTTP://LocalHost:8080/")).toBe("http://localhost:8080");
    expect(normalizeGatewayUrl("https://gw.example.com:443/base/")).toBe("https://gw.example.com/base");
    expect(normalizeGatewayUrl("http://127.0.0.1:8080")).toBe("http://127.0.0.1:8080");
    expect(() => normalizeGatewayUrl("http://gw.example.com")).toThrow(/plain HTTP.*https/);
    expect(() => normalizeGatewayUrl("ftp://x")).toThrow(/https/);
    expect(() => normalizeGatewayUrl("not a url")).toThrow(/not a URL/);
    expect(() => normalizeGatewayUrl("https://gw.example.com/?a=1")).toThrow(/query/);
  });
});
