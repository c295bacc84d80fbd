import vm from "node:vm";
import { type Json, QueryError } from "../query/index.js";

/** Longest one UDF call may run, in ms. */
export const UDF_TIMEOUT_MS = 50;

/**
 * Runs a container's user-defined functions (JavaScript, as Cosmos DB stores them) for queries.
 *
 * Each container's UDFs share one `node:vm` context created from `Object.create(null)`, with code
 * generation from strings and WebAssembly disabled. Arguments go in as JSON text, parsed inside
 * the context, and results come back as JSON text, so no host object is reachable from UDF code;
 * every call runs as a script with a {@link UDF_TIMEOUT_MS} timeout.
 *
 * THIS IS NOT A SECURITY SANDBOX. `node:vm` does not isolate untrusted code (a crafted function can
 * exhaust memory, and vm escapes have existed); whoever may create UDFs can affect the store's
 * process. That is why creating UDFs needs the `manage` action in the gateway, and operators can
 * turn UDFs off (`upstream.udfs: false`, `cosmosgate devstore --no-udfs`).
 */
export class UdfRunner {
  private readonly context: vm.Context;
  private readonly sandbox: Record<string, unknown>;
  private readonly names = new Set<string>();
  private readonly call: vm.Script;

  /** @param udfs each UDF's id and body (`function (a, b) { ... }`) */
  constructor(udfs: Iterable<{ id: string; body: string }>) {
    this.sandbox = Object.create(null) as Record<string, unknown>;
    this.context = vm.createContext(this.sandbox, {
      name: "cosmosgate-udf",
      codeGeneration: { strings: false, wasm: false },
    });
    // Defined inside the context: the table of functions and the one entry point, both context objects.
    new vm.Script(
      `"use strict";
       var __udfs = Object.create(null);
       var __call = function (name, args) {
         var r = __udfs[name].apply(undefined, JSON.parse(args));
         return r === undefined ? undefined : JSON.stringify(r);
       };`,
    ).runInContext(this.context, { timeout: UDF_TIMEOUT_MS });
    this.call = new vm.Script("__call(__name, __args)", { filename: "udf-call" });
    for (const u of udfs) this.define(u.id, u.body);
  }

  private define(id: string, body: string): void {
    // The name goes in as data (a property of the context), never as code. The body is compiled
    // here (code generation from strings is off inside the context) and assigned there.
    this.sandbox.__name = id;
    try {
      const script = new vm.Script(`__udfs[__name] = (\n${body}\n);`, { filename: `udf-${id}` });
      script.runInContext(this.context, { timeout: UDF_TIMEOUT_MS });
      this.names.add(id);
    } catch {
      // A body that does not compile: calls to it fail as calls to an unknown function.
    } finally {
      delete this.sandbox.__name;
    }
  }

  /** The function the query engine calls for `udf.<name>(...)`, or undefined when there is no such UDF. */
  resolve(name: string): ((args: Json[]) => Json | undefined) | undefined {
    if (!this.names.has(name)) return undefined;
    return (args) => this.invoke(name, args);
  }

  private invoke(name: string, args: Json[]): Json | undefined {
    this.sandbox.__name = name;
    this.sandbox.__args = JSON.stringify(args);
    let out: unknown;
    try {
      out = this.call.runInContext(this.context, { timeout: UDF_TIMEOUT_MS });
    } catch (err) {
      const timedOut = (err as { code?: string }).code === "ERR_SCRIPT_EXECUTION_TIMEOUT";
      throw new QueryError(
        "ERR_QUERY_UDF",
        timedOut
          ? `The user-defined function '${name}' ran longer than ${UDF_TIMEOUT_MS} ms and was stopped.`
          : `The user-defined function '${name}' threw an error: ${describe(err)}`,
      );
    } finally {
      delete this.sandbox.__name;
      delete this.sandbox.__args;
    }
    if (out === undefined) return undefined;
    if (typeof out !== "string") {
      throw new QueryError(
        "ERR_QUERY_UDF",
        `The user-defined function '${name}' returned a value that is not JSON.`,
      );
    }
    return JSON.parse(out) as Json;
  }
}

function describe(err: unknown): string {
  // Errors from the context are context objects; read only their message text.
  try {
    const m = (err as { message?: unknown })?.message;
    return typeof m === "string" ? m.slice(0, 200) : String(err).slice(0, 200);
  } catch {
    return "unknown error";
  }
}
