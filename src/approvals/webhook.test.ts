import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type ApprovalWebhookSummary, createWebhookNotifier } from "./webhook.js";

const summary: ApprovalWebhookSummary = {
  type: "approval.requested",
  id: "apr_test",
  url: "http://localhost:8080/console/#/approvals/apr_test",
  status: "pending",
  operation: {
    method: "DELETE",
    resource: "/dbs/shop/colls/orders/docs/o1",
    operation: "item.delete",
    actions: ["delete"],
    partitionKey: '["c1"]',
    bodySha256: "",
    person: "ada",
    agent: "agent:bot",
  },
  operationHash: "ab".repeat(32),
  person: "ada",
  agent: "agent:bot",
  approvers: "self",
  quorum: 1,
  createdAt: "2026-01-01T00:00:00.000Z",
  expiresAt: "2026-01-01T00:15:00.000Z",
};

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=secret-in-query`;
}

function logger() {
  const lines: string[] = [];
  const log = pino(
    { level: "debug" },
    new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  return { log, lines };
}

describe("the approval webhook", () => {
  it("POSTs the JSON summary", async () => {
    let received: { method?: string; type?: string; body?: unknown } = {};
    const url = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received = {
          method: req.method,
          type: req.headers["content-type"],
          body: JSON.parse(Buffer.concat(chunks).toString()),
        };
        res.writeHead(204).end();
      });
    });
    const { log, lines } = logger();
    await createWebhookNotifier({ url, timeoutMs: 2000, log })(summary);
    expect(received).toEqual({ method: "POST", type: "application/json", body: summary });
    expect(lines).toEqual([]);
  });

  it("a webhook that does not answer is abandoned at the time-out and logged without its query", async () => {
    const url = await listen(() => {
      // never answers
    });
    const { log, lines } = logger();
    const started = Date.now();
    await createWebhookNotifier({ url, timeoutMs: 200, log })(summary);
    expect(Date.now() - started).toBeLessThan(2000);
    const text = lines.join("");
    expect(text).toContain("approval webhook failed");
    expect(text).toContain("apr_test");
    expect(text).toContain("no answer within 200 ms");
    expect(text).not.toContain("secret-in-query");
  });

  it("an error status and a refused connection are logged, never thrown", async () => {
    const url = await listen((_req, res) => res.writeHead(500).end("no"));
    const { log, lines } = logger();
    await createWebhookNotifier({ url, timeoutMs: 2000, log })(summary);
    expect(lines.join("")).toContain('"status":500');
    await createWebhookNotifier({ url: "http://127.0.0.1:1/hook", timeoutMs: 2000, log })(summary);
    expect(lines.join("")).toMatch(/approval webhook failed/);
  });
});
