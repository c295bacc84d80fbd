import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import type { IdentityStore } from "../../../store/ports.js";
import type { AuthorizeRequest } from "./authorizeRequest.js";

/** How long an authorization code may wait to be exchanged (RFC 6749 §4.1.2 recommends at most 10 minutes). */
export const CODE_TTL_MS = 60_000;
/** How long after its expiry a used code is remembered, so its reuse can revoke what it gave. */
const USED_MEMORY_MS = 10 * 60_000;

/*
 * Codes live in the store's challenge table: single use (consumeChallenge is atomic), shared by every
 * gateway process, expired by time. The table's purposes are fixed by its schema, so codes use
 * "grant" and are keyed "oauth-code:" + SHA-256(code): a WebAuthn response can never name such a key
 * (its challenge must be plain base64url), so the two never mix.
 */
const CODE_KEY = "oauth-code:";
const USED_KEY = "oauth-code-used:";
const CODE = /^[A-Za-z0-9_-]{43}$/;
const KDF_INFO = Buffer.from("cosmosgate oauth code: refresh token", "utf8");

/** What an authorization code is bound to. */
export interface CodeBinding {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  sessionId: string;
  userId: string;
}

/** A redeemed code: what it was bound to and the session's first refresh token. */
export interface RedeemedCode extends CodeBinding {
  refreshToken: string;
}

/** What {@link redeemCode} found. */
export type Redemption =
  | { status: "ok"; code: RedeemedCode }
  | { status: "unknown" }
  /** The code was exchanged before: `sessionId` is the session that exchange gave. */
  | { status: "reused"; sessionId: string };

const hashCode = (code: string) => createHash("sha256").update(code, "utf8").digest("base64url");
const keyOf = (code: string) =>
  Buffer.from(hkdfSync("sha256", Buffer.from(code, "base64url"), Buffer.alloc(0), KDF_INFO, 32));

/**
 * Stores a new single-use authorization code (32 random bytes, base64url) for 60 seconds, bound to
 * the client, redirect URI, PKCE challenge and session, and returns it (the only time it exists in
 * clear). The session's first refresh token travels with it, encrypted (AES-256-GCM) under a key
 * derived from the code itself: the store holds only SHA-256(code) and a ciphertext nobody can open
 * without the code.
 *
 * @example
 * ```ts
 * const code = issueCode(store, now, authorize, { sessionId: session.id, userId: user.id }, refreshToken);
 * ```
 */
export function issueCode(
  store: IdentityStore,
  now: number,
  request: AuthorizeRequest,
  bound: { sessionId: string; userId: string },
  refreshToken: string,
): string {
  const code = randomBytes(32).toString("base64url");
  const lookup = hashCode(code);
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", keyOf(code), iv);
  cipher.setAAD(Buffer.from(lookup, "utf8"));
  const sealed = Buffer.concat([
    iv,
    cipher.update(refreshToken, "utf8"),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  store.putChallenge({
    challenge: CODE_KEY + lookup,
    purpose: "grant",
    userId: bound.userId,
    data: {
      kind: "oauth_code",
      client_id: request.clientId,
      redirect_uri: request.redirectUri,
      code_challenge: request.codeChallenge,
      session_id: bound.sessionId,
      refresh: sealed.toString("base64url"),
    },
    expiresAt: now + CODE_TTL_MS,
  });
  return code;
}

/**
 * Consumes an authorization code (atomically: a second exchange never finds it). A code exchanged
 * before is reported as `reused` (once) with the session it gave, so the caller can revoke it
 * (RFC 6749 §4.1.2: "SHOULD revoke all tokens previously issued based on that code").
 *
 * @example
 * ```ts
 * const r = redeemCode(store, now, body.code);
 * if (r.status === "ok") await issueTokens(r.code.sessionId, r.code.refreshToken);
 * ```
 */
export function redeemCode(store: IdentityStore, now: number, code: string): Redemption {
  if (!CODE.test(code)) return { status: "unknown" };
  const lookup = hashCode(code);
  const record = store.consumeChallenge(CODE_KEY + lookup, now);
  const data = record?.data;
  if (record === undefined || record.purpose !== "grant" || data?.kind !== "oauth_code") {
    const used = store.consumeChallenge(USED_KEY + lookup, now);
    if (used !== undefined && typeof used.data?.session_id === "string") {
      return { status: "reused", sessionId: used.data.session_id };
    }
    return { status: "unknown" };
  }
  const fields = ["client_id", "redirect_uri", "code_challenge", "session_id", "refresh"] as const;
  if (!fields.every((f) => typeof data[f] === "string") || record.userId === undefined)
    return { status: "unknown" };
  let refreshToken: string;
  try {
    const sealed = Buffer.from(data.refresh as string, "base64url");
    const decipher = createDecipheriv("aes-256-gcm", keyOf(code), sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(lookup, "utf8"));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    refreshToken = Buffer.concat([
      decipher.update(sealed.subarray(12, sealed.length - 16)),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    return { status: "unknown" };
  }
  const sessionId = data.session_id as string;
  store.putChallenge({
    challenge: USED_KEY + lookup,
    purpose: "grant",
    data: { kind: "oauth_code_used", session_id: sessionId },
    expiresAt: record.expiresAt + USED_MEMORY_MS,
  });
  return {
    status: "ok",
    code: {
      clientId: data.client_id as string,
      redirectUri: data.redirect_uri as string,
      codeChallenge: data.code_challenge as string,
      sessionId,
      userId: record.userId,
      refreshToken,
    },
  };
}

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

/** Whether `verifier` is a well-formed PKCE code verifier (RFC 7636 §4.1). */
export function isCodeVerifier(verifier: string): boolean {
  return VERIFIER.test(verifier);
}

/**
 * PKCE S256 (RFC 7636 §4.6): BASE64URL(SHA-256(verifier)) equals the challenge.
 *
 * @example
 * ```ts
 * pkceMatches(body.code_verifier, code.codeChallenge);
 * ```
 */
export function pkceMatches(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(createHash("sha256").update(verifier, "ascii").digest("base64url"), "ascii");
  const expected = Buffer.from(challenge, "ascii");
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
