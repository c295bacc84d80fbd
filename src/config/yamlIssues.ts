import { type Document, isMap, isNode, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import type { z } from "zod";

/** A located problem in a YAML file: `file:line:col: key.path: message`. */
export interface YamlProblem {
  line: number;
  col: number;
  path: string;
  message: string;
}

/**
 * Turns zod issues about a YAML document into messages that name the line, the key, what was
 * found and what was expected. Shared by the config and policy loaders.
 *
 * @example formatProblems("cosmosgate.yaml", locateIssues(doc, lc, result.error.issues))
 */
export function locateIssues(
  doc: Document,
  lc: LineCounter,
  issues: readonly z.core.$ZodIssue[],
): YamlProblem[] {
  const out: YamlProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const keyNode = findKeyNode(doc, path, key);
        const pos = position(lc, keyNode ?? nearestNode(doc, path));
        out.push({
          ...pos,
          path: joinPath([...path, key]),
          message: `unknown key "${key}"; expected one of the documented keys (see \`cosmosgate config schema\`)`,
        });
      }
      continue;
    }
    const node = doc.getIn(path, true) as Node | undefined;
    const found = describeFound(node);
    out.push({
      ...position(lc, isNode(node) ? node : nearestNode(doc, path)),
      path: joinPath(path),
      message: `${expectation(issue)}; found ${found}`,
    });
  }
  return out.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Renders located problems, one per line, prefixed by the file name. */
export function formatProblems(file: string, problems: readonly YamlProblem[]): string {
  return problems
    .map((p) => `${file}:${p.line}:${p.col}: ${p.path || "(top level)"}: ${p.message}`)
    .join("\n");
}

/** Problems that YAML itself reports (syntax), located. */
export function yamlSyntaxProblems(doc: Document): YamlProblem[] {
  return doc.errors.map((e) => ({
    line: e.linePos?.[0]?.line ?? 1,
    col: e.linePos?.[0]?.col ?? 1,
    path: "",
    message: `YAML syntax error: ${e.message.split("\n")[0]}`,
  }));
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_union": {
      const options = (issue as { options?: unknown[] }).options;
      if (issue.errors.length === 0 && Array.isArray(options)) {
        const named = options.filter((o) => o !== null && o !== undefined).map((o) => JSON.stringify(o));
        return `expected ${named.join(" or ")}`;
      }
      const alternatives = issue.errors.map((branch) =>
        branch
          .map((b) =>
            stripInvalid(b.message)
              .replace(/^expected /, "")
              .replace(/, received .*$/, ""),
          )
          .join(", "),
      );
      return `expected ${[...new Set(alternatives)].join(" or ")}`;
    }
    case "invalid_type":
      return `expected ${issue.expected}`;
    case "invalid_value":
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`;
    default:
      return stripInvalid(issue.message);
  }
}

function stripInvalid(message: string): string {
  return message.replace(/^Invalid input: /, "");
}

function describeFound(node: unknown): string {
  if (node === undefined) return "nothing (the key is missing)";
  if (isScalar(node)) return node.value === null ? "an empty value" : JSON.stringify(node.value);
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  return "an unexpected value";
}

function nearestNode(doc: Document, path: readonly (string | number)[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : (doc.getIn(path.slice(0, n), true) as unknown);
    if (isNode(node)) return node;
  }
  return undefined;
}

function findKeyNode(doc: Document, path: readonly (string | number)[], key: string): Node | undefined {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (!isMap(parent)) return undefined;
  for (const pair of parent.items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key;
  }
  return undefined;
}

function position(lc: LineCounter, node: Node | undefined | null): { line: number; col: number } {
  const offset = node?.range?.[0];
  if (offset === undefined) return { line: 1, col: 1 };
  const p = lc.linePos(offset);
  return { line: p.line, col: p.col };
}

function joinPath(path: readonly (string | number)[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${p}` : p;
  return s;
}
