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

  const key = Buffer.from("upstream-test-key").toString("base64");
  const keyUpstream = (clock: () => number) =>
    createUpstream({
      origin,
      auth: { type: "key", key },
      connectTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      clock,
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
    let now = Date.UTC(2026, 10, 28, 12, 0, 0);
    const up = keyUpstream(() => now);
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

  it("signs each verb and resource with its own signature within one second (signatures are reused per second only)", async () => {
    let now = Date.UTC(2026, 10, 28, 12, 0, 0, 100);
    const up = keyUpstream(() => now);
    const requests = [
      ["GET", "/dbs/shop/colls/orders/docs/o1"],
      ["GET", "/dbs/shop/colls/orders/docs/o2"],
      ["DELETE", "/dbs/shop/colls/orders/docs/o1"],
      ["GET", "/dbs/shop/colls/orders/docs/o1"],
      ["GET", "/dbs/shop/colls/orders"],
    ] as const;
    for (const [method, path] of requests) {
      await up.send({ method, path, headers: {}, op: classify(method, path, {}) });
      now += 150; // all within 12:00:00
    }
    now += 1000;
    await up.send({
      method: "GET",
      path: requests[0][1],
      headers: {},
      op: classify("GET", requests[0][1], {}),
    });
    await up.close();
    const expected = [...requests, requests[0]].map(([method, path], i) => {
      const link = path.slice(1);
      return signMasterKey({
        verb: method,
        resourceType: link.split("/").length % 2 === 0 ? link.split("/").at(-2)! : link.split("/").at(-1)!,
        resourceLink: link,
        date: String(seen[i]["x-ms-date"]),
        key,
      });
    });
    expect(seen.map((h) => h.authorization)).toEqual(expected);
    expect(new Set(seen.slice(0, 5).map((h) => h["x-ms-date"]))).toEqual(
      new Set(["Sat, 28 Nov 2026 12:00:00 GMT"]),
    );
    expect(seen[5]["x-ms-date"]).toBe("Sat, 28 Nov 2026 12:00:01 GMT");
    // The same request in the same second: the same signature; a second later: a new one.
    expect(seen[3].authorization).toBe(seen[0].authorization);
    expect(seen[5].authorization).not.toBe(seen[0].authorization);
    expect(new Set(seen.slice(0, 3).map((h) => h.authorization)).size).toBe(3);
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
