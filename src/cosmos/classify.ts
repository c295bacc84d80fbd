import { CosmosWireError } from "./errors.js";
import { parsePartitionKey } from "./parsePartitionKey.js";
import type { Action, CosmosOperation, PartitionKeyValue } from "./types.js";

/** Request headers as Node gives them: lower-case keys. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/*
 * The grammar (COSMOS-WIRE.md), with the @azure/cosmos 4.9 requests that use it:
 *
 *   /                                            GET account read (endpoint discovery)
 *   /dbs[/{db}]                                  databases
 *   /dbs/{db}/colls[/{coll}]                     containers
 *   /dbs/{db}/colls/{coll}/docs[/{id}]           items (+ query, query plan, change feed, batch, bulk)
 *   /dbs/{db}/colls/{coll}/sprocs|udfs|triggers[/{id}]
 *   /dbs/{db}/colls/{coll}/conflicts[/{id}]
 *   /dbs/{db}/colls/{coll}/pkranges              (feed only)
 *   /dbs/{db}/colls/{coll}/operations/partitionkeydelete   (POST only)
 *   /dbs/{db}/users[/{u}[/permissions[/{p}]]]
 *   /dbs/{db}/clientencryptionkeys[/{id}]
 *   /offers[/{id}]
 *
 * Type segments must match exactly (no percent-encoding, lower case as the SDK sends them); ids are
 * percent-decoded one segment at a time. Hand-written rather than a router library: the grammar is
 * tiny and this is the per-request hot path (no regexes, no closures, one pass over the path).
 */

/** Deepest valid path: /dbs/{db}/colls/{coll}/docs/{id} and /dbs/{db}/users/{u}/permissions/{p}. */
const MAX_SEGMENTS = 6;

// Action lists are shared and frozen: never mutate `op.actions`.
const act = (a: Action[]): Action[] => Object.freeze(a) as Action[];
const METADATA = act(["metadata"]);
const MANAGE = act(["manage"]);
const READ = act(["read"]);
const CREATE = act(["create"]);
const UPSERT = act(["upsert"]);
const REPLACE = act(["replace"]);
const PATCH = act(["patch"]);
const DELETE = act(["delete"]);
const QUERY = act(["query"]);
const CHANGE_FEED = act(["changeFeed"]);
const EXECUTE = act(["execute"]);
const CONFLICTS = act(["conflicts"]);
/**
 * Batch and bulk before their body is read: every item action, so that a caller that forgets
 * classifyBatchBody fails closed. classifyBatchBody replaces it with the operations' union.
 */
const BATCH_PENDING = act(["read", "create", "upsert", "replace", "patch", "delete"]);

/** What each resource type allows and needs. */
interface TypeRule {
  /** Name prefix for audit, e.g. "container". */
  list: string;
  query: string;
  create: string;
  upsert: string;
  read: string;
  replace: string;
  delete: string;
  /** Actions of reads (GET, list, query). */
  reads: Action[];
  /** Actions of writes (create, upsert, replace, delete). */
  writes: Action[];
  /** POST on the feed without a query creates (and with x-ms-documentdb-is-upsert, upserts). */
  canCreate: boolean;
  canReplace: boolean;
  canDelete: boolean;
  /** Methods allowed on the feed and on one resource, for messages. */
  feedMethods: string;
  entityMethods: string;
}

function rule(
  noun: string,
  reads: Action[],
  writes: Action[],
  canCreate: boolean,
  canReplace: boolean,
  canDelete: boolean,
): TypeRule {
  return {
    list: `${noun}.list`,
    query: `${noun}.query`,
    create: `${noun}.create`,
    upsert: `${noun}.upsert`,
    read: `${noun}.read`,
    replace: `${noun}.replace`,
    delete: `${noun}.delete`,
    reads,
    writes,
    canCreate,
    canReplace,
    canDelete,
    feedMethods: canCreate ? "GET (list) and POST (create, or query)" : "GET (list) and POST (query)",
    entityMethods: `GET${canReplace ? ", PUT" : ""}${canDelete ? ", DELETE" : ""}`,
  };
}

