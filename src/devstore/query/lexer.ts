// Lexer for the Cosmos DB NoSQL query dialect.
//
// Why hand-written: no well-kept library runs Cosmos DB SQL at scale; @zeit/cosmosdb-query (the
// engine inside @vercel/cosmosdb-server) is quadratic and misses OFFSET/LIMIT, DISTINCT, GROUP BY
// and LIKE. The token rules follow the Cosmos grammar: keywords are case-insensitive except the
// JSON literals `true`, `false`, `null`, `undefined` and the `udf` prefix, which are lower-case only.
import { QueryError } from "./errors.js";

export type TokenType = "ident" | "keyword" | "number" | "string" | "param" | "punct" | "eof";

export interface Token {
  type: TokenType;
  /** keyword: upper-cased; ident/param/punct: as written; string: the decoded value. */
  value: string;
  /** number tokens: the numeric value. */
  num?: number;
  /** The source text of the token. */
  text: string;
  line: number;
  col: number;
  offset: number;
}

/** Reserved words: they cannot be used as identifiers or after a dot (use ["name"] instead). */
export const RESERVED = new Set([
  "AND",
  "ARRAY",
  "AS",
  "ASC",
  "BETWEEN",
  "BY",
  "DESC",
  "DISTINCT",
  "EXISTS",
  "FROM",
  "GROUP",
  "IN",
  "JOIN",
  "LEFT",
  "LIKE",
  "LIMIT",
  "NOT",
  "OFFSET",
  "OR",
  "ORDER",
  "RIGHT",
  "SELECT",
  "TOP",
  "VALUE",
  "WHERE",
]);

/** Lower-case-only literal keywords. */
const CASED_KEYWORDS = new Set(["true", "false", "null", "undefined", "udf"]);

const PUNCT2 = new Set(["<=", ">=", "!=", "<>", "||", "??"]);
const PUNCT1 = new Set([
  "(",
  ")",
  "[",
  "]",
  "{",
  "}",
  ",",
  ".",
  ":",
  "?",
  "*",
  "/",
  "%",
  "+",
  "-",
  "<",
  ">",
  "=",
  "&",
  "|",
  "^",
  "~",
]);

function isIdentStart(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
}
function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= "0" && c <= "9");
}
function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = text.length;

  const fail = (msg: string, at: number): never => {
    throw new QueryError("ERR_QUERY_SYNTAX", `${msg} at line ${line}, column ${at - lineStart + 1}.`);
  };

  while (i < n) {
    const c = text[i];
    // whitespace
    if (c === "\n") {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    // comments: -- to end of line, /* ... */
    if (c === "-" && text[i + 1] === "-") {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) fail("Syntax error, unterminated comment", i);
      for (let j = i; j < end; j++) {
        if (text[j] === "\n") {
          line++;
          lineStart = j + 1;
        }
      }
      i = end + 2;
      continue;
    }
    const start = i;
    const col = i - lineStart + 1;
    const push = (type: TokenType, value: string, extra?: Partial<Token>) => {
      tokens.push({ type, value, text: text.slice(start, i), line, col, offset: start, ...extra });
    };

    if (isIdentStart(c)) {
      while (i < n && isIdentPart(text[i])) i++;
      const word = text.slice(start, i);
      const upper = word.toUpperCase();
      if (CASED_KEYWORDS.has(word)) push("keyword", word);
      else if (RESERVED.has(upper)) push("keyword", upper);
      else push("ident", word);
      continue;
    }
    if (c === "@") {
      i++;
      if (i >= n || !isIdentStart(text[i])) fail("Syntax error, a parameter name must follow '@'", start);
      while (i < n && isIdentPart(text[i])) i++;
      push("param", text.slice(start, i));
      continue;
    }
    if (isDigit(c) || (c === "." && isDigit(text[i + 1] ?? ""))) {
      if (c === "0" && (text[i + 1] === "x" || text[i + 1] === "X")) {
        i += 2;
        const hs = i;
        while (i < n && /[0-9a-fA-F]/.test(text[i])) i++;
        if (i === hs) fail("Syntax error, incomplete hexadecimal number", start);
        push("number", text.slice(start, i), { num: Number.parseInt(text.slice(hs, i), 16) });
        continue;
      }
      while (i < n && isDigit(text[i])) i++;
      if (text[i] === ".") {
        i++;
        while (i < n && isDigit(text[i])) i++;
      }
      if (text[i] === "e" || text[i] === "E") {
        let j = i + 1;
        if (text[j] === "+" || text[j] === "-") j++;
        if (isDigit(text[j] ?? "")) {
          i = j;
          while (i < n && isDigit(text[i])) i++;
        }
      }
      if (i < n && isIdentStart(text[i]))
        fail(`Syntax error, incorrect syntax near '${text.slice(start, i + 1)}'`, start);
      push("number", text.slice(start, i), { num: Number(text.slice(start, i)) });
      continue;
    }
    if (c === '"' || c === "'") {
      const quote = c;
      i++;
      let out = "";
      for (;;) {
        if (i >= n) fail("Syntax error, unterminated string literal", start);
        const ch = text[i];
        if (ch === quote) {
          i++;
          break;
        }
        if (ch === "\\") {
          const e = text[i + 1];
          i += 2;
          switch (e) {
            case "'":
            case '"':
            case "\\":
            case "/":
              out += e;
              break;
            case "b":
              out += "\b";
              break;
            case "f":
              out += "\f";
              break;
            case "n":
              out += "\n";
              break;
            case "r":
              out += "\r";
              break;
            case "t":
              out += "\t";
              break;
            case "u": {
              const hex = text.slice(i, i + 4);
              if (!/^[0-9a-fA-F]{4}$/.test(hex))
                fail("Syntax error, invalid \\u escape in string literal", i - 2);
              out += String.fromCharCode(Number.parseInt(hex, 16));
              i += 4;
              break;
            }
            default:
              fail(`Syntax error, invalid escape sequence '\\${e ?? ""}' in string literal`, i - 2);
          }
          continue;
        }
        if (ch === "\n") {
          line++;
          lineStart = i + 1;
        }
        out += ch;
        i++;
      }
      tokens.push({ type: "string", value: out, text: text.slice(start, i), line, col, offset: start });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (PUNCT2.has(two)) {
      i += 2;
      push("punct", two);
      continue;
    }
    if (PUNCT1.has(c)) {
      i++;
      push("punct", c);
      continue;
    }
    fail(`Syntax error, unexpected character '${c}'`, start);
  }
  tokens.push({ type: "eof", value: "", text: "", line, col: i - lineStart + 1, offset: i });
  return tokens;
}
