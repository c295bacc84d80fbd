import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { classify } from "../../cosmos/classify.js";
import type { CosmosOperation } from "../../cosmos/types.js";
import { type Json, type JsonObject, prepareQuery } from "../query/index.js";
import { batchResponseBody, itemCharge } from "../store/batch.js";
import { badRequest, DevStoreError, notFound, tooLarge, unsupported } from "../store/errors.js";
import type { PartitionFilter, QuerySpec } from "../store/feeds.js";
import { parsePatchSpec } from "../store/items.js";
import { headerPartitionKey } from "../store/partitionKey.js";
import type { DevStoreDb, ResourceResult, ScriptType } from "../store/store.js";
import type { ContainerInfo, FeedPage, ItemResult } from "../store/types.js";
import { MAX_ITEM_BYTES, parseJson, parseObject } from "../store/validate.js";
import { accountBody } from "./account.js";
import { verifyMasterKey } from "./auth.js";
import { errorReply, type Reply, reply, send } from "./reply.js";

/** Largest request body read (a batch of up to 100 operations); larger answers 413. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** Options of {@link createRequestHandler}. */
export interface HandlerOptions {
  store: DevStoreDb;
  /** Decoded master key; undefined = no authentication. */
  masterKey?: Buffer;
  now: () => number;
  logger?: Logger;
  /** The listener's own origin, used when the Host header is unusable. */
  origin: () => string;
  /** Whether the listener is HTTPS (for the origin derived from the Host header). */
  tls: boolean;
}

type Headers = IncomingMessage["headers"];

/**
 * The Cosmos DB REST wire (as the @azure/cosmos 4.9 SDK uses it) over the embedded store.
 * Requests are classified by `cosmos/classify` (the gateway's own router, so both agree on what a
 * path means and what a signature covers), authenticated with the master key when one is set,
 * and answered with Cosmos-shaped bodies and headers. Bad input is a 4xx, never a crash.
 */
export function createRequestHandler(
  opts: HandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const h = new Handler(opts);
  return (req, res) => h.handle(req, res);
}

class Handler {
  private readonly store: DevStoreDb;
  private readonly key?: Buffer;
  private readonly now: () => number;
  private readonly log?: Logger;
  private readonly opts: HandlerOptions;

  constructor(opts: HandlerOptions) {
    this.opts = opts;
    this.store = opts.store;
    this.key = opts.masterKey;
    this.now = opts.now;
    this.log = opts.logger;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const activityId = randomUUID();
    const date = new Date(this.now()).toUTCString();
    this.process(req).then(
      (r) => this.finish(req, res, r, activityId, date),
      (err: unknown) => {
        const { reply: r, unexpected } = errorReply(err);
        if (unexpected) {
          this.log?.error(
            { err, activityId, method: req.method, path: pathOnly(req.url) },
            "devstore: request failed unexpectedly",
          );
        }
        this.finish(req, res, r, activityId, date);
      },
    );
  }

  private finish(
    req: IncomingMessage,
    res: ServerResponse,
    r: Reply,
    activityId: string,
    date: string,
  ): void {
    if (res.headersSent || res.destroyed) return;
    if (!req.complete) {
      // The body was not read (an early refusal): close the connection rather than read it.
      r.headers.connection = "close";
      res.once("finish", () => req.destroy());
    }
    try {
      send(res, r, activityId, date);
    } catch (err) {
      this.log?.error({ err, activityId }, "devstore: could not write the response");
      res.destroy();
    }
  }

