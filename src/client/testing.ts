import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A stand-in for the gateway's OAuth endpoints, for the client's and the CLI's unit tests only
 * (the end-to-end tests use the real gateway): discovery, `/oauth/authorize` (redirects at once, as
 * if the person had signed in), `/oauth/token` (authorization_code with PKCE checks, refresh_token
 * with rotation and reuse refusal) and `/oauth/revoke`.
 */
export interface FakeGateway {
  url: string;
  /** Every token request's form, in order. */
  tokenRequests: Record<string, string>[];
  /** Every authorize request's query. */
  authorizeRequests: Record<string, string>[];
  /** Refresh tokens revoked at /oauth/revoke. */
  revoked: string[];
  /** Refresh tokens the fake accepts (each once). */
  liveRefreshTokens: Set<string>;
  /** Behaviour knobs, changeable between requests. */
  mode: {
    authorize: "ok" | "wrong-state" | "error";
    /** Delay before answering a token request. */
    tokenDelayMs: number;
    /** Answer token requests with this status and an OAuth error body instead. */
    tokenFailure?: { status: number; error: string; description?: string };
    revokeStatus: number;
    expiresIn: number;
  };
  /** Claims of the access tokens it issues (plus a counter `n`). */
  claims: Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * An unsigned token shaped like a JWT (header `alg: none`): the client only decodes tokens.
 *
 * @example fakeJwt({ sub: "ada", aud: "https://localhost:8081" })
 */
export function fakeJwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${part({ alg: "none", typ: "at+jwt" })}.${part(claims)}.c2ln`;
}

/** Starts a {@link FakeGateway} on 127.0.0.1 with a free port. */
export async function startFakeGateway(): Promise<FakeGateway> {
  let issued = 0;
  const codes = new Map<string, { challenge: string; redirectUri: string; method: string }>();
  const fake: FakeGateway = {
    url: "",
    tokenRequests: [],
    authorizeRequests: [],
    revoked: [],
    liveRefreshTokens: new Set(),
    mode: { authorize: "ok", tokenDelayMs: 0, revokeStatus: 200, expiresIn: 600 },
    claims: {
      sub: "ada",
      groups: ["analysts", "ops"],
      amr: ["hwk", "user", "pin"],
      cred: "cred-1",
      sid: "session-1",
      aud: "https://localhost:8081",
      auth_time: 1_800_000_000,
    },
    close: async () => {},
  };
  const issue = () => {
    issued += 1;
    const refresh = `rt-${issued}-${randomBytes(8).toString("hex")}`;
    fake.liveRefreshTokens.add(refresh);
    return {
      access_token: fakeJwt({ ...fake.claims, iss: fake.url, n: issued }),
      token_type: "Bearer",
      expires_in: fake.mode.expiresIn,
      refresh_token: refresh,
    };
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", fake.url);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && url.pathname === "/.well-known/openid-configuration") {
      json(200, {
        issuer: fake.url,
        authorization_endpoint: `${fake.url}/oauth/authorize`,
        token_endpoint: `${fake.url}/oauth/token`,
        revocation_endpoint: `${fake.url}/oauth/revoke`,
        jwks_uri: `${fake.url}/.well-known/jwks.json`,
      });
      return;
    }
    if (req.method === "GET" && url.pathname === "/oauth/authorize") {
      const q = Object.fromEntries(url.searchParams);
      fake.authorizeRequests.push(q);
      const code = randomBytes(16).toString("base64url");
      codes.set(code, {
        challenge: q.code_challenge ?? "",
        redirectUri: q.redirect_uri ?? "",
        method: q.code_challenge_method ?? "",
      });
      const target = new URL(q.redirect_uri ?? "http://127.0.0.1:9/callback");
      if (fake.mode.authorize === "error") {
        target.searchParams.set("error", "access_denied");
        target.searchParams.set("error_description", "the key was not recognised");
        target.searchParams.set("state", q.state ?? "");
      } else {
        target.searchParams.set("code", code);
        target.searchParams.set("state", fake.mode.authorize === "wrong-state" ? "forged" : (q.state ?? ""));
      }
      res.writeHead(302, { location: target.href });
      res.end();
      return;
    }
    if (req.method === "POST" && url.pathname === "/oauth/token") {
      const form = Object.fromEntries(new URLSearchParams(await body(req)));
      fake.tokenRequests.push(form);
      if (fake.mode.tokenDelayMs > 0) await new Promise((r) => setTimeout(r, fake.mode.tokenDelayMs));
      const failure = fake.mode.tokenFailure;
      if (failure) {
        json(failure.status, {
          error: failure.error,
          error_description: failure.description ?? failure.error,
        });
        return;
      }
      if (form.client_id !== "cosmosgate-cli") {
        json(400, { error: "invalid_client", error_description: "unknown client" });
        return;
      }
      if (form.grant_type === "authorization_code") {
        const pending = codes.get(form.code ?? "");
        codes.delete(form.code ?? "");
        const challenge = createHash("sha256")
          .update(form.code_verifier ?? "")
          .digest("base64url");
        if (
          pending === undefined ||
          pending.method !== "S256" ||
          pending.redirectUri !== form.redirect_uri ||
          pending.challenge !== challenge ||
          !/^[A-Za-z0-9_-]{43,128}$/.test(form.code_verifier ?? "")
        ) {
          json(400, { error: "invalid_grant", error_description: "bad code, redirect_uri or code_verifier" });
          return;
        }
        json(200, issue());
        return;
      }
      if (form.grant_type === "refresh_token") {
        if (!fake.liveRefreshTokens.delete(form.refresh_token ?? "")) {
          json(400, { error: "invalid_grant", error_description: "refresh token unknown, used or revoked" });
          return;
        }
        json(200, issue());
        return;
      }
      json(400, { error: "unsupported_grant_type" });
      return;
    }
    if (req.method === "POST" && url.pathname === "/oauth/revoke") {
      const form = Object.fromEntries(new URLSearchParams(await body(req)));
      if (fake.mode.revokeStatus !== 200) {
        json(fake.mode.revokeStatus, { error: "temporarily_unavailable" });
        return;
      }
      fake.revoked.push(form.token ?? "");
      fake.liveRefreshTokens.delete(form.token ?? "");
      res.writeHead(200);
      res.end();
      return;
    }
    json(404, { error: "not_found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return fake;
}

async function body(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}
