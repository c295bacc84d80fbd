/**
 * The one API client of the console: same-origin JSON, the session cookie, and on every write the
 * per-session CSRF token (`x-cosmosgate-csrf`, from `GET /api/me`) with `content-type:
 * application/json`. A 401 anywhere tells the app to go to sign-in; errors become {@link ApiError}
 * with the server's stable code and a sentence for people.
 */
import type { ApiErrorBody, AuditQuery, MeView } from "../../src/server/controlPlane/consoleApi";

/** The header that carries the CSRF token (the contract's `CSRF_HEADER`; a type-only import cannot carry values). */
export const CSRF_HEADER = "x-cosmosgate-csrf";

/** A refused or failed request: `status` 0 when the gateway could not be reached. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }

  /** An administrators-only route refused to someone else. */
  get forbidden(): boolean {
    return this.status === 403 && (this.code === "ERR_FORBIDDEN" || this.code === "access_denied");
  }
}

let csrfToken = "";
let signedOut: (() => void) | undefined;
let mePromise: Promise<MeView> | undefined;

/** Called by the app: what to do when any request answers 401 (go to sign-in). */
export function onSignedOut(handler: () => void): void {
  signedOut = handler;
}

/** Forget the session's CSRF token (after sign-out). */
export function forgetSession(): void {
  csrfToken = "";
  mePromise = undefined;
}

/** Capitalizes the server's message ("key suspended; ..." → "Key suspended; ..."). */
export function sentence(text: string): string {
  const t = text.trim();
  if (t === "") return t;
  const s = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(s) ? s : `${s}.`;
}

async function parse(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function errorOf(status: number, data: unknown): ApiError {
  const body = (data ?? {}) as Partial<ApiErrorBody> & { error?: string; error_description?: string };
  // The contract names the code `code`; the control plane's error handler answers `error`: accept both.
  const code = body.code ?? body.error ?? `HTTP_${status}`;
  const message = body.message ?? body.error_description ?? `The gateway answered with status ${status}.`;
  return new ApiError(status, code, sentence(message));
}

/**
 * Sends one request. `body` is JSON-encoded for writes (an empty object when none is given). A write
 * refused for its CSRF token (403 `ERR_CSRF`: the session changed, e.g. a sign-in in another tab)
 * is sent once more with the token of the session now in force.
 */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  try {
    return await send<T>(method, path, body);
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "ERR_CSRF")) throw error;
    await loadMe();
    return send<T>(method, path, body);
  }
}

async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const write = method !== "GET" && method !== "HEAD";
  if (write && csrfToken === "" && mePromise !== undefined) {
    // A write issued while /api/me is still on its way: wait for the token.
    await mePromise.catch(() => undefined);
  }
  const headers: Record<string, string> = { accept: "application/json" };
  if (write) {
    headers["content-type"] = "application/json";
    if (csrfToken !== "") headers[CSRF_HEADER] = csrfToken;
  }
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers,
      ...(write ? { body: JSON.stringify(body ?? {}) } : {}),
    });
  } catch {
    throw new ApiError(
      0,
      "ERR_NETWORK",
      "The gateway cannot be reached. Check that it is running and try again.",
    );
  }
  const data = await parse(res);
  if (!res.ok) {
    const error = errorOf(res.status, data);
    if (res.status === 401 && !path.startsWith("/auth/webauthn/login/")) {
      forgetSession();
      signedOut?.();
    }
    throw error;
  }
  return data as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body?: unknown) => request<T>("POST", path, body);
export const put = <T>(path: string, body?: unknown) => request<T>("PUT", path, body);
export const patch = <T>(path: string, body?: unknown) => request<T>("PATCH", path, body);
export const del = <T>(path: string, body?: unknown) => request<T>("DELETE", path, body);

/** `GET /api/me`, remembering the CSRF token for the writes that follow. */
export function loadMe(): Promise<MeView> {
  const p = get<MeView>("/api/me").then((me) => {
    csrfToken = me.csrfToken ?? "";
    return me;
  });
  mePromise = p;
  return p;
}

/** URL-encodes a path segment. */
export const seg = (s: string) => encodeURIComponent(s);

/** The query string of an audit filter (empty values left out), without the leading "?". */
export function auditQueryString(
  q: AuditQuery,
  extra: Record<string, string | number | undefined> = {},
): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...q, ...extra })) {
    if (v !== undefined && v !== "") params.set(k, String(v));
  }
  return params.toString();
}