  private async process(req: IncomingMessage): Promise<Reply> {
    const method = req.method ?? "GET";
    const headers = req.headers;
    if (this.key !== undefined && headers.authorization === undefined) {
      // Refuse before looking at the path: an unsigned request learns nothing.
      verifyMasterKey(this.key, ACCOUNT_OP, undefined, undefined, this.now());
    }
    // Cosmos DB paths carry no query string; the SDK leaves "?" unescaped in item ids
    // (encodeURI), so a "?" is part of the path and signs as part of the id.
    let url = req.url ?? "/";
    if (url.includes("?")) url = url.replace(/\?/g, "%3F");
    const op = classify(method, url, headers);
    if (this.key !== undefined) {
      verifyMasterKey(
        this.key,
        op,
        one(headers, "authorization"),
        one(headers, "x-ms-date") ?? one(headers, "date"),
        this.now(),
      );
    }
    const body = await readBody(req, bodyLimit(op));
    const r = this.dispatch(op, headers, body);
    // A write is acknowledged once it is on disk (group commit: one sync for concurrent writes).
    if (isWrite(op)) await this.store.flush();
    return r;
  }

  private dispatch(op: CosmosOperation, headers: Headers, body: Buffer): Reply {
    const seg = op.segments;
    const s = this.store;
    switch (op.name) {
      case "account.read":
        return reply(200, accountBody(this.origin(headers)), 1);

      // ---------------------------------------------------------------- databases
      case "database.list":
        return this.feedReply("Databases", "", s.pageResources(s.listDatabases(), paging(headers), "dbs"));
      case "database.query":
        return this.feedReply(
          "Databases",
          "",
          s.queryResources(s.listDatabases(), querySpec(body), paging(headers), "dbs"),
        );
      case "database.create":
        return resource(s.createDatabase(parseObject(body, "database")), 4.95);
      case "database.upsert": {
        const doc = parseObject(body, "database");
        try {
          return resource(s.createDatabase(doc), 4.95);
        } catch (err) {
          if (err instanceof DevStoreError && err.status === 409)
            return resource(s.readDatabase(String(doc.id)), 1);
          throw err;
        }
      }
      case "database.read":
        return resource(s.readDatabase(seg[1]), 1);
      case "database.delete":
        s.deleteDatabase(seg[1]);
        return reply(204, undefined, 4.95);

      // ---------------------------------------------------------------- containers
      case "container.list":
        return this.feedReply(
          "DocumentCollections",
          s.database(seg[1]).rid,
          s.pageResources(s.listContainers(seg[1]), paging(headers), `colls:${seg[1]}`),
        );
      case "container.query":
        return this.feedReply(
          "DocumentCollections",
          s.database(seg[1]).rid,
          s.queryResources(s.listContainers(seg[1]), querySpec(body), paging(headers), `colls:${seg[1]}`),
        );
      case "container.create":
        return resource(s.createContainer(seg[1], parseObject(body, "container")), 4.95);
      case "container.upsert": {
        const doc = parseObject(body, "container");
        try {
          return resource(s.createContainer(seg[1], doc), 4.95);
        } catch (err) {
          if (err instanceof DevStoreError && err.status === 409) {
            return resource(s.replaceContainer(seg[1], String(doc.id), doc), 4.95);
          }
          throw err;
        }
      }
      case "container.read":
        return resource(s.readContainer(seg[1], seg[3]), 1);
      case "container.replace":
        return resource(
          s.replaceContainer(seg[1], seg[3], parseObject(body, "container"), one(headers, "if-match")),
          4.95,
        );
      case "container.delete":
        s.deleteContainer(seg[1], seg[3]);
        return reply(204, undefined, 4.95);
      case "partitionKey.delete": {
        const c = s.container(seg[1], seg[3]);
        const pk = this.partition(c, headers, true);
        if (pk === undefined)
          throw badRequest("Deleting a partition's items needs the x-ms-documentdb-partitionkey header.");
        s.deletePartition(c, pk);
        return reply(200, undefined, 10, this.docHeaders(c, c.lsn));
      }
      case "pkranges.read":
      case "pkranges.query":
        return this.partitionKeyRanges(s.owner(seg[1], seg[3]));

      // ---------------------------------------------------------------- items
      case "item.read":
        return this.itemRead(op, headers);
      case "item.create":
      case "item.upsert":
        return this.itemCreate(op, headers, body, op.name === "item.upsert");
      case "item.replace":
        return this.itemReplace(op, headers, body);
      case "item.patch":
        return this.itemPatch(op, headers, body);
      case "item.delete":
        return this.itemDelete(op, headers);
      case "item.readFeed": {
        const c = s.owner(seg[1], seg[3]);
        const page = s.readFeed(c, this.partition(c, headers, true), paging(headers));
        return this.feedReply("Documents", c.rid, page, this.docHeaders(c, page.lsn));
      }
      case "item.query": {
        const c = s.owner(seg[1], seg[3]);
        this.checkRange(headers);
        const page = s.query(c, querySpec(body), this.partition(c, headers, true), paging(headers));
        const r = this.feedReply("Documents", c.rid, page, this.docHeaders(c, page.lsn));
        r.charge = 2.3 + page.scanned * 0.02 + page.items.length * 0.1;
        return r;
      }
      case "item.queryPlan":
        return this.queryPlan(s.owner(seg[1], seg[3]), body);
      case "item.changeFeed":
        return this.changeFeed(s.owner(seg[1], seg[3]), headers);
      case "item.batch":
      case "item.bulk":
        return this.batch(op, headers, body);

      // ---------------------------------------------------------------- scripts
      case "sproc.execute":
        return s.executeStoredProcedure(s.owner(seg[1], seg[3]), seg[5]);
      case "sproc.list":
      case "udf.list":
      case "trigger.list":
      case "sproc.query":
      case "udf.query":
      case "trigger.query":
      case "sproc.create":
      case "udf.create":
      case "trigger.create":
      case "sproc.upsert":
      case "udf.upsert":
      case "trigger.upsert":
      case "sproc.read":
      case "udf.read":
      case "trigger.read":
      case "sproc.replace":
      case "udf.replace":
      case "trigger.replace":
      case "sproc.delete":
      case "udf.delete":
      case "trigger.delete":
        return this.script(op, headers, body);

      // ---------------------------------------------------------------- the rest
      case "offer.list":
        return this.feedReply("Offers", "", s.pageResources(s.listOffers(), paging(headers), "offers"));
      case "offer.query":
        return this.feedReply(
          "Offers",
          "",
          s.queryResources(s.listOffers(), querySpec(body), paging(headers), "offers"),
        );
      case "offer.read":
        return resource(s.readOffer(seg[1]), 1);
      case "offer.replace":
        s.readOffer(seg[1]);
        throw unsupported(
          "The embedded store does not meter or change throughput: every container reports 400 RU/s and is not rate-limited. Scale throughput on Azure Cosmos DB.",
        );
      case "conflict.list":
      case "conflict.query":
        s.owner(seg[1], seg[3]);
        return this.feedReply("Conflicts", s.owner(seg[1], seg[3]).rid, { items: [], scanned: 0, lsn: 0 });
      case "conflict.read":
      case "conflict.delete":
        s.owner(seg[1], seg[3]);
        throw notFound("Resource Not Found: the embedded store has one region and never records conflicts.");
      default:
        if (op.name.startsWith("user.") || op.name.startsWith("permission.")) {
          throw unsupported(
            "Users and permissions (resource tokens) are not supported by the embedded store. Use the gateway's identities and policy, or Azure Cosmos DB.",
          );
        }
        if (op.name.startsWith("clientEncryptionKey.")) {
          throw unsupported(
            "Client encryption keys (Always Encrypted) are not supported by the embedded store.",
          );
        }
        throw unsupported(`The operation ${op.name} is not supported by the embedded store.`);
    }
  }

