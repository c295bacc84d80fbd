// Cosmos DB partial document update (patch): add, set, replace, remove, incr, move on JSON
// pointer paths, with the service's rules and error messages ("Partial document update" docs):
// at most 10 operations; add inserts into arrays ('-' appends); set updates an array element in
// place; replace and remove fail on a missing path; incr creates a missing field and needs numbers;
// move needs an existing `from` and cannot move a node into its own child; no path is created
// recursively; system properties and the partition key cannot be patched.
import { type Json, type JsonObject, setOwn } from "./values.js";

export type PatchOperation = {
  op: "add" | "set" | "replace" | "remove" | "incr" | "move";
  path: string;
  value?: Json;
  from?: string;
};

export type PatchErrorCode = "ERR_PATCH_INVALID" | "ERR_PATCH_PATH_NOT_FOUND" | "ERR_PATCH_TYPE";

export class PatchError extends Error {
  readonly code: PatchErrorCode;
  readonly status = 400 as const;
  constructor(code: PatchErrorCode, message: string) {
    super(message);
    this.name = "PatchError";
    this.code = code;
  }
}

export const MAX_PATCH_OPERATIONS = 10;
const OPS = new Set(["add", "set", "replace", "remove", "incr", "move"]);
const SYSTEM_PROPERTIES = new Set(["id", "_rid", "_self", "_etag", "_ts", "_attachments", "_lsn"]);

type Container = JsonObject | Json[];

function parsePointer(path: unknown, i: number, what: string): string[] {
  if (typeof path !== "string" || !path.startsWith("/") || path === "/") {
    throw new PatchError(
      "ERR_PATCH_INVALID",
      `Invalid patch request: check syntax of patch specification. For Operation(${i}): '${what}' must be a JSON pointer to a property, such as "/price".`,
    );
  }
  return path
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function isPrefix(a: string[], b: string[]): boolean {
  return a.length <= b.length && a.every((t, i) => t === b[i]);
}

function arrayIndex(token: string, i: number, allowDash: boolean): number | "-" {
  if (allowDash && token === "-") return "-";
  if (!/^(0|[1-9]\d*)$/.test(token)) {
    throw new PatchError(
      "ERR_PATCH_INVALID",
      `Invalid patch request: For Operation(${i}): '${token}' is not a valid array index.`,
    );
  }
  return Number(token);
}

function isContainer(v: Json | undefined): v is Container {
  return typeof v === "object" && v !== null;
}

/** Walks to the parent of the last token; undefined when an intermediate node is missing. */
function parentOf(doc: JsonObject, tokens: string[], i: number): Container | undefined {
  let cur: Json = doc;
  for (let t = 0; t < tokens.length - 1; t++) {
    const tok = tokens[t];
    let next: Json | undefined;
    if (Array.isArray(cur)) {
      const idx = arrayIndex(tok, i, false) as number;
      next = idx < cur.length ? cur[idx] : undefined;
    } else if (isContainer(cur)) {
      next = Object.hasOwn(cur, tok) ? cur[tok] : undefined;
    }
    if (!isContainer(next)) return undefined;
    cur = next;
  }
  return cur as Container;
}

function noRecursiveCreate(op: string, path: string, i: number): PatchError {
  const who = op === "add" ? "Add Operation" : "Given Operation";
  return new PatchError(
    "ERR_PATCH_PATH_NOT_FOUND",
    `For Operation(${i}): ${who} can only create a child object of an existing node (array or object) and can't create path recursively, no path found beyond: '${path}'.`,
  );
}

function outOfBounds(idx: number, i: number): PatchError {
  return new PatchError(
    "ERR_PATCH_PATH_NOT_FOUND",
    `For Operation(${i}): Index(${idx}) to operate on is out of array bounds.`,
  );
}

function absent(path: string, verb: "replaced" | "removed", i: number): PatchError {
  return new PatchError(
    "ERR_PATCH_PATH_NOT_FOUND",
    verb === "removed"
      ? `For Operation(${i}): Node(${path}) to be removed is absent. Note: it might also have been removed earlier in the transaction.`
      : `For Operation(${i}): Node(${path}) to be replaced is absent.`,
  );
}

/** Reads the value at tokens, or undefined. */
function getAt(doc: JsonObject, tokens: string[]): Json | undefined {
  let cur: Json = doc;
  for (const tok of tokens) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(tok)) return undefined;
      const idx = Number(tok);
      if (idx >= cur.length) return undefined;
      cur = cur[idx];
    } else if (isContainer(cur)) {
      if (!Object.hasOwn(cur, tok)) return undefined;
      cur = cur[tok];
    } else return undefined;
  }
  return cur;
}

