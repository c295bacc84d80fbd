import { Worker } from "node:worker_threads";
import { AuditError, type AuditErrorCode } from "./errors.js";
import type { AuditEvent } from "./types.js";

/** The audit writer as the data plane uses it. */
export interface AuditSink {
  /** Resolves with the record's seq once it is committed; rejects with AuditError otherwise. */
  append(event: AuditEvent): Promise<number>;
  /** Appends in flight (queued or being committed), for metrics and back-pressure. */
  pending(): number;
  close(): Promise<void>;
}

type Result = number | { code: AuditErrorCode; message: string };

/**
 * Starts the audit writer in a worker thread that owns `file`. Appends made in one event-loop
 * turn travel as one message; the worker commits them with group commit and answers with their
 * seqs, so the main thread pays a structured clone per record, not an fsync. If the worker dies,
 * every pending and later append rejects with ERR_AUDIT_WRITE (the data plane fails closed).
 *
 * @example const audit = await createWorkerAuditWriter(join(stateDir, "audit.db")); await audit.append(event)
 */
export async function createWorkerAuditWriter(file: string): Promise<AuditSink> {
  // From source (tsx / vitest) the worker is TypeScript and needs tsx's loader; from dist it is JS.
  const fromSource = import.meta.url.endsWith(".ts");
  const worker = new Worker(
    new URL(fromSource ? "./auditWorker.boot.mjs" : "./auditWorker.js", import.meta.url),
    {
      workerData: { file },
    },
  );
  let nextId = 1;
  let queue: AuditEvent[] = [];
  let queueSettlers: Settler[] = [];
  const inFlight = new Map<number, Settler[]>();
  let failure: AuditError | undefined;
  let scheduled = false;
  let onClosed: (() => void) | undefined;

  const failAll = (err: AuditError) => {
    failure ??= err;
    for (const settlers of inFlight.values()) for (const s of settlers) s.reject(err);
    inFlight.clear();
    for (const s of queueSettlers) s.reject(err);
    queue = [];
    queueSettlers = [];
  };

  await new Promise<void>((resolve, reject) => {
    worker.once("message", (msg: { ready?: true; failed?: { code: AuditErrorCode; message: string } }) => {
      if (msg.failed) reject(new AuditError(msg.failed.code, msg.failed.message));
      else resolve();
    });
    worker.once("error", (err) =>
      reject(new AuditError("ERR_AUDIT_WRITE", `audit worker failed: ${err.message}`)),
    );
  });

  worker.on("message", (msg: { id?: number; results?: Result[]; closed?: true }) => {
    if (msg.closed) {
      onClosed?.();
      return;
    }
    if (msg.id === undefined || !msg.results) return;
    const settlers = inFlight.get(msg.id);
    inFlight.delete(msg.id);
    if (!settlers) return;
    for (let i = 0; i < settlers.length; i++) {
      const r = msg.results[i];
      if (typeof r === "number") settlers[i].resolve(r);
      else settlers[i].reject(new AuditError(r.code, r.message));
    }
  });
  worker.on("error", (err) =>
    failAll(new AuditError("ERR_AUDIT_WRITE", `audit worker failed: ${err.message}`)),
  );
  worker.on("exit", (code) => {
    if (code !== 0 || inFlight.size > 0)
      failAll(new AuditError("ERR_AUDIT_WRITE", `audit worker exited (${code})`));
    else failure ??= new AuditError("ERR_AUDIT_CLOSED", "the audit writer is closed");
  });

  const send = () => {
    scheduled = false;
    if (queue.length === 0) return;
    const id = nextId++;
    inFlight.set(id, queueSettlers);
    try {
      worker.postMessage({ id, events: queue });
    } catch (err) {
      // An event the structured clone cannot copy: refuse that batch, keep the writer.
      inFlight.delete(id);
      for (const s of queueSettlers) s.reject(new AuditError("ERR_AUDIT_EVENT", (err as Error).message));
    }
    queue = [];
    queueSettlers = [];
  };

  return {
    append(event) {
      if (failure) return Promise.reject(failure);
      return new Promise<number>((resolve, reject) => {
        queue.push(event);
        queueSettlers.push({ resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(send);
        }
      });
    },
    pending() {
      let n = queue.length;
      for (const s of inFlight.values()) n += s.length;
      return n;
    },
    async close() {
      if (failure) {
        await worker.terminate();
        return;
      }
      send();
      await new Promise<void>((resolve) => {
        onClosed = resolve;
        worker.postMessage({ close: true });
      });
      failure = new AuditError("ERR_AUDIT_CLOSED", "the audit writer is closed");
      await worker.terminate();
    },
  };
}

interface Settler {
  resolve(seq: number): void;
  reject(err: AuditError): void;
}
