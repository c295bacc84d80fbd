import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { classify } from "../cosmos/classify.js";
import { signMasterKey } from "../cosmos/masterKey.js";
import { createUpstream } from "./upstream.js";

describe("createUpstream", () => {
  let server: Server;
  let origin: string;
  let seen: IncomingHttpHeaders[];
  beforeEach(async () => {
    seen = [];
    server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const op = classify("GET", "/dbs/shop/colls/orders/docs/o1", {});
  const send = (up: ReturnType<typeof createUpstream>) =>
    up.send({
      method: "GET",
      path: "/dbs/shop/colls/orders/docs/o1",
      headers: { "x-ms-version": "2020-07-15" },
      op,
    });

  it("signs with the account key per the REST spec, with a fresh x-ms-date", async () => {
    const key = Buffer.from("upstream-test-key").toString("base64");
    let now = Date.UTC(2026, 10, 28, 12, 0, 0);
    const up = createUpstream({
      origin,
      auth: { type: "key", key },
      connectTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      clock: () => now,
    });
    await send(up);
    now += 2000;
    await send(up);
    await up.close();
    expect(seen[0]["x-ms-date"]).toBe("Sat, 28 Nov 2026 12:00:00 GMT");
    expect(seen[1]["x-ms-date"]).toBe("Sat, 28 Nov 2026 12:00:02 GMT");
    for (const h of seen) {
      expect(h.authorization).toBe(
        signMasterKey({
          verb: "GET",
          resourceType: "docs",
          resourceLink: "dbs/shop/colls/orders/docs/o1",
          date: String(h["x-ms-date"]),
          key,
        }),
      );
    }
  });

  it("sends a managed-identity (AAD) token for the account's scope and refreshes it 5 minutes before expiry", async () => {
    let now = 1_000_000;
    const scopes: string[] = [];
    let issued = 0;
    const up = createUpstream({
      origin,
      auth: {
        type: "aad",
        getToken: async (scope) => {
          scopes.push(scope);
          issued++;
          return { token: `tok${issued}`, expiresOnTimestamp: now + 60 * 60_000 };
        },
      },
      connectTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      clock: () => now,
    });
    await send(up);
    await send(up);
    now += 56 * 60_000; // within 5 minutes of expiry
    await send(up);
    await up.close();
    expect(scopes).toEqual([`${origin}/.default`, `${origin}/.default`]);
    expect(seen.map((h) => h.authorization)).toEqual([
      encodeURIComponent("type=aad&ver=1.0&sig=tok1"),
      encodeURIComponent("type=aad&ver=1.0&sig=tok1"),
      encodeURIComponent("type=aad&ver=1.0&sig=tok2"),
    ]);
  });

  it("turns a failure to get the upstream token into ERR_UPSTREAM_AUTH", async () => {
    const up = createUpstream({
      origin,
      auth: { type: "aad", getToken: async () => Promise.reject(new Error("no managed identity endpoint")) },
      connectTimeoutMs: 1000,
      requestTimeoutMs: 1000,
    });
    await expect(send(up)).rejects.toMatchObject({ code: "ERR_UPSTREAM_AUTH" });
    expect(seen).toHaveLength(0);
    await up.close();
  });
});
