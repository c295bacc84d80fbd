import type { Action, PartitionKeyValue } from "../cosmos/types.js";
import { TokenError } from "../identity/errors.js";
import type { Principal } from "../identity/types.js";
import { parsePath } from "../policy/parsePath.js";
import { ANCESTOR, COVERS, relateScope, type ScopePattern } from "../policy/relateScope.js";
import { actorOf, type GrantRecord } from "./grants.js";

/**
 * A grant's usage in this process: the counts last read from (or written to) agents.db, plus what
 * this process counted since and has not written yet. The budget check reads `base + unflushed`.
 * One object per grant id, kept across reloads of the view, so counting never allocates.
 */
export interface Usage {
  baseRequests: number;
  baseCharge: number;
  unflushedRequests: number;
  unflushedCharge: number;
}

/** Actions a partition-key restriction does not apply to (they touch no item data). */
const UNPARTITIONED: ReadonlySet<Action> = new Set<Action>(["metadata"]);

/**
 * A grant as the data plane checks it: compiled once per load of the view (scopes to segment
 * patterns, actions and partition keys to sets), with its usage counters. The methods allocate
 * nothing on success.
 *
 * What the budgets guarantee (usage is counted in memory and written to agents.db in batches, every
 * `agents.usageFlush`, default 1 s — see grantStore.ts):
 * - `requests`: a request is counted when it is admitted, before it is forwarded, so one gateway
 *   process never forwards more than the budget. Several processes sharing the state directory see
 *   each other's counts within `usageFlush` (plus their change check): the overshoot is at most
 *   what the other processes admitted in that window.
 * - `requestCharge`: the charge is known only from the answer; a request is admitted while the
 *   counted charge is below the budget, so the overshoot is the charge of the requests in flight
 *   when the budget was reached (at most the agent's concurrency times its largest charge), plus,
 *   across processes, as above.
 * - A crash loses at most the last `usageFlush` of counting: usage is under-counted, never over.
 */
export class LiveGrant {
  readonly id: string;
  readonly person: string;
  readonly agent: string;
  /** "agent:NAME": what the token's `act.sub` must be. */
  readonly actor: string;
  readonly status: GrantRecord["status"];
  readonly expiresAt: number;
  readonly revokedReason: string | null;
  readonly budget: GrantRecord["budget"];
  readonly usage: Usage;
  readonly #actions: ReadonlySet<Action>;
  readonly #actionList: string;
  readonly #patterns: readonly ScopePattern[];
  readonly #scopeList: string;
  readonly #partitionKeys: ReadonlySet<string> | null;
  readonly #name: string;

  constructor(record: GrantRecord, usage: Usage) {
    this.id = record.id;
    this.person = record.person;
    this.agent = record.agent;
    this.actor = actorOf(record.agent);
    this.status = record.status;
    this.expiresAt = record.expiresAt;
    this.revokedReason = record.revokedReason;
    this.budget = record.budget;
    this.usage = usage;
    this.#actions = new Set(record.actions);
    this.#actionList = record.actions.join(", ");
    const patterns: ScopePattern[] = [];
    for (const scope of record.scopes) {
      const parsed = parsePath(scope, "scope");
      // Scopes were checked when the grant was made; an unreadable one covers nothing.
      if (parsed.ok) patterns.push(parsed.segments.map((x) => (x === "*" ? null : x)));
    }
    this.#patterns = patterns;
    this.#scopeList = record.scopes.join(", ");
    this.#partitionKeys = record.partitionKeys === null ? null : new Set(record.partitionKeys);
    this.#name = `agent grant ${record.id} (${this.actor} for ${record.person})`;
  }

