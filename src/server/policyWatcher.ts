import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { type CompiledPolicy, compilePolicy, parsePolicy } from "../policy/index.js";

/** An audit event of the policy watcher (an IdentityEvent of the gateway itself; see docs/audit.md). */
export interface PolicyEvent {
  type: "policy.loaded" | "policy.refused";
  subject: "cosmosgate";
  subjectKind: "system";
  resource: "/policy";
  reason: string;
  decision: "allow" | "deny";
  details: Record<string, string | number | boolean>;
}

/**
 * The audit event for a policy put in force (`policy.loaded`) or a file refused (`policy.refused`).
 *
 * @example events(policyEvent("policy.loaded", "policy reloaded", { file, version: policy.version }))
 */
export function policyEvent(
  type: PolicyEvent["type"],
  reason: string,
  details: Record<string, string | number | boolean>,
): PolicyEvent {
  return {
    type,
    subject: "cosmosgate",
    subjectKind: "system",
    resource: "/policy",
    reason,
    decision: type === "policy.loaded" ? "allow" : "deny",
    details,
  };
}

/** The policy in force, replaced as a whole when the file changes and parses. */
export interface PolicyHolder {
  current: CompiledPolicy;
  /** How many times a changed file was loaded / refused since start. */
  loads: number;
  refusals: number;
}

/**
 * Reads and compiles the policy file. A missing file means an empty policy: everything is denied.
 *
 * @example const policy = await readPolicyFile("./policy.yaml")
 */
export async function readPolicyFile(file: string): Promise<{ policy: CompiledPolicy; missing: boolean }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return { policy: compilePolicy(parsePolicy("", file)), missing: true };
    }
    throw err;
  }
  return { policy: compilePolicy(parsePolicy(text, file)), missing: false };
}

/**
 * Watches the policy file and swaps in each new version that parses; a broken file is refused with
 * a log line (and a `policy.refused` event) and the previous policy stays in force; a new version
 * in force is a `policy.loaded` event. Watches the directory, because editors save by renaming a
 * new file over the old one.
 *
 * @example closers.push(watchPolicy(file, holder, log, { events: (e) => audit(e) }))
 */
export function watchPolicy(
  file: string,
  holder: PolicyHolder,
  log: Logger,
  opts: { debounceMs?: number; events?: (e: PolicyEvent) => void } = {},
): () => void {
  const debounceMs = opts.debounceMs ?? 100;
  const emit = (e: PolicyEvent) => {
    try {
      opts.events?.(e);
    } catch (err) {
      log.error({ problem: (err as Error).message, type: e.type }, "audit of a policy event failed");
    }
  };
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let closed = false;
  const reload = async () => {
    try {
      const { policy, missing } = await readPolicyFile(file);
      if (closed) return;
      if (missing) {
        holder.refusals++;
        log.error({ file }, "policy file removed; the previous policy stays in force");
        emit(
          policyEvent("policy.refused", "policy file removed; the previous policy stays in force", {
            file,
            problem: "the file was removed",
            keptVersion: holder.current.version,
          }),
        );
        return;
      }
      if (policy.version === holder.current.version) return;
      const previousVersion = holder.current.version;
      holder.current = policy;
      holder.loads++;
      log.info({ file, version: policy.version }, "policy reloaded");
      emit(
        policyEvent("policy.loaded", "policy file changed: the new version is in force", {
          file,
          version: policy.version,
          previousVersion,
          roles: policy.roles.length,
        }),
      );
    } catch (err) {
      if (closed) return;
      holder.refusals++;
      const problem = (err as Error).message;
      log.error(
        { file, problem },
        "policy file refused; the previous policy stays in force. Fix the file (check it with `cosmosgate policy check`)",
      );
      emit(
        policyEvent("policy.refused", "policy file refused; the previous policy stays in force", {
          file,
          problem,
          keptVersion: holder.current.version,
        }),
      );
    }
  };
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(reload, debounceMs);
    });
    watcher.on("error", (err) => log.warn({ file, problem: err.message }, "policy watcher failed"));
  } catch (err) {
    log.warn(
      { file, problem: (err as Error).message },
      "cannot watch the policy file; changes need a restart",
    );
  }
  return () => {
    closed = true;
    clearTimeout(timer);
    watcher?.close();
  };
}
