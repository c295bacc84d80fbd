/**
 * The audit writer's thread: owns the audit database so that its commits (an fsync each, with
 * synchronous = FULL) never block the gateway's event loop. Started by createWorkerAuditWriter.
 */
import { parentPort, workerData } from "node:worker_threads";
import { openDatabase } from "../store/sqlite.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";
import { createAuditWriter } from "./writer.js";

interface Batch {
  id: number;
  events: AuditEvent[];
}

const port = parentPort;
if (!port) throw new Error("auditWorker must run in a worker thread");
const { file } = workerData as { file: string };

try {
  const db = openDatabase(file);
  const writer = createAuditWriter(db);
  port.postMessage({ ready: true, head: writer.head() });
  port.on("message", async (msg: Batch | { close: true }) => {
    if ("close" in msg) {
      await writer.close();
      db.close();
      port.postMessage({ closed: true });
      return;
    }
    const results = await Promise.allSettled(msg.events.map((e) => writer.append(e)));
    port.postMessage({
      id: msg.id,
      results: results.map((r) =>
        r.status === "fulfilled"
          ? r.value
          : {
              code: r.reason instanceof AuditError ? r.reason.code : "ERR_AUDIT_WRITE",
              message: (r.reason as Error).message,
            },
      ),
    });
  });
} catch (err) {
  port.postMessage({
    failed: {
      code: err instanceof AuditError ? err.code : "ERR_AUDIT_WRITE",
      message: (err as Error).message,
    },
  });
}