function write(
  doc: JsonObject,
  tokens: string[],
  path: string,
  value: Json,
  mode: "add" | "set" | "replace",
  op: string,
  i: number,
): void {
  const parent = parentOf(doc, tokens, i);
  const last = tokens[tokens.length - 1];
  if (!parent) {
    if (mode === "replace") throw absent(path, "replaced", i);
    throw noRecursiveCreate(op, path, i);
  }
  if (Array.isArray(parent)) {
    const idx = arrayIndex(last, i, mode !== "replace");
    if (idx === "-") {
      parent.push(value);
      return;
    }
    if (mode === "add") {
      if (idx > parent.length) throw outOfBounds(idx, i);
      parent.splice(idx, 0, value);
    } else if (mode === "set") {
      if (idx > parent.length) throw outOfBounds(idx, i);
      parent[idx] = value;
    } else {
      if (idx >= parent.length) throw outOfBounds(idx, i);
      parent[idx] = value;
    }
    return;
  }
  if (mode === "replace" && !Object.hasOwn(parent, last)) throw absent(path, "replaced", i);
  setOwn(parent, last, value);
}

function removeAt(doc: JsonObject, tokens: string[], path: string, i: number): Json {
  const parent = parentOf(doc, tokens, i);
  const last = tokens[tokens.length - 1];
  if (!parent) throw absent(path, "removed", i);
  if (Array.isArray(parent)) {
    const idx = arrayIndex(last, i, false) as number;
    if (idx >= parent.length) throw outOfBounds(idx, i);
    return parent.splice(idx, 1)[0];
  }
  if (!Object.hasOwn(parent, last)) throw absent(path, "removed", i);
  const v = parent[last];
  delete parent[last];
  return v;
}

/**
 * Applies Cosmos DB patch operations and returns a new document (the input is not modified).
 * Throws PatchError (status 400) with the service's message when an operation is invalid.
 */
export function applyPatch(
  doc: JsonObject,
  ops: PatchOperation[],
  opts?: { partitionKeyPaths?: string[] },
): JsonObject {
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new PatchError(
      "ERR_PATCH_INVALID",
      "Invalid patch request: check syntax of patch specification. Send a list of 1 to 10 operations.",
    );
  }
  if (ops.length > MAX_PATCH_OPERATIONS) {
    throw new PatchError(
      "ERR_PATCH_INVALID",
      `The number of patch operations can't exceed ${MAX_PATCH_OPERATIONS}.`,
    );
  }
  const pkTokens = (opts?.partitionKeyPaths ?? []).map((p) =>
    p
      .split("/")
      .slice(1)
      .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~")),
  );
  const out = structuredClone(doc);

  ops.forEach((o, i) => {
    if (typeof o !== "object" || o === null || !OPS.has((o as PatchOperation).op)) {
      throw new PatchError(
        "ERR_PATCH_INVALID",
        `Invalid patch request: check syntax of patch specification. For Operation(${i}): 'op' must be one of add, set, replace, remove, incr, move.`,
      );
    }
    const tokens = parsePointer(o.path, i, "path");
    const fromTokens = o.op === "move" ? parsePointer(o.from, i, "from") : undefined;
    for (const t of fromTokens ? [tokens, fromTokens] : [tokens]) {
      if (SYSTEM_PROPERTIES.has(t[0])) {
        throw new PatchError(
          "ERR_PATCH_INVALID",
          `Invalid patch request: Can't patch system property ${t[0]}.`,
        );
      }
      for (const pk of pkTokens) {
        if (isPrefix(pk, t) || isPrefix(t, pk)) {
          throw new PatchError(
            "ERR_PATCH_INVALID",
            `Invalid patch request: For Operation(${i}): the partition key path '/${pk.join("/")}' can't be patched; create a new item instead.`,
          );
        }
      }
    }
    const needsValue = o.op === "add" || o.op === "set" || o.op === "replace" || o.op === "incr";
    if (needsValue && o.value === undefined) {
      throw new PatchError(
        "ERR_PATCH_INVALID",
        `Invalid patch request: check syntax of patch specification. For Operation(${i}): '${o.op}' needs a 'value'.`,
      );
    }
    switch (o.op) {
      case "add":
      case "set":
      case "replace":
        write(out, tokens, o.path, o.value as Json, o.op, o.op, i);
        break;
      case "remove":
        removeAt(out, tokens, o.path, i);
        break;
      case "incr": {
        if (typeof o.value !== "number") {
          throw new PatchError(
            "ERR_PATCH_TYPE",
            `For Operation(${i}): the increment value must be a number.`,
          );
        }
        const cur = getAt(out, tokens);
        if (cur === undefined) write(out, tokens, o.path, o.value, "set", "incr", i);
        else if (typeof cur !== "number")
          throw new PatchError("ERR_PATCH_TYPE", `For Operation(${i}): Node(${o.path}) isn't a number.`);
        else write(out, tokens, o.path, cur + o.value, "set", "incr", i);
        break;
      }
      case "move": {
        const from = fromTokens as string[];
        if (isPrefix(from, tokens) && from.length < tokens.length) {
          throw new PatchError(
            "ERR_PATCH_INVALID",
            `For Operation(${i}): 'path' (${o.path}) can't be a child of the 'from' location (${o.from}).`,
          );
        }
        if (getAt(out, from) === undefined) {
          throw new PatchError(
            "ERR_PATCH_PATH_NOT_FOUND",
            `For Operation(${i}): Node(${o.from}) to be moved is absent.`,
          );
        }
        if (from.length === tokens.length && isPrefix(from, tokens)) break;
        const v = removeAt(out, from, o.from as string, i);
        write(out, tokens, o.path, v, "set", "move", i);
        break;
      }
    }
  });
  return out;
}
