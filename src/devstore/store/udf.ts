import vm from "node:vm";
import { type Json, QueryError } from "../query/index.js";

/** Longest one UDF call may run, in ms. */
export const UDF_TIMEOUT_MS = 50;

/**
 * Runs a container's user-defined functions (JavaScript, as Cosmos DB stores them) for queries.
 *
 * Each container's UDFs share one `node:vm` context created from `Object.create(null)`
 * (WebAssembly off; `eval` works only inside the context, to compile the bodies there). Arguments go in as JSON text, parsed inside
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

  /** @param udfs each UDF's id and body (`function (a, b) { ... }`) */
  constructor(udfs: Iterable<{ id: string; body: string }>) {
    this.sandbox = Object.create(null) as Record<string, unknown>;
    // Code generation from strings is on INSIDE the context only: a UDF body is compiled there by
    // `__define`, within its try/catch. Nothing thrown by UDF code may leave the context: when a
    // script throws, Node reads the thrown value's `stack`, outside any time limit, so an object
    // with a looping getter (or a Proxy) would hang the process. The entry points therefore catch
    // everything and return strings only, and they are read-only so UDF code cannot replace them.
    this.context = vm.createContext(this.sandbox, {
      name: "cosmosgate-udf",
      codeGeneration: { strings: true, wasm: false },
    });
    SETUP.runInContext(this.context, { timeout: UDF_TIMEOUT_MS });
    for (const u of udfs) this.define(u.id, u.body);
  }

  private define(id: string, body: string): void {
    this.sandbox.__name = id;
    this.sandbox.__src = body;
    try {
      const r = DEFINE.runInContext(this.context, { timeout: UDF_TIMEOUT_MS });
      if (r === "ok") this.names.add(id); // otherwise: calls fail as calls to an unknown function
    } catch {
      // Only the host's time-out error can land here: a body that runs too long when defined.
    } finally {
      delete this.sandbox.__name;
      delete this.sandbox.__src;
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
      out = CALL.runInContext(this.context, { timeout: UDF_TIMEOUT_MS });
    } catch {
      // __call catches whatever the UDF throws; what reaches here is the host's time-out.
      throw new QueryError(
        "ERR_QUERY_UDF",
        `The user-defined function '${name}' ran longer than ${UDF_TIMEOUT_MS} ms and was stopped.`,
      );
    } finally {
      delete this.sandbox.__name;
      delete this.sandbox.__args;
    }
    if (typeof out !== "string") {
      throw new QueryError(
        "ERR_QUERY_UDF",
        `The user-defined function '${name}' returned a value that is not JSON.`,
      );
    }
    switch (out[0]) {
      case "U":
        return undefined;
      case "R":
        return JSON.parse(out.slice(1)) as Json;
      case "E":
        throw new QueryError(
          "ERR_QUERY_UDF",
          `The user-defined function '${name}' threw an error: ${out.slice(1) || "an error without a message"}`,
        );
      default:
        throw new QueryError(
          "ERR_QUERY_UDF",
          `The user-defined function '${name}' returned a value that is not JSON.`,
        );
    }
  }
}

// Inside the context: the UDF table and the two entry points, as read-only globals, with JSON's
// functions captured before any UDF body runs (a UDF may replace the global JSON afterwards).
const SETUP = new vm.Script(
  `(function (g) {
     "use strict";
     var udfs = Object.create(null);
     var parse = JSON.parse, stringify = JSON.stringify, indirectEval = eval;
     function describe(e) {
       try {
         if (typeof e === "string") return e.slice(0, 200);
         if (typeof e === "object" && e !== null && typeof e.message === "string") return e.message.slice(0, 200);
       } catch (x) {}
       return "";
     }
     function define(name, src) {
       try {
         var f = indirectEval("(\\n" + src + "\\n)");
         if (typeof f !== "function") return "not a function";
         udfs[name] = f;
         return "ok";
       } catch (e) {
         return "error";
       }
     }
     function call(name, args) {
       try {
         var r = udfs[name].apply(undefined, parse(args));
         if (r === undefined) return "U";
         var j = stringify(r);
         return typeof j === "string" ? "R" + j : "X";
       } catch (e) {
         return "E" + describe(e);
       }
     }
     Object.defineProperty(g, "__define", { value: define, writable: false, configurable: false });
     Object.defineProperty(g, "__call", { value: call, writable: false, configurable: false });
   })(this);`,
  { filename: "udf-setup" },
);
const DEFINE = new vm.Script("__define(__name, __src)", { filename: "udf-define" });
const CALL = new vm.Script("__call(__name, __args)", { filename: "udf-call" });