// Users, permissions and offers are manage-level even to read: they hold resource tokens and throughput.
// (Container.readOffer()/Database.readOffer() query /offers, so they need manage too.)
const DBS = rule("database", METADATA, MANAGE, true, false, true);
const COLLS = rule("container", METADATA, MANAGE, true, true, true);
const SPROCS = rule("sproc", METADATA, MANAGE, true, true, true);
const UDFS = rule("udf", METADATA, MANAGE, true, true, true);
const TRIGGERS = rule("trigger", METADATA, MANAGE, true, true, true);
const CONFLICTS_RULE = rule("conflict", CONFLICTS, CONFLICTS, false, false, true);
const PKRANGES = rule("pkranges", METADATA, METADATA, false, false, false);
const USERS = rule("user", MANAGE, MANAGE, true, true, true);
const PERMISSIONS = rule("permission", MANAGE, MANAGE, true, true, true);
const OFFERS = rule("offer", MANAGE, MANAGE, false, true, false);
// Client encryption keys are read by every reader of an encrypted container; only writes are manage.
const CEKS = rule("clientEncryptionKey", METADATA, MANAGE, true, true, false);
// Items are special-cased below; the rule holds their names.
const DOCS = rule("item", READ, READ, true, true, true);

/**
 * Classifies one Cosmos DB data-plane request: what it is (`name`), what it touches (`segments`,
 * `resource`), which actions it needs, its partition key, and what a master-key signature must
 * cover. Pure and allocation-light: call it on every request. Batch and bulk requests
 * (`atomic` defined) need {@link classifyBatchBody} on their body before authorization.
 *
 * Signing uses the decoded ids: the SDK builds the URL with `encodeURI(link)` but signs the
 * unencoded link (`getIdFromLink` only trims slashes), and the service verifies against that. For
 * offers the link is the offer id lower-cased, as the SDK signs it (`setAuthorizationTokenHeaderUsingMasterKey`).
 *
 * @param method upper-case HTTP method
 * @param rawPath the request target as received (`req.url`); a "?" anywhere is refused (400)
 * @param headers the request headers, lower-case keys
 * @throws CosmosWireError (400) for a path outside the grammar, a bad encoding, an unknown type or
 *   method, contradictory or malformed control headers, or a malformed partition key
 * @example
 * ```ts
 * const op = classify("GET", "/dbs/shop/colls/orders/docs/a1", { "x-ms-documentdb-partitionkey": '["eu"]' });
 * // op.name "item.read", op.actions ["read"], op.resource "/dbs/shop/colls/orders/docs/a1",
 * // op.signing { resourceType: "docs", resourceLink: "dbs/shop/colls/orders/docs/a1" }, op.partitionKey ["eu"]
 * ```
 */
