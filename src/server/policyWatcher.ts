import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { type CompiledPolicy, compilePolicy, parsePolicy } from "../policy/index.js";

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
 * a log line and the previous policy stays in force. Watches the directory, because editors save
 * by renaming a new file over the old one.
 */
export function watchPolicy(file: string, holder: PolicyHolder, log: Logger, debounceMs = 100): () => void {
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
        return;
      }
      if (policy.version === holder.current.version) return;
      holder.current = policy;
      holder.loads++;
      log.info({ file, version: policy.version }, "policy reloaded");
    } catch (err) {
      holder.refusals++;
      log.error(
        { file, problem: (err as Error).message },
        "policy file refused; the previous policy stays in force. Fix the file (check it with `cosmosgate policy check`)",
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