  // ---------------------------------------------------------------- helpers

  private origin(headers: Headers): string {
    const host = one(headers, "host");
    if (
      host !== undefined &&
      host.length < 256 &&
      /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)
    ) {
      return `${this.opts.tls ? "https" : "http"}://${host}`;
    }
    return this.opts.origin();
  }

  /** The partition key header, checked against the container (prefixes of hierarchical keys where allowed). */
  private partition(c: ContainerInfo, headers: Headers, allowPrefix: boolean): PartitionFilter | undefined {
    const raw = one(headers, "x-ms-documentdb-partitionkey");
    if (raw === undefined) return undefined;
    return headerPartitionKey(raw, c.pk, allowPrefix);
  }

  private requirePartition(c: ContainerInfo, headers: Headers): string {
    const p = this.partition(c, headers, false);
    if (p === undefined) {
      throw badRequest(
        "PartitionKey value must be supplied for this operation: send the x-ms-documentdb-partitionkey header (the SDK does when you pass the partition key).",
      );
    }
    return p.text;
  }

  /** Only partition-key range "0" exists. */
  private checkRange(headers: Headers): void {
    const id = one(headers, "x-ms-documentdb-partitionkeyrangeid");
    if (id === undefined) return;
    const last = id.slice(id.lastIndexOf(",") + 1);
    if (last !== "0") {
      throw badRequest(
        `The partition key range '${id.slice(0, 40)}' does not exist: the embedded store has one range, "0" (read .../pkranges).`,
      );
    }
  }

  private refuseTriggers(headers: Headers): void {
    if (
      headers["x-ms-documentdb-pre-trigger-include"] !== undefined ||
      headers["x-ms-documentdb-post-trigger-include"] !== undefined
    ) {
      throw unsupported(
        "The embedded store does not run server-side JavaScript: triggers are stored but cannot run, so a request that includes a pre- or post-trigger is refused. Run the logic in your application.",
      );
    }
  }

  /** Headers of every item-level answer: session token, owner ids, LSN, the one range. */
  private docHeaders(c: ContainerInfo, lsn: number): Record<string, string> {
    return {
      "x-ms-session-token": `0:-1#${lsn}`,
      "x-ms-content-path": c.rid,
      "x-ms-alt-content-path": c.altPath,
      "x-ms-documentdb-partitionkeyrangeid": "0",
      lsn: String(lsn),
      "x-ms-global-committed-lsn": String(lsn),
    };
  }

  /** An item answer: the stored JSON (none for 204/304, or with `Prefer: return=minimal` on writes). */
  private itemReply(
    c: ContainerInfo,
    r: ItemResult,
    headers: Headers,
    type: "Read" | "Create" | "Delete",
  ): Reply {
    const h = this.docHeaders(c, r.lsn);
    if (r.etag !== undefined) h.etag = r.etag;
    const omit = r.status === 204 || r.status === 304 || (type !== "Read" && isMinimal(headers));
    return reply(r.status, omit ? undefined : r.body, itemCharge(type, r.body), h);
  }

  private itemRead(op: CosmosOperation, headers: Headers): Reply {
    const c = this.store.owner(op.segments[1], op.segments[3]);
    const pk = this.requirePartition(c, headers);
    const r = this.store.readItem(c, op.segments[5], pk, one(headers, "if-none-match"));
    return this.itemReply(c, r, headers, "Read");
  }

  private itemCreate(op: CosmosOperation, headers: Headers, body: Buffer, upsert: boolean): Reply {
    const c = this.store.owner(op.segments[1], op.segments[3]);
    this.refuseTriggers(headers);
    checkItemBody(body);
    const doc = parseObject(body, "item");
    const pk = this.requirePartition(c, headers);
    const r = this.store.createItem(c, pk, doc, upsert, { ifMatch: one(headers, "if-match") });
    return this.itemReply(c, r, headers, "Create");
  }

  private itemReplace(op: CosmosOperation, headers: Headers, body: Buffer): Reply {
    const c = this.store.owner(op.segments[1], op.segments[3]);
    this.refuseTriggers(headers);
    checkItemBody(body);
    const doc = parseObject(body, "item");
    const pk = this.requirePartition(c, headers);
    const r = this.store.replaceItem(c, op.segments[5], pk, doc, { ifMatch: one(headers, "if-match") });
    return this.itemReply(c, r, headers, "Create");
  }

  private itemPatch(op: CosmosOperation, headers: Headers, body: Buffer): Reply {
    const c = this.store.owner(op.segments[1], op.segments[3]);
    this.refuseTriggers(headers);
    const spec = parsePatchSpec(parseJson(body, "patch operations", 3));
    const pk = this.requirePartition(c, headers);
    const r = this.store.patchItem(c, op.segments[5], pk, spec, { ifMatch: one(headers, "if-match") });
    return this.itemReply(c, r, headers, "Create");
  }

  private itemDelete(op: CosmosOperation, headers: Headers): Reply {
    const c = this.store.owner(op.segments[1], op.segments[3]);
    this.refuseTriggers(headers);
    const pk = this.requirePartition(c, headers);
    const r = this.store.deleteItem(c, op.segments[5], pk, { ifMatch: one(headers, "if-match") });
    return this.itemReply(c, r, headers, "Delete");
  }

  private feedReply(key: string, rid: string, page: FeedPage, headers: Record<string, string> = {}): Reply {
    const body = `{"_rid":${JSON.stringify(rid)},"${key}":[${page.items.join(",")}],"_count":${page.items.length}}`;
    headers["x-ms-item-count"] = String(page.items.length);
    if (page.continuation !== undefined) headers["x-ms-continuation"] = page.continuation;
    return reply(200, body, 1 + page.items.length * 0.1, headers);
  }

  private partitionKeyRanges(c: ContainerInfo): Reply {
    const rid = `${c.rid.replace(/=+$/, "")}AgAAAAAAAA==`;
    const range = {
      _rid: rid,
      id: "0",
      _etag: `"${c.rid}-0"`,
      minInclusive: "",
      maxExclusive: "FF",
      ridPrefix: 0,
      _self: `${c.self}pkranges/${rid}/`,
      throughputFraction: 1,
      status: "online",
      parents: [],
      ownedArchivalPKRangeIds: [],
      _ts: (JSON.parse(c.body) as JsonObject)._ts,
      lsn: c.lsn,
    };
    return this.feedReply(
      "PartitionKeyRanges",
      c.rid,
      { items: [JSON.stringify(range)], scanned: 1, lsn: c.lsn },
      {
        etag: `"${c.rid}-0"`,
        "x-ms-content-path": c.rid,
        "x-ms-alt-content-path": c.altPath,
      },
    );
  }

  /**
   * Query plans: the store runs every query completely on its single partition-key range, so the
   * plan asks the SDK for nothing (no ORDER BY merge, aggregates, DISTINCT, TOP or OFFSET on the
   * client) and routes the original query to the one range. The SDK only uses a plan when the
   * direct query fails or `forceQueryPlan` is set; either way it then passes results through.
   */
  private queryPlan(c: ContainerInfo, body: Buffer): Reply {
    const spec = querySpec(body);
    prepareQuery(spec.query, {
      parameters: spec.parameters,
      partitionKeyPaths: c.pk.paths,
      udf: this.store.udfResolver(c),
      now: this.now,
    });
    const plan = {
      partitionedQueryExecutionInfoVersion: 2,
      queryInfo: {
        distinctType: "None",
        top: null,
        offset: null,
        limit: null,
        orderBy: [],
        orderByExpressions: [],
        groupByExpressions: [],
        groupByAliases: [],
        aggregates: [],
        groupByAliasToAggregateType: {},
        rewrittenQuery: "",
        hasSelectValue: /^\s*select\s+(distinct\s+)?(top\s+\S+\s+)?value\s/i.test(spec.query),
        dCountInfo: null,
        hasNonStreamingOrderBy: false,
      },
      queryRanges: [{ min: "", max: "FF", isMinInclusive: true, isMaxInclusive: false }],
    };
    return reply(200, JSON.stringify(plan), 1);
  }

  private changeFeed(c: ContainerInfo, headers: Headers): Reply {
    const aim = (one(headers, "a-im") ?? "").toLowerCase();
    if (aim !== "incremental feed") {
      throw unsupported(
        "The embedded store serves the latest-version change feed (A-IM: Incremental Feed) only; the all-versions-and-deletes feed is not supported.",
      );
    }
    // The SDK reads a prefix of a hierarchical key as an effective-partition-key range.
    const startEpk = one(headers, "x-ms-start-epk") ?? "";
    const endEpk = one(headers, "x-ms-end-epk") ?? "FF";
    const partition =
      startEpk !== "" || endEpk !== "FF"
        ? this.store.partitionsInEpkRange(c, startEpk, endEpk)
        : this.partition(c, headers, true);
    let since: number | undefined;
    const ims = one(headers, "if-modified-since");
    if (ims !== undefined) {
      since = Date.parse(ims);
      if (Number.isNaN(since))
        throw badRequest("The If-Modified-Since header is not a valid date (RFC 7231).");
    }
    const page = this.store.changeFeed(
      c,
      partition,
      { ifNoneMatch: one(headers, "if-none-match"), since },
      maxItemCount(headers),
    );
    const h = this.docHeaders(c, page.lsn);
    h.etag = page.etag;
    if (page.items.length === 0) {
      h["x-ms-item-count"] = "0";
      return reply(304, undefined, 1, h);
    }
    return this.feedReply(
      "Documents",
      c.rid,
      { items: page.items, scanned: page.items.length, lsn: page.lsn },
      h,
    );
  }

  private batch(op: CosmosOperation, headers: Headers, body: Buffer): Reply {
    const c = this.store.owner(op.segments[1], op.segments[3]);
    const atomic = op.atomic === true;
    if (!atomic) this.checkRange(headers);
    const outcome = this.store.batch(c, parseJson(body, "batch operations", 3), {
      atomic,
      partitionKey: atomic ? this.partition(c, headers, false)?.text : undefined,
      continueOnError:
        (one(headers, "x-ms-cosmos-batch-continue-on-error") ?? "true").toLowerCase() !== "false",
    });
    let charge = 0;
    for (const r of outcome.results) charge += r.requestCharge;
    return reply(
      outcome.status,
      batchResponseBody(outcome.results, isMinimal(headers)),
      charge,
      this.docHeaders(c, outcome.lsn),
    );
  }

  private script(op: CosmosOperation, headers: Headers, body: Buffer): Reply {
    const seg = op.segments;
    const s = this.store;
    const c = s.owner(seg[1], seg[3]);
    const type = seg[4] as ScriptType;
    const key =
      type === "sprocs" ? "StoredProcedures" : type === "udfs" ? "UserDefinedFunctions" : "Triggers";
    const verb = op.name.slice(op.name.indexOf(".") + 1);
    switch (verb) {
      case "list":
        return this.feedReply(
          key,
          c.rid,
          s.pageResources(s.listScripts(c, type), paging(headers), `${type}:${c.rid}`),
        );
      case "query":
        return this.feedReply(
          key,
          c.rid,
          s.queryResources(s.listScripts(c, type), querySpec(body), paging(headers), `${type}:${c.rid}`),
        );
      case "create":
      case "upsert":
        return resource(s.createScript(c, type, parseObject(body, "script"), verb === "upsert"), 4.95);
      case "read":
        return resource(s.readScript(c, type, seg[5]), 1);
      case "replace":
        return resource(
          s.replaceScript(c, type, seg[5], parseObject(body, "script"), one(headers, "if-match")),
          4.95,
        );
      default:
        s.deleteScript(c, type, seg[5]);
        return reply(204, undefined, 4.95);
    }
  }
}