export function classify(method: string, rawPath: string, headers: RequestHeaders): CosmosOperation {
  // A "?" is refused rather than read as the start of a query string: the SDK sends no query
  // strings, but it leaves "?" inside ids unencoded (encodeURI), so "/docs/a?b" means the item
  // "a?b" to some servers and the item "a" to others. Authorizing one and forwarding the other
  // would be a confused deputy; one clear 400 is not.
  if (rawPath.includes("?")) {
    throw badPath(
      'The request path contains "?": the gateway accepts no query string, and an id containing "?" cannot be addressed through it (the SDK does not percent-encode "?"). Rename the resource without "?".',
    );
  }
  const end = rawPath.length;
  if (end === 0 || rawPath.charCodeAt(0) !== 47 /* / */) {
    throw badPath(
      'The request path must start with "/" (origin-form, as the Cosmos DB SDK sends it); absolute URLs and "*" are not accepted.',
    );
  }
  // One pass: only printable ASCII outside "\" and "#", and a bounded number of segments.
  let slashes = 0;
  for (let i = 0; i < end; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 47) {
      if (++slashes > MAX_SEGMENTS) {
        throw badPath(
          `The request path has more than ${MAX_SEGMENTS} segments, more than any Cosmos DB resource path (e.g. /dbs/{db}/colls/{coll}/docs/{id}).`,
        );
      }
    } else if (c <= 0x20 || c >= 0x7f || c === 0x5c /* \ */ || c === 0x23 /* # */) {
      throw badPath(
        'The request path contains a character that must be percent-encoded (a control character, a space, a non-ASCII character, "\\" or "#"). Percent-encode ids as the Cosmos DB SDK does.',
      );
    }
  }
  const partitionKey = readPartitionKey(headers);
  if (end === 1) return accountRead(method, partitionKey);

  const raw = rawPath.split("/");
  const n = raw.length - 1; // raw[0] is the empty text before the leading "/"
  const segments: string[] = new Array(n);
  let parent = "";
  let link = "";
  let i = 1;
  for (; i <= n; i += 2) {
    const type = raw[i];
    checkChild(parent, type, i);
    segments[i - 1] = type;
    if (type === "operations") return partitionKeyDelete(method, raw, i, n, segments, link, partitionKey);
    if (i === n) break; // the path ends in a type: a feed
    if (type === "pkranges") {
      throw badPath(
        "Partition key ranges are read as a feed (GET /dbs/{db}/colls/{coll}/pkranges); there is nothing below it.",
      );
    }
    const id = decodeId(raw[i + 1], i + 1);
    segments[i] = id;
    link = link === "" ? type + "/" + id : link + "/" + type + "/" + id;
    parent = type;
  }
  if (i === n) return feed(method, segments[n - 1], segments, link, headers, partitionKey);
  return entity(method, parent, segments, link, partitionKey);
}

/** Throws unless `type` may follow `parent` ("" for the root). */
function checkChild(parent: string, type: string, pos: number): void {
  if (type === "") {
    throw badPath(
      'The request path has an empty segment ("//" or a trailing "/"); remove the extra slash. Cosmos DB paths look like /dbs/{db}/colls/{coll}/docs/{id}.',
    );
  }
  let ok: boolean;
  switch (parent) {
    case "":
      ok = type === "dbs" || type === "offers";
      break;
    case "dbs":
      ok = type === "colls" || type === "users" || type === "clientencryptionkeys";
      break;
    case "colls":
      ok =
        type === "docs" ||
        type === "sprocs" ||
        type === "udfs" ||
        type === "triggers" ||
        type === "conflicts" ||
        type === "pkranges" ||
        type === "operations";
      break;
    case "users":
      ok = type === "permissions";
      break;
    default:
      ok = false;
  }
  if (ok) return;
  if (type === "." || type === "..") {
    throw badPath(
      `Path segment ${pos} is "." or "..", a relative-path step, not a Cosmos DB resource type. Send the resource's full path.`,
    );
  }
  if (type.indexOf("%") !== -1) {
    throw badPath(
      `Path segment ${pos} is percent-encoded where a resource type belongs; type segments (dbs, colls, docs, ...) are sent as plain lower-case text.`,
    );
  }
  if (!isKnownType(type)) {
    throw new CosmosWireError(
      "ERR_UNKNOWN_RESOURCE",
      `Path segment ${pos} ("${clip(type)}") is not a Cosmos DB resource type the gateway supports (dbs, colls, docs, sprocs, udfs, triggers, conflicts, pkranges, users, permissions, clientencryptionkeys, offers; lower case, not percent-encoded).`,
    );
  }
  throw badPath(
    `"${type}" cannot come ${parent === "" ? "first in a path" : `after a ${parent} id`}: the path is not a Cosmos DB resource path. Valid paths look like /dbs/{db}/colls/{coll}/docs/{id}.`,
  );
}

function isKnownType(type: string): boolean {
  switch (type) {
    case "dbs":
    case "colls":
    case "docs":
    case "sprocs":
    case "udfs":
    case "triggers":
    case "conflicts":
    case "pkranges":
    case "users":
    case "permissions":
    case "clientencryptionkeys":
    case "offers":
    case "operations":
      return true;
    default:
      return false;
  }
}

