import type { Action } from "../cosmos/types.js";
import { compilePolicy } from "./compilePolicy.js";
import { evaluate } from "./evaluate.js";
import { parsePolicy } from "./parsePolicy.js";
import type { PolicySubject } from "./types.js";

const POLICY = `roles:
  orders-reader:
    - allow: [metadata, read, query, changeFeed]
      on: /dbs/shop/colls/orders
  shop-writer:
    - allow: [metadata, read, query, changeFeed, create, upsert, replace, patch, delete]
      on: /dbs/shop/colls/*
  audit:
    - allow: [read, query]
      on: [/dbs/*/colls/audit, /dbs/crm/colls/log]
members:
  orders-reader: ["group:analysts"]
  shop-writer: ["sub:alice", "group:shop-team"]
  audit: ["group:auditors"]
  Cosmos DB Built-in Data Reader: ["group:readers"]
`;

/**
 * Micro-benchmark of {@link evaluate} on a realistic policy and a principal holding three roles (the
 * gateway's hot path: cached subject, pre-split segments). `nsPerOp` is a mix of allowed requests
 * (item read, query, metadata discovery of the account, container metadata, item write);
 * `denyNsPerOp` is a denied write (which builds its reason string). Called from bench/.
 *
 * @example
 * ```ts
 * const { nsPerOp } = benchEvaluate(2_000_000);
 * console.log(`policy.evaluate ${nsPerOp.toFixed(1)} ns/op`);
 * ```
 */
export function benchEvaluate(iterations: number): { nsPerOp: number; denyNsPerOp: number } {
  const policy = compilePolicy(parsePolicy(POLICY, "bench-policy.yaml"));
  const subject: PolicySubject = { sub: "alice", groups: ["analysts", "auditors", "everyone"] };
  // Parallel arrays and a wrapping index: no destructuring or modulo in the timed loop.
  const actions: Action[] = ["read", "query", "metadata", "metadata", "upsert", "read"];
  // Split and decoded at run time, as the classifier does (not interned literals, which compare faster).
  const split = (path: string): readonly string[] =>
    path === "/" ? [] : path.slice(1).split("/").map(decodeURIComponent);
  const resources = [
    "/dbs/shop/colls/orders/docs/a1",
    "/dbs/shop/colls/orders",
    "/",
    "/dbs/shop/colls/orders",
    "/dbs/shop/colls/carts/docs/c7",
    "/dbs/crm/colls/audit/docs/x",
  ].map(split);
  const denied = split("/dbs/crm/colls/audit/docs/x");

  const run = (n: number, mix: boolean): number => {
    let allowed = 0;
    let j = 0;
    const start = process.hrtime.bigint();
    if (mix) {
      for (let i = 0; i < n; i++) {
        if (evaluate(policy, subject, actions[j], resources[j]).effect === "allow") allowed++;
        if (++j === actions.length) j = 0;
      }
    } else {
      for (let i = 0; i < n; i++) {
        if (evaluate(policy, subject, "delete", denied).effect === "allow") allowed++;
      }
    }
    const ns = Number(process.hrtime.bigint() - start) / n;
    if (allowed !== (mix ? n : 0)) throw new Error("bench policy decided a case the wrong way");
    return ns;
  };
  run(Math.min(iterations, 100_000), true); // warm up
  run(Math.min(iterations, 100_000), false);
  const nsPerOp = run(iterations, true);
  const denyNsPerOp = run(Math.max(1, Math.floor(iterations / 10)), false);
  return { nsPerOp, denyNsPerOp };
}
