import { ApiError } from "./errors.js";

/**
 * The request body as a JSON object: `undefined` (no body) is an empty object; anything else
 * that is not an object is refused.
 *
 * @throws {ApiError} 400 `ERR_BAD_REQUEST`.
 * @example
 * ```ts
 * const { invite } = bodyObject(request.body);
 * ```
 */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) {
    throw new ApiError(400, "ERR_BAD_REQUEST", "the request body must be a JSON object.");
  }
  return body as Record<string, unknown>;
}

/**
 * A member that must be a string when present.
 *
 * @throws {ApiError} 400 `ERR_BAD_REQUEST` naming the member.
 * @example
 * ```ts
 * const username = optionalString(body, "username", 256);
 * ```
 */
export function optionalString(
  body: Record<string, unknown>,
  name: string,
  maxLength: number,
): string | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw new ApiError(400, "ERR_BAD_REQUEST", `${name} must be a string, not ${describe(value)}.`);
  }
  if (value.length > maxLength) {
    throw new ApiError(400, "ERR_BAD_REQUEST", `${name} is longer than ${maxLength} characters.`);
  }
  return value;
}

/**
 * A member that must be present and a JSON object (e.g. a WebAuthn `response`).
 *
 * @throws {ApiError} 400 `ERR_BAD_REQUEST` naming the member.
 */
export function requiredObject(
  body: Record<string, unknown>,
  name: string,
  what: string,
): Record<string, unknown> {
  const value = body[name];
  if (value === undefined || value === null) {
    throw new ApiError(400, "ERR_BAD_REQUEST", `${name} is missing: send ${what}.`);
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError(
      400,
      "ERR_BAD_REQUEST",
      `${name} must be a JSON object (${what}), not ${describe(value)}.`,
    );
  }
  return value as Record<string, unknown>;
}

/** "a number", "an array", ... for messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  const t = typeof value;
  return t === "object" ? "an object" : t === "undefined" ? "nothing" : `a ${t}`;
}

/** Printable text: no control characters (C0, DEL, C1), no lone surrogates. */
const PRINTABLE = /^[^\p{Cc}\p{Cs}]+$/u;

/**
 * A key nickname: 1–64 printable characters after trimming.
 *
 * @throws {ApiError} 400 `ERR_BAD_NICKNAME`.
 */
export function nickname(value: unknown): string {
  if (typeof value !== "string") {
    throw new ApiError(400, "ERR_BAD_NICKNAME", `nickname must be a string, not ${describe(value)}.`);
  }
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length > 64 || !PRINTABLE.test(trimmed)) {
    throw new ApiError(
      400,
      "ERR_BAD_NICKNAME",
      "the key's nickname must be 1–64 printable characters (no control characters).",
    );
  }
  return trimmed;
}