function decodeId(raw: string, pos: number): string {
  if (raw === "") {
    throw badPath(
      'The request path has an empty segment ("//" or a trailing "/"); remove the extra slash. Cosmos DB ids cannot be empty.',
    );
  }
  let id = raw;
  if (raw.indexOf("%") !== -1) {
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw badPath(
        `Path segment ${pos} is not valid percent-encoding (a "%" not followed by two hex digits, or bytes that are not UTF-8). Percent-encode ids as UTF-8, as encodeURIComponent does.`,
      );
    }
    for (let k = 0; k < id.length; k++) {
      const c = id.charCodeAt(k);
      if (c === 0x2f || c === 0x5c) {
        throw badPath(
          `Path segment ${pos} decodes to text containing "/" or "\\" (%2F or %5C); Cosmos DB ids cannot contain slashes. Use an id without them.`,
        );
      }
      if (c < 0x20 || c === 0x7f) {
        throw badPath(
          `Path segment ${pos} decodes to a control character; Cosmos DB ids cannot contain control characters.`,
        );
      }
    }
  }
  if (id === "." || id === "..") {
    throw badPath(
      `Path segment ${pos} is "." or "..", which is not a Cosmos DB id and would be read as a relative path. Use a real id.`,
    );
  }
  return id;
}

function accountRead(method: string, partitionKey: PartitionKeyValue | undefined): CosmosOperation {
  if (method !== "GET") {
    throw unsupported(`${clip(method)} / is not a Cosmos DB operation; the account is read with GET /.`);
  }
  return make(method, "account.read", "", [], "/", "", "", METADATA, partitionKey, undefined);
}

function partitionKeyDelete(
  method: string,
  raw: string[],
  i: number,
  n: number,
  segments: string[],
  link: string,
  partitionKey: PartitionKeyValue | undefined,
): CosmosOperation {
  if (i + 1 !== n || raw[n] !== "partitionkeydelete") {
    throw badPath(
      "The only container operation is POST /dbs/{db}/colls/{coll}/operations/partitionkeydelete.",
    );
  }
  if (method !== "POST") {
    throw unsupported(
      `${clip(method)} .../operations/partitionkeydelete is not supported; delete a partition's items with POST.`,
    );
  }
  segments[n - 1] = "partitionkeydelete";
  return make(
    method,
    "partitionKey.delete",
    "colls",
    segments,
    "/" + link + "/operations/partitionkeydelete",
    "colls",
    link,
    MANAGE,
    partitionKey,
    undefined,
  );
}

