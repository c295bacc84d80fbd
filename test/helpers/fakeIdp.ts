import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";
import { freePort } from "./upstream.js";

/** How the identity provider misbehaves: answer normally, refuse connections, answer 503, or never answer. */
export type IdpMode = "up" | "refuse" | "error" | "hang";

/**
 * A local identity provider on 127.0.0.1 that imitates Entra ID (v2.0 and v1), an Okta custom
 * authorization server and GitHub Actions (GitHub Enterprise Server's issuer form, since the real
 * one is a fixed https host): their issuer formats, discovery documents, JWKS endpoints, claims and
 * RS256 keys with kids. The tests can roll the signing key over, take the provider down in several
 * ways and count the requests it served.
 */
export interface FakeIdp {
  /** http://127.0.0.1:PORT — the Entra preset's `authority`. */
  origin: string;
  /** The Entra tenant ID (a GUID). */
  tenant: string;
  /** `https://login.microsoftonline.com/{tenant}/v2.0`. */
  entraV2Issuer: string;
  /** `https://sts.windows.net/{tenant}/`. */
  entraV1Issuer: string;
  /** The Entra app's client ID (the audience of v2.0 tokens). */
  clientId: string;
  /** The Entra app's application ID URI (the audience of v1 tokens): `api://cosmosgate-test`. */
  appIdUri: string;
  /** `${origin}/oauth2/default` — an Okta custom authorization server. */
  oktaIssuer: string;
  /** `${origin}/_services/token` — GitHub Actions' issuer form on GitHub Enterprise Server. */
  githubIssuer: string;
  /** The kid that signs now. */
  readonly kid: string;
  /** Requests served, by kind. */
  readonly requests: { discovery: number; jwks: number };
  /** Signs any payload with the current key (RS256, `kid` header); `header` adds or overrides. */
  sign(payload: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  /** An Entra ID v2.0 access token for the app: `aud` client ID, `tid`, `oid`, `roles`, no `amr`. */
  entraV2Token(claims?: Record<string, unknown>): Promise<string>;
  /** An Entra ID v1 access token: `aud` app ID URI, `amr`, `unique_name`. */
  entraV1Token(claims?: Record<string, unknown>): Promise<string>;
  /**
   * A token Entra ID issues for Microsoft Graph: `aud` Graph, a `nonce` header, and a signature
   * over a hashed nonce, so no API other than Graph can verify it.
   */
  graphToken(claims?: Record<string, unknown>): Promise<string>;
  /** An Okta custom authorization server access token: `cid`, `uid`, `scp`, `groups`, `amr`. */
  oktaToken(claims?: Record<string, unknown>): Promise<string>;
  /** A GitHub Actions OIDC token for acme/shop on main in the production environment. */
  githubToken(claims?: Record<string, unknown>): Promise<string>;
  /** Generates a new key that signs from now on; the old one stays in the JWKS unless `dropOld`. */
  rollover(options?: { dropOld?: boolean; publish?: boolean }): Promise<string>;
  /** Publishes the current key set again (after `rollover({publish: false})`). */
  publish(): void;
  /** The JWKS as served. */
  jwks(): JSONWebKeySet;
  setMode(mode: IdpMode): void;
  close(): Promise<void>;
}

/** Options of {@link startFakeIdp}. */
export interface FakeIdpOptions {
  /** Seconds since the epoch for `iat`/`nbf`/`exp` defaults. Default the wall clock. */
  now?: () => number;
  /** Tenant ID. Default a random GUID. */
  tenant?: string;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = randomUUID().replace(/-/g, "").slice(0, 20);
  return { kid, privateKey, jwk: { ...jwk, kid, use: "sig", alg: "RS256" } };
}

/**
 * Starts a {@link FakeIdp} on a free loopback port.
 *
 * @example
 * ```ts
 * const idp = await startFakeIdp();
 * // cosmosgate.yaml: {preset: entra, tenant: idp.tenant, audience: idp.clientId, authority: idp.origin}
 * const token = await idp.entraV2Token({ roles: ["Orders.Read"] });
 * ```
 */
export async function startFakeIdp(options: FakeIdpOptions = {}): Promise<FakeIdp> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const tenant = options.tenant ?? randomUUID();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const clientId = randomUUID();
  const appIdUri = "api://cosmosgate-test";
  const entraV2Issuer = `https://login.microsoftonline.com/${tenant}/v2.0`;
  const entraV1Issuer = `https://sts.windows.net/${tenant}/`;
  const oktaIssuer = `${origin}/oauth2/default`;
  const githubIssuer = `${origin}/_services/token`;

