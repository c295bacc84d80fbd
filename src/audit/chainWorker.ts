// The audit chain's writer thread (see chainThread.ts, which starts it). It owns the audit
// database's write connection: it turns each group of events into chained records (canonical
// JSON, SHA-256, INSERT) and commits them, so none of that runs on the gateway's event loop.
// Imports stay narrow (no store/index.js): this thread loads only what writing the chain needs.
import { closeSync, fdatasyncSync, openSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { openDatabase } from "../store/sqlite.js";
import type { ChainReply, ChainRequest, ChainWorkerData } from "./chainThread.js";
import type { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";
import { ChainAppender, type Outcome } from "./writer.js";

const port = parentPort;
if (port === null) throw new Error("chainWorker.ts runs as a worker thread (see chainThread.ts)");
const { file, sync } = workerData as ChainWorkerData;
const post = (reply: ChainReply) => port.postMessage(reply);

let db: ReturnType<typeof openDatabase> | undefined;
let chain: ChainAppender | undefined;
let walFd: number | undefined;
try {
  db = openDatabase(file, { synchronous: "NORMAL" });
  // The gateway's own connection migrated the schema and checkpointed the WAL already.
  chain = new ChainAppender(db);
  // A checkpoint fsyncs the WAL and the database synchronously, inside a COMMIT. Make them rare
  // (every ~40 MB of WAL instead of ~4 MB): they delay the groups that wait behind them.
  db.pragma("wal_autocheckpoint = 10000");
  // From now on a lock held elsewhere fails the commit at once and the gateway retries from a
  // timer, so a held lock never stalls the thread either.
  db.pragma("busy_timeout = 0");
  if (sync) walFd = openSync(`${file}-wal`, "r");
  post({ type: "ready" });
} catch (err) {
  if (db?.open) db.close();
  post({ type: "failed", message: (err as Error).message, code: (err as AuditError).code });
  port.close();
}

if (chain !== undefined && db !== undefined) {
  const appender = chain;
  const conn = db;
  port.on("message", (m: ChainRequest) => {
    switch (m.op) {
      case "write": {
        const events = m.events as AuditEvent[];
        const out: Outcome[] = new Array(events.length);
        try {
          appender.write(events, out, m.index);
        } catch (err) {
          const cause = (err as AuditError).cause as { code?: unknown } | undefined;
          post({
            type: "write-failed",
            message: (err as Error).message,
            causeCode: typeof cause?.code === "string" ? cause.code : undefined,
          });
          return;
        }
        let syncError: string | undefined;
        if (walFd !== undefined && out.some((o) => typeof o === "number")) {
          try {
            fdatasyncSync(walFd);
          } catch (err) {
            syncError = (err as Error).message;
          }
        }
        post({
          type: "written",
          syncError,
          out: out.map((o) => (typeof o === "number" ? o : { code: o.code, message: o.message })),
        });
        return;
      }
      case "close":
        if (m.index) {
          try {
            appender.indexPending(true);
          } catch {
            // Derived data: the next start catches up.
          }
        }
        if (conn.open) conn.close();
        if (walFd !== undefined) closeSync(walFd);
        post({ type: "closed" });
        port.close();
        return;
    }
  });
}
