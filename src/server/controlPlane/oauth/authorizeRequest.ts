/** The only OAuth client: the cosmosgate command line (a public, native client). */
export const CLI_CLIENT_ID = "cosmosgate-cli";

/** A validated authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636, on a loopback redirect, RFC 8252). */
export interface AuthorizeRequest {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  codeChallengeMethod: "S256";
  state?: string;
}

/** The result of {@link checkAuthorizeRequest}: the request, or what is wrong with it in one sentence. */
export type AuthorizeCheck = { ok: true; request: AuthorizeRequest } | { ok: false; problem: string };

const CHALLENGE = /^[A-Za-z0-9_-]{43,128}$/;
/** Printable ASCII (RFC 6749 Appendix A.5: state is VSCHAR). */
const VSCHAR = /^[\x20-\x7e]{1,512}$/;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

/**
 * Checks an authorization request's parameters — from the query of `GET /oauth/authorize` or the
 * `authorize` object of the approval — before anything is shown or any redirect is made:
 * `client_id` must be "cosmosgate-cli"; `redirect_uri` an `http` URL on a loopback host
 * (127.0.0.1, [::1] or localhost) with any port (RFC 8252 §7.3), no user info and no fragment;
 * `code_challenge` 43–128 base64url characters; `code_challenge_method` "S256" (plain is refused);
 * `state` optional, printable ASCII. With `responseType`, `response_type` must be "code". A
 * parameter given twice (an array) is refused, as RFC 6749 §3.1 requires.
 *
 * @example
 * ```ts
 * const check = checkAuthorizeRequest(request.query, { responseType: true });
 * if (!check.ok) return reply.code(400).type("text/html").send(errorPage(check.problem));
 * ```
 */
export function checkAuthorizeRequest(
  params: Record<string, unknown>,
  options: { responseType: boolean },
): AuthorizeCheck {
  const get = (name: string): string | undefined | { problem: string } => {
    const v = params[name];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return { problem: `${name} is given more than once; give it once.` };
    if (typeof v !== "string") return { problem: `${name} must be text.` };
    return v;
  };
  const names = [
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
  ];
  const values: Record<string, string | undefined> = {};
  for (const name of names) {
    const v = get(name);
    if (typeof v === "object") return { ok: false, problem: v.problem };
    values[name] = v;
  }

  const clientId = values.client_id;
  if (clientId === undefined || clientId === "") {
    return { ok: false, problem: `client_id is missing; it must be "${CLI_CLIENT_ID}".` };
  }
  if (clientId !== CLI_CLIENT_ID) {
    return {
      ok: false,
      problem: `unknown client_id ${quote(clientId)}; the only client is "${CLI_CLIENT_ID}".`,
    };
  }
  const redirect = checkRedirectUri(values.redirect_uri);
  if (typeof redirect !== "string") return { ok: false, problem: redirect.problem };
  if (options.responseType && values.response_type !== "code") {
    return {
      ok: false,
      problem:
        values.response_type === undefined
          ? 'response_type is missing; it must be "code".'
          : `response_type ${quote(values.response_type)} is not supported; it must be "code".`,
    };
  }
  const method = values.code_challenge_method;
  if (method === undefined) {
    return { ok: false, problem: 'code_challenge_method is missing; PKCE with "S256" is required.' };
  }
  if (method !== "S256") {
    return {
      ok: false,
      problem: `code_challenge_method ${quote(method)} is not supported; only "S256" is accepted.`,
    };
  }
  const challenge = values.code_challenge;
  if (challenge === undefined || !CHALLENGE.test(challenge)) {
    return {
      ok: false,
      problem:
        challenge === undefined
          ? "code_challenge is missing; PKCE is required."
          : "code_challenge must be 43–128 base64url characters (the SHA-256 of the code verifier).",
    };
  }
  const state = values.state;
  if (state !== undefined && !VSCHAR.test(state)) {
    return { ok: false, problem: "state must be 1–512 printable ASCII characters." };
  }
  return {
    ok: true,
    request: {
      clientId,
      redirectUri: redirect,
      codeChallenge: challenge,
      codeChallengeMethod: "S256",
      ...(state !== undefined ? { state } : {}),
    },
  };
}

/** A loopback redirect URI (RFC 8252 §7.3), or what is wrong with it. */
function checkRedirectUri(value: string | undefined): string | { problem: string } {
  if (value === undefined || value === "") {
    return {
      problem:
        "redirect_uri is missing; the command line sends its loopback address, e.g. http://127.0.0.1:PORT/callback.",
    };
  }
  if (value.length > 2048) return { problem: "redirect_uri is longer than 2048 characters." };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: `redirect_uri ${quote(value)} is not a URL.` };
  }
  if (url.protocol !== "http:") {
    return {
      problem: `redirect_uri must be an http:// loopback address (RFC 8252), not ${quote(url.protocol)}.`,
    };
  }
  if (!LOOPBACK_HOSTS.has(url.hostname)) {
    return {
      problem: `redirect_uri must point to this computer (127.0.0.1, [::1] or localhost), not ${quote(url.hostname)}.`,
    };
  }
  if (url.username !== "" || url.password !== "")
    return { problem: "redirect_uri must not contain a user name or password." };
  if (value.includes("#")) return { problem: "redirect_uri must not contain a fragment (#)." };
  return value;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/**
 * Where the browser goes after the decision: the redirect URI with `code` (or `error`) and `state`
 * added to its query (RFC 6749 §4.1.2).
 *
 * @example
 * ```ts
 * redirectWith(request, { code }); // "http://127.0.0.1:53682/callback?code=...&state=..."
 * ```
 */
export function redirectWith(request: AuthorizeRequest, params: Record<string, string>): string {
  const url = new URL(request.redirectUri);
  for (const [k, v] of Object.entries(params)) url.searchParams.append(k, v);
  if (request.state !== undefined) url.searchParams.append("state", request.state);
  return url.href;
}
