import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decryptPrivateKey, encryptPrivateKey, loadKek } from "./keyEncryption.js";
import { SigningKeyError } from "./keyErrors.js";

const kek = new Uint8Array(randomBytes(32));
const secret = JSON.stringify({ kty: "EC", crv: "P-256", x: "x", y: "y", d: "very-secret-d" });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SigningKeyError);
    return (error as SigningKeyError).code;
  }
  throw new Error("expected a SigningKeyError");
}

/** Replaces part `index` of a v1 text with the same bytes with one bit flipped. */
function flip(text: string, index: number): string {
  const parts = text.split(".");
  const bytes = Buffer.from(parts[index], "base64url");
  bytes[0] ^= 1;
  parts[index] = bytes.toString("base64url");
  return parts.join(".");
}

describe("encryptPrivateKey / decryptPrivateKey", () => {
  it("round-trips, in the v1 format, with a fresh IV every time", () => {
    const a = encryptPrivateKey(kek, secret);
    const b = encryptPrivateKey(kek, secret);
    expect(a.split(".")).toHaveLength(5);
    expect(a.startsWith("v1.")).toBe(true);
    expect(a).not.toBe(b);
    expect(a).not.toContain("very-secret-d");
    expect(Buffer.from(a.split(".")[2], "base64url")).toHaveLength(12);
    expect(decryptPrivateKey(kek, a)).toBe(secret);
    expect(decryptPrivateKey(kek, b)).toBe(secret);
    expect(decryptPrivateKey(kek, encryptPrivateKey(kek, ""))).toBe("");
  });

  it("refuses an altered ciphertext, IV or tag as tampered", () => {
    const text = encryptPrivateKey(kek, secret);
    expect(codeOf(() => decryptPrivateKey(kek, flip(text, 4)))).toBe("ERR_KEY_TAMPERED");
    expect(codeOf(() => decryptPrivateKey(kek, flip(text, 3)))).toBe("ERR_KEY_TAMPERED");
    expect(codeOf(() => decryptPrivateKey(kek, flip(text, 2)))).toBe("ERR_KEY_TAMPERED");
    const truncated = text.slice(0, -4);
    expect(codeOf(() => decryptPrivateKey(kek, truncated))).toBe("ERR_KEY_TAMPERED");
    expect(() => decryptPrivateKey(kek, flip(text, 4))).toThrow(/altered/);
  });

  it("tells a wrong KEK from tampering", () => {
    const text = encryptPrivateKey(kek, secret);
    const other = new Uint8Array(randomBytes(32));
    expect(codeOf(() => decryptPrivateKey(other, text))).toBe("ERR_KEK_WRONG");
    expect(() => decryptPrivateKey(other, text)).toThrow(/different key encryption key/);
    // Pretending to be under the other KEK does not help: the kekId is authenticated data.
    const parts = text.split(".");
    parts[1] = encryptPrivateKey(other, "x").split(".")[1];
    expect(codeOf(() => decryptPrivateKey(other, parts.join(".")))).toBe("ERR_KEY_TAMPERED");
  });

  it("refuses other formats and bad KEKs", () => {
    expect(codeOf(() => decryptPrivateKey(kek, secret))).toBe("ERR_KEY_FORMAT");
    expect(codeOf(() => decryptPrivateKey(kek, "v2.a.b.c.d"))).toBe("ERR_KEY_FORMAT");
    expect(codeOf(() => encryptPrivateKey(new Uint8Array(16), secret))).toBe("ERR_KEK_INVALID");
    expect(codeOf(() => decryptPrivateKey(new Uint8Array(33), "v1.a.b.c.d"))).toBe("ERR_KEK_INVALID");
  });
});

describe("loadKek", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cosmosgate-kek-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const raw = randomBytes(32);

  it("returns undefined when no KEK is configured", () => {
    expect(loadKek({}, {})).toBeUndefined();
  });

  it("reads base64 and base64url from an environment variable", () => {
    expect(Buffer.from(loadKek({ env: "K" }, { K: raw.toString("base64") })!)).toEqual(raw);
    expect(Buffer.from(loadKek({ env: "K" }, { K: `${raw.toString("base64url")}\n` })!)).toEqual(raw);
  });

  it("names a missing variable and a wrong length", () => {
    expect(codeOf(() => loadKek({ env: "COSMOSGATE_KEK" }, {}))).toBe("ERR_KEK_MISSING");
    expect(() => loadKek({ env: "COSMOSGATE_KEK" }, {})).toThrow(/COSMOSGATE_KEK.*not set/);
    expect(codeOf(() => loadKek({ env: "K" }, { K: randomBytes(16).toString("base64") }))).toBe(
      "ERR_KEK_INVALID",
    );
    expect(() => loadKek({ env: "K" }, { K: randomBytes(16).toString("base64") })).toThrow(/16 bytes.*32/);
    expect(codeOf(() => loadKek({ env: "K" }, { K: "not base64!" }))).toBe("ERR_KEK_INVALID");
    expect(codeOf(() => loadKek({ env: "K", file: "/x" }, { K: raw.toString("base64") }))).toBe(
      "ERR_KEK_INVALID",
    );
  });

  it("reads a 0600 file and refuses a group- or world-readable one with the chmod to run", async () => {
    const file = join(dir, "kek");
    await writeFile(file, `${raw.toString("base64")}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    expect(Buffer.from(loadKek({ file })!)).toEqual(raw);
    await chmod(file, 0o644);
    expect(codeOf(() => loadKek({ file }))).toBe("ERR_KEK_FILE_PERMISSIONS");
    expect(() => loadKek({ file })).toThrow(`chmod 600 ${file}`);
    await chmod(file, 0o640);
    expect(codeOf(() => loadKek({ file }))).toBe("ERR_KEK_FILE_PERMISSIONS");
  });

  it("names a missing or empty file", async () => {
    expect(codeOf(() => loadKek({ file: join(dir, "absent") }))).toBe("ERR_KEK_MISSING");
    const empty = join(dir, "empty");
    await writeFile(empty, "", { mode: 0o600 });
    expect(codeOf(() => loadKek({ file: empty }))).toBe("ERR_KEK_MISSING");
  });
});