  let current = await newKey();
  let keys: SigningKey[] = [current];
  let published: JSONWebKeySet = { keys: keys.map((k) => k.jwk) };
  let mode: IdpMode = "up";
  const requests = { discovery: 0, jwks: 0 };
  const hanging = new Set<ServerResponse>();

  const entraKeysPath = `/${tenant}/discovery/v2.0/keys`;
  const documents = new Map<string, Record<string, unknown>>([
    [
      `/${tenant}/v2.0/.well-known/openid-configuration`,
      {
        issuer: entraV2Issuer,
        jwks_uri: `${origin}${entraKeysPath}`,
        token_endpoint: `${origin}/${tenant}/oauth2/v2.0/token`,
        id_token_signing_alg_values_supported: ["RS256"],
      },
    ],
    [
      `/${tenant}/.well-known/openid-configuration`,
      {
        issuer: entraV1Issuer,
        jwks_uri: `${origin}/${tenant}/discovery/keys`,
        token_endpoint: `${origin}/${tenant}/oauth2/token`,
      },
    ],
    [
      "/oauth2/default/.well-known/openid-configuration",
      { issuer: oktaIssuer, jwks_uri: `${oktaIssuer}/v1/keys`, token_endpoint: `${oktaIssuer}/v1/token` },
    ],
    [
      "/_services/token/.well-known/openid-configuration",
      {
        issuer: githubIssuer,
        jwks_uri: `${githubIssuer}/.well-known/jwks`,
        claims_supported: ["sub", "repository", "ref", "environment", "job_workflow_ref"],
      },
    ],
  ]);
  const keyPaths = new Set([
    entraKeysPath,
    `/${tenant}/discovery/keys`,
    "/oauth2/default/v1/keys",
    "/_services/token/.well-known/jwks",
  ]);

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0] as string;
    const doc = documents.get(path);
    const isKeys = keyPaths.has(path);
    if (doc !== undefined) requests.discovery++;
    if (isKeys) requests.jwks++;
    if (mode === "hang") {
      hanging.add(res);
      return;
    }
    if (mode === "error") {
      res.writeHead(503, { "content-type": "text/plain" }).end("service unavailable");
      return;
    }
    if (doc === undefined && !isKeys) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc ?? published));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject); // e.g. EADDRINUSE: fail now, not at the test's time-out
    server.listen(port, "127.0.0.1", resolve);
  });
  const sockets = new Set<import("node:net").Socket>();
  server.on("connection", (socket) => {
    if (mode === "refuse") {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  const sign = (payload: JWTPayload, header: Record<string, unknown> = {}) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: "RS256", typ: "JWT", kid: current.kid, ...header })
      .sign(current.privateKey);

  const times = () => {
    const t = now();
    return { iat: t, nbf: t, exp: t + 3600 };
  };
  const merge = (base: Record<string, unknown>, claims: Record<string, unknown> = {}): JWTPayload => {
    const payload: Record<string, unknown> = { ...base };
    for (const [name, value] of Object.entries(claims)) {
      if (value === undefined) delete payload[name];
      else payload[name] = value;
    }
    return payload as JWTPayload;
  };
  const userOid = randomUUID();

  const idp: FakeIdp = {
    origin,
    tenant,
    entraV2Issuer,
    entraV1Issuer,
    clientId,
    appIdUri,
    oktaIssuer,
    githubIssuer,
    get kid() {
      return current.kid;
    },
    requests,
    sign,
    entraV2Token: (claims) =>
      sign(
        merge(
          {
            aud: clientId,
            iss: entraV2Issuer,
            ...times(),
            azp: randomUUID(),
            azpacr: "0",
            name: "Ada Lovelace",
            oid: userOid,
            preferred_username: "ada@contoso.test",
            roles: ["Orders.Read"],
            scp: "access_as_user",
            sub: "pairwise-subject-ada",
            tid: tenant,
            uti: randomUUID().slice(0, 22),
            ver: "2.0",
          },
          claims,
        ),
      ),
    entraV1Token: (claims) =>
      sign(
        merge(
          {
            aud: appIdUri,
            iss: entraV1Issuer,
            ...times(),
            acr: "1",
            amr: ["rsa", "mfa"],
            appid: randomUUID(),
            appidacr: "0",
            name: "Ada Lovelace",
            oid: userOid,
            roles: ["Orders.Read"],
            scp: "user_impersonation",
            sub: "pairwise-subject-ada",
            tid: tenant,
            unique_name: "ada@contoso.test",
            upn: "ada@contoso.test",
            ver: "1.0",
          },
          claims,
        ),
      ),
    async graphToken(claims) {
      // Graph tokens are signed over a hash of the nonce, not the nonce in the header: no other
      // party can verify them. Imitate that by signing one header and presenting another.
      const payload = merge(
        {
          aud: "00000003-0000-0000-c000-000000000000",
          iss: entraV1Issuer,
          ...times(),
          oid: userOid,
          scp: "User.Read",
          tid: tenant,
          ver: "1.0",
        },
        claims,
      );
      const signed = await sign(payload, { nonce: "hashed-nonce-value" });
      const [, body, signature] = signed.split(".");
      const header = Buffer.from(
        JSON.stringify({ typ: "JWT", nonce: "original-nonce-value", alg: "RS256", kid: current.kid }),
      ).toString("base64url");
      return `${header}.${body}.${signature}`;
    },
    oktaToken: (claims) =>
      sign(
        merge(
          {
            ver: 1,
            jti: `AT.${randomUUID()}`,
            iss: oktaIssuer,
            aud: "api://cosmosgate",
            ...times(),
            cid: "0oa1cosmosgate",
            uid: "00u1ada",
            scp: ["openid", "cosmos.read"],
            auth_time: now() - 60,
            sub: "ada@example.com",
            groups: ["Everyone", "analysts"],
            amr: ["pwd", "hwk"],
          },
          claims,
        ),
      ),
    githubToken: (claims) =>
      sign(
        merge(
          {
            jti: randomUUID(),
            sub: "repo:acme/shop:environment:production",
            aud: "https://github.com/acme",
            ref: "refs/heads/main",
            sha: "a".repeat(40),
            repository: "acme/shop",
            repository_owner: "acme",
            repository_id: "123456",
            repository_owner_id: "654321",
            run_id: "987654321",
            run_number: "42",
            run_attempt: "1",
            repository_visibility: "private",
            actor: "octocat",
            actor_id: "1",
            workflow: "deploy",
            event_name: "push",
            ref_type: "branch",
            environment: "production",
            job_workflow_ref: "acme/shop/.github/workflows/deploy.yml@refs/heads/main",
            runner_environment: "github-hosted",
            iss: githubIssuer,
            ...times(),
          },
          claims,
        ),
      ),
    async rollover(opts = {}) {
      const next = await newKey();
      current = next;
      keys = opts.dropOld ? [next] : [...keys, next];
      if (opts.publish !== false) idp.publish();
      return next.kid;
    },
    publish() {
      published = { keys: keys.map((k) => k.jwk) };
    },
    jwks: () => published,
    setMode(next) {
      mode = next;
      if (next !== "hang") {
        for (const res of hanging) res.destroy();
        hanging.clear();
      }
      if (next === "refuse") for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return idp;
}
