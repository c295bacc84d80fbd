/** A small HTTP client for the control plane's JSON API, as the pages' script calls it. */
export interface ControlPlaneResponse {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: responses are inspected field by field
  json: any;
  /** The `cg_session` cookie value the response set, when it set one. */
  cookie?: string;
}

/**
 * `send(method, path, cookie?, json?)` sends `json` (when given) as an application/json body and
 * the session cookie value (when given); `post` is `send("POST", ...)`.
 */
export function controlPlaneClient(port: () => number) {
  async function send(
    method: string,
    path: string,
    cookie?: string,
    json?: unknown,
  ): Promise<ControlPlaneResponse> {
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = `cg_session=${cookie}`;
    if (json !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`http://127.0.0.1:${port()}${path}`, {
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
  const post = (path: string, json: unknown, cookie?: string) => send("POST", path, cookie, json);
  return { send, post };
}