/** A request on a feed: the path ends in a type (list, query, create, change feed, batch, ...). */
function feed(
  method: string,
  type: string,
  segments: string[],
  parentLink: string,
  headers: RequestHeaders,
  partitionKey: PartitionKeyValue | undefined,
): CosmosOperation {
  const r = ruleOf(type);
  const resource = parentLink === "" ? "/" + type : "/" + parentLink + "/" + type;
  if (method === "GET") {
    let name = r.list;
    let actions = r.reads;
    if (type === "docs") {
      if (isChangeFeed(headers["a-im"])) {
        name = "item.changeFeed";
        actions = CHANGE_FEED;
      } else {
        name = "item.readFeed";
      }
    } else if (type === "pkranges") {
      name = "pkranges.read";
    }
    return make(method, name, type, segments, resource, type, parentLink, actions, partitionKey, undefined);
  }
  if (method !== "POST") {
    throw unsupported(
      `${clip(method)} ${resource} is not supported; a ${type} feed accepts ${r.feedMethods}.`,
    );
  }

  const isBatch = bool(headers, "x-ms-cosmos-is-batch-request");
  const isPlan = bool(headers, "x-ms-cosmos-is-query-plan-request");
  const isQueryHeader = bool(headers, "x-ms-documentdb-isquery");
  const queryBody = isQueryContentType(headers["content-type"]);
  const isUpsert = bool(headers, "x-ms-documentdb-is-upsert");

  if (isBatch) {
    if (type !== "docs") {
      throw unsupported(`Batch requests go to .../colls/{coll}/docs, not to a ${type} feed.`);
    }
    if (isPlan || isQueryHeader || queryBody || isUpsert) {
      throw contradictory("x-ms-cosmos-is-batch-request cannot be combined with query or upsert headers");
    }
    const atomic = bool(headers, "x-ms-cosmos-batch-atomic");
    return make(
      method,
      atomic ? "item.batch" : "item.bulk",
      type,
      segments,
      resource,
      type,
      parentLink,
      BATCH_PENDING,
      partitionKey,
      atomic,
    );
  }
  if (isPlan || isQueryHeader || queryBody) {
    if (isUpsert) throw contradictory("a query cannot also be an upsert");
    if (!queryBody) {
      throw unsupported(
        "A query (x-ms-documentdb-isquery or x-ms-cosmos-is-query-plan-request) must be sent with Content-Type: application/query+json, as the Cosmos DB SDK does.",
      );
    }
    let name = r.query;
    let actions = r.reads;
    if (type === "docs") {
      name = isPlan ? "item.queryPlan" : "item.query";
      actions = QUERY;
    } else if (isPlan) {
      throw unsupported("Query-plan requests go to .../colls/{coll}/docs only.");
    }
    return make(method, name, type, segments, resource, type, parentLink, actions, partitionKey, undefined);
  }
  if (!r.canCreate) {
    throw unsupported(
      `POST ${resource} without a query is not supported; a ${type} feed accepts ${r.feedMethods} (send a query with x-ms-documentdb-isquery: true and Content-Type: application/query+json).`,
    );
  }
  let actions = r.writes;
  if (type === "docs") actions = isUpsert ? UPSERT : CREATE;
  return make(
    method,
    isUpsert ? r.upsert : r.create,
    type,
    segments,
    resource,
    type,
    parentLink,
    actions,
    partitionKey,
    undefined,
  );
}

/** A request on one resource: the path ends in an id. */
function entity(
  method: string,
  type: string,
  segments: string[],
  link: string,
  partitionKey: PartitionKeyValue | undefined,
): CosmosOperation {
  const r = ruleOf(type);
  let name: string;
  let actions: Action[];
  switch (method) {
    case "GET":
      name = r.read;
      actions = r.reads;
      break;
    case "PUT":
      if (!r.canReplace) throw notOnEntity(method, type, r);
      name = r.replace;
      actions = type === "docs" ? REPLACE : r.writes;
      break;
    case "DELETE":
      if (!r.canDelete) throw notOnEntity(method, type, r);
      name = r.delete;
      actions = type === "docs" ? DELETE : r.writes;
      break;
    case "PATCH":
      if (type !== "docs") throw notOnEntity(method, type, r);
      name = "item.patch";
      actions = PATCH;
      break;
    case "POST":
      if (type !== "sprocs") throw notOnEntity(method, type, r);
      name = "sproc.execute";
      actions = EXECUTE;
      break;
    default:
      throw notOnEntity(method, type, r);
  }
  // Offers are signed with the id lower-cased, the id alone (the SDK signs `offer.id.toLowerCase()`).
  const signingLink = type === "offers" ? segments[1].toLowerCase() : link;
  return make(method, name, type, segments, "/" + link, type, signingLink, actions, partitionKey, undefined);
}

function ruleOf(type: string): TypeRule {
  switch (type) {
    case "dbs":
      return DBS;
    case "colls":
      return COLLS;
    case "docs":
      return DOCS;
    case "sprocs":
      return SPROCS;
    case "udfs":
      return UDFS;
    case "triggers":
      return TRIGGERS;
    case "conflicts":
      return CONFLICTS_RULE;
    case "pkranges":
      return PKRANGES;
    case "users":
      return USERS;
    case "permissions":
      return PERMISSIONS;
    case "offers":
      return OFFERS;
    default:
      return CEKS; // "clientencryptionkeys": checkChild admits nothing else
  }
}

