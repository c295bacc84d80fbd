import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agentKeyFromJwk, agentKeyPath, createAgentKeyFile, readAgentKeyFile } from "./agentKey.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cosmosgate-agentkey-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const posix = process.platform !== "win32";

describe("agent key files", () => {
  it("live in $XDG_CONFIG_HOME/cosmosgate/agents/NAME.jwk (or --dir); names are checked", () => {
    expect(agentKeyPath("report-bot", { env: { XDG_CONFIG_HOME: "/x" } })).toBe(
      "/x/cosmosgate/agents/report-bot.jwk",
    );
    expect(agentKeyPath("report-bot", { dir: "/keys" })).toBe("/keys/report-bot.jwk");
    for (const bad of ["../etc/passwd", "Report", "", "a/b", "-x"]) {
      expect(() => agentKeyPath(bad), bad).toThrow(/not an agent name/);
    }
  });

  it("keygen writes a private ES256 JWK with mode 0600 in a 0700 directory, never overwriting", async () => {
    const file = join(dir, "agents", "report-bot.jwk");
    const key = await createAgentKeyFile(file);
    if (posix) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, "agents")).mode & 0o777).toBe(0o700);
    }
    const jwk = JSON.parse(readFileSync(file, "utf8"));
    expect(jwk).toMatchObject({
      kty: "EC",
      crv: "P-256",
      alg: "ES256",
      kid: key.thumbprint,
      x: key.publicJwk.x,
    });
    expect(typeof jwk.d).toBe("string");
    expect(key.publicJwk).toEqual({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y });
    expect(key.thumbprint).toBe(await calculateJwkThumbprint(key.publicJwk, "sha256"));
    // The in-memory key cannot be exported.
    expect(key.privateKey.extractable).toBe(false);
    await expect(createAgentKeyFile(file)).rejects.toMatchObject({
      code: "ERR_AGENT_KEY",
      message: /already exists/,
    });
    expect(JSON.parse(readFileSync(file, "utf8")).d).toBe(jwk.d);
  });

  it("reads the key back and signs with it; the signature verifies with the public key", async () => {
    const file = join(dir, "a.jwk");
    const made = await createAgentKeyFile(file);
    const read = await readAgentKeyFile(file);
    expect(read.thumbprint).toBe(made.thumbprint);
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).sign(read.privateKey);
    const { importJWK } = await import("jose");
    await expect(jwtVerify(jwt, await importJWK(made.publicJwk, "ES256"))).resolves.toBeDefined();
  });

  it.skipIf(!posix)("refuses a key file others may read or write, or a symbolic link", async () => {
    const file = join(dir, "a.jwk");
    await createAgentKeyFile(file);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(file, mode);
      await expect(readAgentKeyFile(file), mode.toString(8)).rejects.toMatchObject({
        code: "ERR_AGENT_KEY",
        message: expect.stringMatching(/accessible by other users.*chmod 600/),
      });
    }
    chmodSync(file, 0o600);
    await expect(readAgentKeyFile(file)).resolves.toBeDefined();
    const link = join(dir, "link.jwk");
    symlinkSync(file, link);
    await expect(readAgentKeyFile(link)).rejects.toMatchObject({ message: /symbolic link/ });
  });

  it("refuses a missing file, a public key, another curve, and garbage, saying what to do", async () => {
    await expect(readAgentKeyFile(join(dir, "none.jwk"))).rejects.toMatchObject({
      message: /cosmosgate agent keygen/,
    });
    const write = (name: string, text: string) => {
      const f = join(dir, name);
      writeFileSync(f, text, { mode: 0o600 });
      return f;
    };
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    await expect(
      readAgentKeyFile(write("pub.jwk", JSON.stringify(await exportJWK(publicKey)))),
    ).rejects.toMatchObject({
      message: /no private key/,
    });
    const p384 = await generateKeyPair("ES384", { extractable: true });
    await expect(
      readAgentKeyFile(write("p384.jwk", JSON.stringify(await exportJWK(p384.privateKey)))),
    ).rejects.toMatchObject({
      message: /P-256/,
    });
    await expect(readAgentKeyFile(write("junk.jwk", "not json"))).rejects.toMatchObject({
      message: /not JSON/,
    });
    const jwk = await exportJWK(privateKey);
    await expect(
      readAgentKeyFile(write("bad.jwk", JSON.stringify({ ...jwk, d: "AAAA" }))),
    ).rejects.toMatchObject({
      message: /valid P-256 private key/,
    });
    await expect(agentKeyFromJwk(await exportJWK(publicKey))).rejects.toMatchObject({
      code: "ERR_AGENT_KEY",
    });
    await expect(agentKeyFromJwk(jwk)).resolves.toMatchObject({ publicJwk: { x: jwk.x } });
  });
});