/** A stand-in operation to produce the "missing authorization" refusal before classifying. */
const ACCOUNT_OP: CosmosOperation = {
  method: "GET",
  name: "account.read",
  resourceType: "",
  segments: [],
  resource: "/",
  signing: { resourceType: "", resourceLink: "" },
  actions: [],
};

/** Requests that may change stored data (everything but reads, feeds and queries). */
function isWrite(op: CosmosOperation): boolean {
  if (op.method === "GET") return false;
  return !(op.name.endsWith(".query") || op.name === "item.queryPlan");
}

function resource(r: ResourceResult, charge: number): Reply {
  return reply(r.status, r.body, charge, { etag: r.etag });
}

function one(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) {
    if (v.length === 1) return v[0];
    throw badRequest(`The ${name} header was sent more than once; send it once.`);
  }
  return v;
}

function isMinimal(headers: Headers): boolean {
  const p = one(headers, "prefer");
  return p?.toLowerCase().includes("return=minimal") === true;
}

function maxItemCount(headers: Headers): number | undefined {
  const v = one(headers, "x-ms-max-item-count");
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1) {
    throw badRequest(
      `The x-ms-max-item-count header must be -1 or a positive integer; got '${v.slice(0, 20)}'.`,
    );
  }
  return n;
}

function paging(headers: Headers): { maxItemCount?: number; continuation?: string } {
  const continuation = one(headers, "x-ms-continuation");
  return {
    maxItemCount: maxItemCount(headers),
    continuation: continuation === "" ? undefined : continuation,
  };
}