function make(
  method: string,
  name: string,
  resourceType: string,
  segments: string[],
  resource: string,
  signingType: string,
  signingLink: string,
  actions: Action[],
  partitionKey: PartitionKeyValue | undefined,
  atomic: boolean | undefined,
): CosmosOperation {
  return {
    method,
    name,
    resourceType,
    segments,
    resource,
    signing: { resourceType: signingType, resourceLink: signingLink },
    actions,
    partitionKey,
    atomic,
  };
}

function readPartitionKey(headers: RequestHeaders): PartitionKeyValue | undefined {
  const v = headers["x-ms-documentdb-partitionkey"];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw repeatedHeader("x-ms-documentdb-partitionkey");
  return parsePartitionKey(v);
}

/** A boolean control header: absent is false; "true"/"false" in any case; anything else is refused. */
function bool(headers: RequestHeaders, name: string): boolean {
  const v = headers[name];
  if (v === undefined) return false;
  if (typeof v !== "string") throw repeatedHeader(name);
  if (v === "true" || v === "True") return true;
  if (v === "false" || v === "False") return false;
  if (v.length === 4 && v.toLowerCase() === "true") return true;
  if (v.length === 5 && v.toLowerCase() === "false") return false;
  throw new CosmosWireError(
    "ERR_BAD_HEADER",
    `The ${name} header must be "true" or "false"; it decides what the request does, so the gateway will not guess.`,
  );
}

/** `A-IM` on GET .../docs: "Incremental Feed" (latest version) or "Full-Fidelity Feed" (all versions and deletes). */
function isChangeFeed(v: string | string[] | undefined): boolean {
  if (v === undefined) return false;
  if (typeof v === "string") {
    if (v === "Incremental Feed" || v === "Full-Fidelity Feed") return true;
    const lower = v.toLowerCase();
    if (lower === "incremental feed" || lower === "full-fidelity feed") return true;
  }
  throw new CosmosWireError(
    "ERR_BAD_HEADER",
    'The A-IM header of a change-feed request must be "Incremental Feed" or "Full-Fidelity Feed"; omit it to read the items feed.',
  );
}

const QUERY_MEDIA_TYPE = "application/query+json";

/** Content-Type is application/query+json (any case, parameters allowed). */
function isQueryContentType(v: string | string[] | undefined): boolean {
  if (typeof v !== "string") return false;
  if (v === QUERY_MEDIA_TYPE) return true;
  const len = QUERY_MEDIA_TYPE.length;
  if (v.length < len) return false;
  if (v.length > len) {
    const next = v.charCodeAt(len);
    if (next !== 0x3b /* ; */ && next !== 0x20 && next !== 0x09) return false;
  }
  return v.slice(0, len).toLowerCase() === QUERY_MEDIA_TYPE;
}

function notOnEntity(method: string, type: string, r: TypeRule): CosmosWireError {
  const methods =
    type === "docs"
      ? "GET, PUT, PATCH, DELETE"
      : type === "sprocs"
        ? "GET, PUT, DELETE, POST (execute)"
        : r.entityMethods;
  return unsupported(`${clip(method)} is not supported on one ${type} resource; it accepts ${methods}.`);
}

function contradictory(what: string): CosmosWireError {
  return unsupported(
    `The request's control headers contradict each other: ${what}. Send one operation per request, as the Cosmos DB SDK does.`,
  );
}

function repeatedHeader(name: string): CosmosWireError {
  return new CosmosWireError("ERR_BAD_HEADER", `The ${name} header was sent more than once; send it once.`);
}

function unsupported(message: string): CosmosWireError {
  return new CosmosWireError("ERR_UNSUPPORTED_OPERATION", message);
}

function badPath(message: string): CosmosWireError {
  return new CosmosWireError("ERR_BAD_PATH", message);
}

/** Echo at most a little of client text in messages. */
function clip(s: string): string {
  return s.length > 32 ? s.slice(0, 32) + "…" : s;
}
