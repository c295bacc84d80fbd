import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { PolicyError, type PolicyProblem } from "./errors.js";
import { type PolicyDocument, PolicySchema } from "./schema.js";
import { toProblems } from "./toProblems.js";

/**
 * Parses and validates the text of `policy.yaml`. Every problem names `file:line:col`, the key path
 * (`roles.shop-writer[0].allow[2]`), what was found and what was expected; all problems are reported
 * at once. An empty file (or only comments) is an empty policy: no roles, no members, so every
 * request is denied.
 *
 * @param text the YAML source.
 * @param file the name to print in problems, e.g. the path the text was read from.
 * @throws {PolicyError} `ERR_POLICY_INVALID`, its message listing each problem on its own line and
 *   `problems` holding them as data.
 * @example
 * ```ts
 * const doc = parsePolicy(await readFile("policy.yaml", "utf8"), "policy.yaml");
 * const policy = compilePolicy(doc);
 * ```
 */
export function parsePolicy(text: string, file: string): PolicyDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw invalid(
      file,
      doc.errors.map((e) => ({
        file,
        ...lineCounter.linePos(e.pos[0]),
        path: "",
        message: `YAML: ${e.message}`,
      })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (err) {
    throw invalid(file, [{ file, line: 1, col: 1, path: "", message: `YAML: ${(err as Error).message}` }]);
  }
  const result = PolicySchema.safeParse(data);
  if (result.success) return result.data;
  const locate = (path: readonly PropertyKey[], atKey: boolean) => {
    const offset = offsetOf(doc.contents, path, atKey);
    return offset === undefined ? { line: 1, col: 1 } : lineCounter.linePos(offset);
  };
  throw invalid(file, toProblems(result.error.issues, data, locate, file));
}

function invalid(file: string, problems: PolicyProblem[]): PolicyError {
  const lines = problems.map(
    (p) => `  ${p.file}:${p.line}:${p.col}: ${p.path === "" ? "" : `${p.path}: `}${p.message}`,
  );
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return new PolicyError(
    "ERR_POLICY_INVALID",
    `invalid policy ${file} (${count}):\n${lines.join("\n")}`,
    problems,
  );
}

/** Source offset of the node at `path`; the deepest existing ancestor when the path runs out. */
function offsetOf(root: unknown, path: readonly PropertyKey[], atKey: boolean): number | undefined {
  let node = root as Node | null | undefined;
  let key: Node | undefined;
  let best = node?.range?.[0];
  for (const seg of path) {
    key = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (pair === undefined) break;
      key = pair.key as Node;
      node = pair.value as Node | null;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg] as Node | undefined;
    } else {
      break;
    }
    best = key?.range?.[0] ?? best;
    if (node?.range) best = node.range[0];
  }
  if (atKey && key?.range) return key.range[0];
  return best;
}