/** Reads `{query, parameters}` (or a bare query string) from a query request body. */
function querySpec(body: Buffer): QuerySpec {
  const v = parseJson(body, "query");
  const q: Json | undefined =
    typeof v === "string"
      ? v
      : v !== null && typeof v === "object" && !Array.isArray(v)
        ? v.query
        : undefined;
  if (typeof q !== "string" || q.trim() === "") {
    throw badRequest('A query request body must be {"query": "SELECT ...", "parameters": [...]}.');
  }
  const params = v !== null && typeof v === "object" && !Array.isArray(v) ? v.parameters : undefined;
  if (params === undefined || params === null) return { query: q };
  if (!Array.isArray(params))
    throw badRequest('The query\'s "parameters" must be an array of {"name": "@x", "value": ...}.');
  const parameters: { name: string; value: Json }[] = [];
  for (const p of params) {
    if (p === null || typeof p !== "object" || Array.isArray(p) || typeof p.name !== "string") {
      throw badRequest('Each query parameter must be {"name": "@x", "value": ...}.');
    }
    parameters.push({ name: p.name, value: p.value as Json });
  }
  return { query: q, parameters };
}

function checkItemBody(body: Buffer): void {
  if (body.length > MAX_ITEM_BYTES) {
    throw tooLarge(
      `Request size is too large: the item is ${body.length} bytes; Cosmos DB's limit is ${MAX_ITEM_BYTES} bytes (2 MB) per item.`,
    );
  }
}

function bodyLimit(op: CosmosOperation): number {
  return op.method === "GET" || op.method === "DELETE" || op.method === "HEAD"
    ? 64 * 1024
    : MAX_REQUEST_BYTES;
}

/** Reads the request body, refusing (413) more than `limit` bytes without buffering them. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(
      tooLarge(`Request size is too large: ${declared} bytes; the limit is ${limit} bytes.`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(tooLarge(`Request size is too large: more than ${limit} bytes.`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!failed) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.on("error", (err) => {
      if (!failed) {
        failed = true;
        reject(badRequest(`The request body could not be read: ${err.message}`));
      }
    });
  });
}

function pathOnly(url: string | undefined): string {
  if (url === undefined) return "";
  const q = url.indexOf("?");
  return (q === -1 ? url : url.slice(0, q)).slice(0, 200);
}