  /**
   * Why `action` on the resource `segments` (with the request's partition key) is outside this
   * grant, or undefined when the grant allows it. The grant's scopes cover the resource when one is
   * equal to it or above it (`*` matching one id); `metadata` is also allowed on the ancestors of a
   * granted scope, as the policy allows it (the SDK reads the account, database and container).
   * With a partition-key restriction, every action but `metadata` needs a partition key the grant
   * lists (so a cross-partition query or read feed is outside it).
   */
  outside(
    action: Action,
    segments: readonly string[],
    partitionKey: PartitionKeyValue | undefined,
  ): string | undefined {
    if (!this.#actions.has(action)) {
      return `outside ${this.#name}: [${action}] is not granted (the grant allows ${this.#actionList})`;
    }
    let covered = false;
    for (let i = 0; i < this.#patterns.length; i++) {
      const relation = relateScope(this.#patterns[i], segments);
      if (relation === COVERS || (relation === ANCESTOR && action === "metadata")) {
        covered = true;
        break;
      }
    }
    if (!covered) {
      const resource = segments.length === 0 ? "/" : `/${segments.join("/")}`;
      return `outside ${this.#name}: [${resource}] is not within the grant's scopes (${this.#scopeList})`;
    }
    if (this.#partitionKeys !== null && !UNPARTITIONED.has(action)) {
      if (partitionKey === undefined) {
        return `outside ${this.#name}: the grant is limited to partition keys ${[...this.#partitionKeys].join(", ")}, and this [${action}] request names none (a cross-partition request)`;
      }
      const key = JSON.stringify(partitionKey);
      if (!this.#partitionKeys.has(key)) {
        return `outside ${this.#name}: partition key ${key} is not one the grant allows (${[...this.#partitionKeys].join(", ")})`;
      }
    }
    return undefined;
  }

  /**
   * Counts a request about to be forwarded, or says why it may not be: a budget is spent. The
   * request is counted here, before it is forwarded, so in one process the request budget is never
   * exceeded; the request charge is known only from the answer ({@link charged}).
   */
  admit(): string | undefined {
    const u = this.usage;
    const b = this.budget;
    if (b.requests !== null && u.baseRequests + u.unflushedRequests >= b.requests) {
      return `${this.#name} has spent its budget of ${b.requests} requests; ask ${this.person} for a new grant`;
    }
    if (b.requestCharge !== null && u.baseCharge + u.unflushedCharge >= b.requestCharge) {
      return `${this.#name} has spent its budget of ${b.requestCharge} request units; ask ${this.person} for a new grant`;
    }
    u.unflushedRequests++;
    return undefined;
  }

  /** Adds the request charge (RU) of a forwarded request's answer. */
  charged(requestCharge: number | undefined): void {
    if (requestCharge !== undefined && requestCharge > 0) this.usage.unflushedCharge += requestCharge;
  }
}

/** What the data plane needs of the grant store: the live view, by grant id. */
export interface GrantLookup {
  /** From memory (reloaded when agents.db changed): the grant, or undefined when unknown or long expired. */
  lookup(id: string, now: number): LiveGrant | undefined;
}

/** The data plane's grant checks. */
export interface GrantEnforcer {
  /**
   * The grant an agent's request acts under. Undefined for a principal without one (a person, or
   * an agent vouched for by a federated issuer). A token of the gateway's own that names an agent
   * must name a grant that is active — confirmed, not revoked, not expired — and whose person and
   * agent are the token's.
   *
   * @throws {TokenError} `ERR_TOKEN_REVOKED` (answered 401) saying why.
   */
  authenticate(principal: Principal, now: number): LiveGrant | undefined;
}

/**
 * The grant checks of the data path, over the store's in-memory view: per agent request a Map
 * lookup (after the store's cheap change check), a few comparisons; nothing for other requests.
 *
 * @example
 * ```ts
 * const grants = createGrantEnforcer(grantStore, { issuer: identity.issuerUrl });
 * const grant = grants.authenticate(principal, Date.now()); // throws TokenError for a revoked grant
 * const why = grant?.outside("delete", op.segments, op.partitionKey);
 * ```
 */
export function createGrantEnforcer(store: GrantLookup, opts: { issuer: string }): GrantEnforcer {
  const issuer = opts.issuer;
  return {
    authenticate(principal, now) {
      const id = principal.grant;
      if (id === undefined) {
        // An agent token of the gateway's own always names its grant; one without is not ours to honour.
        if (
          principal.actor !== undefined &&
          principal.issuer === issuer &&
          principal.tokenIssuer === undefined
        ) {
          throw new TokenError(
            "ERR_TOKEN_REVOKED",
            "an agent token of this gateway must name its grant; get a token with the agent's key (cosmosgate agent token)",
          );
        }
        return undefined;
      }
      if (principal.issuer !== issuer || principal.tokenIssuer !== undefined) {
        throw new TokenError("ERR_TOKEN_REVOKED", "only this gateway's own tokens may name an agent grant");
      }
      const grant = store.lookup(id, now);
      if (grant === undefined) {
        throw new TokenError(
          "ERR_TOKEN_REVOKED",
          `agent grant ${id} is unknown or expired; ask the person for a new grant`,
        );
      }
      if (grant.status === "revoked") {
        throw new TokenError(
          "ERR_TOKEN_REVOKED",
          `agent grant ${id} was revoked (${grant.revokedReason ?? "no reason given"}); ask ${grant.person} for a new grant`,
        );
      }
      if (grant.status !== "active") {
        throw new TokenError(
          "ERR_TOKEN_REVOKED",
          `agent grant ${id} was never confirmed by ${grant.person}'s tap`,
        );
      }
      if (now >= grant.expiresAt) {
        throw new TokenError(
          "ERR_TOKEN_REVOKED",
          `agent grant ${id} expired at ${new Date(grant.expiresAt).toISOString()}; ask ${grant.person} for a new grant`,
        );
      }
      if (grant.person !== principal.sub || grant.actor !== principal.actor?.sub) {
        throw new TokenError(
          "ERR_TOKEN_REVOKED",
          `the token's person or agent is not agent grant ${id}'s; get a token with the agent's own grant`,
        );
      }
      return grant;
    },
  };
}

/**
 * The data plane's one call: the grant of `principal`, refusing a token that names a grant when the
 * gateway has no grant store (fail closed).
 *
 * @throws {TokenError} `ERR_TOKEN_REVOKED`.
 */
export function grantOf(
  enforcer: GrantEnforcer | undefined,
  principal: Principal,
  now: number,
): LiveGrant | undefined {
  if (enforcer !== undefined) return enforcer.authenticate(principal, now);
  if (principal.grant !== undefined) {
    throw new TokenError("ERR_TOKEN_REVOKED", "this gateway does not accept agent grants");
  }
  return undefined;
}
