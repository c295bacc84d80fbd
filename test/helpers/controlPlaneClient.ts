/** A small HTTP client for the control plane's JSON API, as the pages' script calls it. */
export interface ControlPlaneResponse {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
  json: any;
  /** The `cg_session` cookie value the response set, when it set one. */
  cookie?: string;
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const tokens = new Map<string, string>();

/**
 * The CSRF token of the session a `cg_session` cookie value names, read from `GET /api/me` as the
 * pages and the console do (cached per cookie); undefined when the cookie is not a live session.
 */
export async function csrfTokenFor(base: string, cookie: string): Promise<string | undefined> {
  const cached = tokens.get(`${base} ${cookie}`);
  if (cached !== undefined) return cached;
  const res = await fetch(`${base}/api/me`, { headers: { cookie: `cg_session=${cookie}` } });
  if (res.status !== 200) return undefined;
  const token = ((await res.json()) as { csrfToken?: string }).csrfToken;
  if (typeof token === "string") tokens.set(`${base} ${cookie}`, token);
  return token;
}

/**
 * Whether a write to `path` needs the CSRF token when signed in (every write under /api/ and /auth/
 * except the sign-in ceremony), as the server's csrf.ts decides.
 */
export function needsCsrf(method: string, path: string): boolean {
  return (
    WRITES.has(method) &&
    (path.startsWith("/api/") || path.startsWith("/auth/")) &&
    !path.startsWith("/auth/webauthn/login/")
  );
}

/**
 * `send(method, path, cookie?, json?, opts?)` sends `json` (when given) as an application/json body
 * and the session cookie value (when given); a write with a cookie carries the session's CSRF token
 * like a page would, unless `opts.csrf` says otherwise (`false`: none; a string: that one). `post`
 * is `send("POST", ...)`.
 */
export function controlPlaneClient(port: () => number) {
  async function send(
    method: string,
    path: string,
    cookie?: string,
    json?: unknown,
    opts: { csrf?: string | false } = {},
  ): Promise<ControlPlaneResponse> {
    const base = `http://127.0.0.1:${port()}`;
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = `cg_session=${cookie}`;
    if (json !== undefined) headers["content-type"] = "application/json";
    if (typeof opts.csrf === "string") headers["x-cosmosgate-csrf"] = opts.csrf;
    else if (opts.csrf === undefined && cookie && needsCsrf(method, path)) {
      const token = await csrfTokenFor(base, cookie);
      if (token !== undefined) headers["x-cosmosgate-csrf"] = token;
    }
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const set = res.headers
      .getSetCookie()
      .map((c) => /^cg_session=([^;]*)/.exec(c)?.[1])
      .find((v) => v !== undefined);
    return { status: res.status, text, json: parsed, ...(set ? { cookie: set } : {}) };
  }
  const post = (path: string, json: unknown, cookie?: string, opts?: { csrf?: string | false }) =>
    send("POST", path, cookie, json, opts);
  return { send, post };
}
