import { z } from "zod";
import { parseDuration } from "./duration.js";

/** A duration written as "30s", "10m", "24h", "7d" or a number of milliseconds; parsed to milliseconds. */
const duration = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({
          code: "custom",
          message: 'expected a duration such as "30s", "10m", "24h" or a number of milliseconds',
        });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: 'A duration: "500ms", "30s", "10m", "24h", "7d", or milliseconds.' });

const hostPort = z
  .string()
  .refine((v) => parseListen(v) !== undefined, { message: 'expected "HOST:PORT", e.g. "127.0.0.1:8081"' });

const url = z.url({ protocol: /^https?$/ });

const tlsFiles = z
  .strictObject({
    cert: z.string().meta({ description: "PEM certificate chain file." }),
    key: z.string().meta({ description: "PEM private key file (keep it mode 0600)." }),
  })
  .meta({ description: "A real certificate and key." });

const keyAuth = z
  .strictObject({
    type: z.literal("key"),
    env: z.string().optional().meta({ description: "Environment variable that holds the account key." }),
    file: z.string().optional().meta({ description: "File that holds the account key (mode 0600)." }),
  })
  .refine((v) => (v.env === undefined) !== (v.file === undefined), {
    message: "give exactly one of env or file for the account key",
  });

const managedIdentityAuth = z.strictObject({
  type: z.literal("managedIdentity"),
  clientId: z.string().optional().meta({ description: "Client ID of a user-assigned managed identity." }),
});

const timeouts = z
  .strictObject({
    connect: duration("5s").meta({ description: "Time allowed to connect to the upstream." }),
    request: duration("30s").meta({
      description: "Time allowed for the upstream's answer (headers and body).",
    }),
  })
  .prefault({});

const embeddedUpstream = z.strictObject({
  type: z.literal("embedded"),
  file: z.string().default("store.db").meta({
    description:
      "SQLite file of the embedded store, relative to stateDir (or absolute). Data survives restarts.",
  }),
  udfs: z.boolean().default(true).meta({
    description:
      "Run user-defined functions (JavaScript) in queries. They run in node:vm inside the gateway process, which is not a security sandbox: grant `manage` only to people you trust with the machine.",
  }),
  timeouts,
});

const cosmosUpstream = z.strictObject({
  type: z.literal("cosmos"),
  endpoint: url.meta({ description: "The account endpoint, e.g. https://ACCOUNT.documents.azure.com:443/" }),
  auth: z.discriminatedUnion("type", [keyAuth, managedIdentityAuth]),
  ca: z
    .string()
    .optional()
    .meta({ description: "Extra PEM CA file to trust for the upstream (e.g. the emulator's)." }),
  timeouts,
  connections: z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(64)
    .meta({ description: "Pooled upstream connections." }),
});

const optionalDuration = z
  .union([z.string(), z.number()])
  .optional()
  .transform((v, ctx) => {
    if (v === undefined) return undefined;
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: 'expected a duration such as "5s" or "10m"' });
      return z.NEVER;
    }
    return ms;
  });

const issuerKeys = z
  .strictObject({
    timeout: optionalDuration.meta({ description: 'Time allowed for one key-set fetch. Default "5s".' }),
    cooldown: optionalDuration.meta({
      description: 'Least time between two refetches for an unknown key ID. Default "30s".',
    }),
    maxAge: optionalDuration.meta({ description: 'Keys are refetched after this long. Default "10m".' }),
  })
  .optional()
  .meta({
    description:
      "How the issuer's remote keys are fetched and cached. When the issuer is unreachable, keys fetched before stay in use.",
  });

const claimValue = z.union([z.string(), z.number(), z.boolean()]);
const requirement = z.union([
  claimValue,
  z.strictObject({ equals: claimValue }),
  z.strictObject({ anyOf: z.array(z.union([z.string(), z.number()])).min(1) }),
  z.strictObject({ contains: z.union([z.string(), z.number()]) }),
  z.strictObject({ matches: z.string().min(1) }),
]);
const requirements = z.record(z.string().min(1), requirement).optional().meta({
  description:
    "Claim conditions every token must meet, by claim name: a value (equals), {anyOf: [...]}, {contains: V} or {matches: REGEX} (anchored). E.g. amr: {anyOf: [hwk, mfa]}, acrs: {contains: c1}, acr: phr.",
});

const algorithms = z.array(
  z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]),
);
const audience = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .meta({ description: "Accepted aud value(s): a token must name at least one." });
const groupsClaim = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .optional()
  .meta({
    description:
      "Claim(s) whose values become group:VALUE members in policy: roles, groups, wids or any claim.",
  });
const staticGroups = z
  .array(z.string().min(1))
  .optional()
  .meta({ description: "Groups every accepted token of this entry gets (group:NAME in policy)." });
const entryName = z.string().min(1).optional().meta({
  description: "Display name in messages, logs and the audit; entries sharing an issuer need one each.",
});
const claimCondition = z
  .union([
    z.string().min(1),
    z.array(z.string().min(1)).min(1),
    z.strictObject({ matches: z.string().min(1) }),
  ])
  .optional();

/** Fields the Entra ID and Okta presets share, with their defaults. */
const providerEntryFields = {
  groups: staticGroups,
  kind: z.enum(["user", "service"]).default("user"),
  require: requirements,
  algorithms: algorithms.min(1).default(["RS256"]),
  name: entryName,
  keys: issuerKeys,
};

/** An issuer described field by field. */
const customIssuer = z
  .strictObject({
    preset: z.literal("custom").optional(),
    issuer: z.string().min(1).meta({ description: "The exact `iss` value of tokens from this issuer." }),
    audience,
    discovery: z
      .union([url, z.literal(true)])
      .optional()
      .meta({
        description:
          "OpenID Connect discovery document URL (true: ISSUER/.well-known/openid-configuration); its jwks_uri gives the keys. The default when jwks is not given.",
      }),
    jwks: z
      .union([
        z.strictObject({ file: z.string().meta({ description: "A JWKS JSON file." }) }),
        z.strictObject({ url: url.meta({ description: "The issuer's JWKS URL." }) }),
      ])
      .optional(),
    algorithms: algorithms.min(1).default(["RS256", "ES256"]),
    subjectClaim: z.string().default("sub"),
    groupsClaim,
    rolesClaim: z.string().optional().meta({ description: "Older name of groupsClaim." }),
    groups: staticGroups,
    kind: z.enum(["user", "service"]).default("user"),
    require: requirements,
    name: entryName,
    keys: issuerKeys,
  })
  .refine((entry) => entry.jwks === undefined || entry.discovery === undefined, {
    message: "give jwks or discovery, not both",
    path: ["discovery"],
  });

/** Entra ID (Azure AD): v2.0 access tokens of one tenant, v1 ones only on request. */
const entraIssuer = z.strictObject({
  preset: z.literal("entra"),
  tenant: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, {
      message: "expected the tenant ID, a GUID (Entra admin center → Overview → Tenant ID)",
    })
    .meta({ description: "The directory (tenant) ID, a GUID." }),
  audience: audience.meta({
    description:
      "The API's application ID URI and/or client ID (v2.0 tokens carry the client ID, v1 tokens the URI).",
  }),
  acceptV1: z.boolean().default(false).meta({
    description:
      "Also accept v1 tokens (issuer https://sts.windows.net/TENANT/); prefer accessTokenAcceptedVersion: 2 in the app manifest.",
  }),
  authority: url.default("https://login.microsoftonline.com").meta({
    description:
      "Where discovery documents are fetched. Change it only for a sovereign cloud (with issuer) or a local test double.",
  }),
  issuer: z.string().min(1).optional().meta({
    description:
      "Override of the v2.0 issuer (sovereign clouds). Default https://login.microsoftonline.com/TENANT/v2.0.",
  }),
  subjectClaim: z
    .string()
    .default("oid")
    .meta({ description: "oid: the user's object ID, the same in every app." }),
  groupsClaim: groupsClaim.default(["roles", "groups"]),
  ...providerEntryFields,
});

/** Okta: a custom authorization server (the org server's access tokens are opaque). */
const oktaIssuer = z
  .strictObject({
    preset: z.literal("okta"),
    url: url.meta({
      description:
        "The custom authorization server's issuer URL, https://ORG.okta.com/oauth2/ID (e.g. .../oauth2/default).",
    }),
    audience: audience.meta({ description: "The authorization server's audience, e.g. api://cosmosgate." }),
    subjectClaim: z.string().default("sub"),
    groupsClaim: groupsClaim.default("groups"),
    ...providerEntryFields,
  })
  .superRefine((entry, ctx) => {
    if (!/\/oauth2\/(?!v1\/?$)[^/]+\/?$/.test(new URL(entry.url).pathname)) {
      ctx.addIssue({
        code: "custom",
        path: ["url"],
        message:
          "expected a custom authorization server's issuer URL, https://ORG.okta.com/oauth2/ID (the org authorization server's access tokens are opaque to APIs)",
      });
    }
  });

/** GitHub Actions OIDC: workflow jobs reach Cosmos DB with no stored secret. */
const githubActionsIssuer = z
  .strictObject({
    preset: z.literal("github-actions"),
    audience: audience.meta({
      description:
        "The audience the workflow asks for (core.getIDToken(AUDIENCE)), e.g. the data plane's URL.",
    }),
    repository: claimCondition.meta({
      description: "OWNER/REPO (or a list, or {matches: REGEX}). Required unless repositoryOwner is given.",
    }),
    repositoryOwner: claimCondition.meta({ description: "The owning organization or user (or a list)." }),
    ref: claimCondition.meta({ description: "e.g. refs/heads/main (or a list, or {matches: REGEX})." }),
    environment: claimCondition.meta({ description: "The deployment environment, e.g. production." }),
    jobWorkflowRef: claimCondition.meta({
      description: "A reusable workflow that must run the job: OWNER/REPO/.github/workflows/FILE.yml@REF.",
    }),
    issuer: url.default("https://token.actions.githubusercontent.com").meta({
      description: "GitHub Enterprise Server: https://HOST/_services/token.",
    }),
    groups: staticGroups,
    groupsClaim,
    require: requirements,
    name: entryName,
    keys: issuerKeys,
  })
  .superRefine((entry, ctx) => {
    if (entry.repository === undefined && entry.repositoryOwner === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["repository"],
        message:
          "expected the repository (OWNER/REPO) or repositoryOwner whose workflows may sign in: every GitHub repository gets tokens from the same issuer",
      });
    }
  });

const issuer = z.discriminatedUnion("preset", [customIssuer, entraIssuer, oktaIssuer, githubActionsIssuer]);

/** The `cosmosgate.yaml` schema. Every key has a default, so an empty file is valid. */
export const configSchema = z
  .strictObject({
    stateDir: z
      .string()
      .default("./.cosmosgate")
      .meta({ description: "Directory for SQLite state and audit, the dev CA and signing keys." }),
    controlPlane: z
      .strictObject({
        listen: hostPort.default("127.0.0.1:8080"),
        publicUrl: url.default("http://localhost:8080"),
      })
      .prefault({}),
    dataPlane: z
      .strictObject({
        listen: hostPort.default("127.0.0.1:8081"),
        publicUrl: url.default("https://localhost:8081"),
        tls: z
          .union([z.literal("auto"), tlsFiles])
          .default("auto")
          .meta({ description: '"auto" makes a local CA and certificate in stateDir; or {cert, key}.' }),
        maxBodyBytes: z
          .number()
          .int()
          .min(1024)
          .default(4 * 1024 * 1024),
      })
      .prefault({}),
    upstream: z.discriminatedUnion("type", [embeddedUpstream, cosmosUpstream]).prefault({ type: "embedded" }),
    identity: z
      .strictObject({
        rp: z
          .strictObject({
            id: z.string().default("localhost"),
            name: z.string().default("cosmosgate"),
            origins: z.array(z.string()).default(["http://localhost:8080"]),
          })
          .prefault({}),
        authenticators: z
          .strictObject({
            userVerification: z.enum(["required", "preferred", "discouraged"]).default("required"),
            requireDeviceBound: z.boolean().default(false).meta({
              description: "Refuse synced passkeys (backup-eligible credentials): hardware-bound keys only.",
            }),
            allowAaguids: z
              .array(z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i))
              .optional()
              .meta({
                description:
                  "Only these authenticator models (AAGUIDs), proven by attestation; needs metadataFile.",
              }),
            timeout: duration("5m")
              .refine((ms) => ms >= 5000 && ms <= 600_000, { message: "must be between 5s and 10m" })
              .meta({
                description:
                  "How long a passkey or security-key ceremony may take: the browser's time-out and the challenge's life.",
              }),
            metadataFile: z.string().optional().meta({
              description:
                "FIDO metadata statements (JSON array) for allowAaguids; read locally, never downloaded.",
            }),
          })
          .prefault({}),
        tokens: z
          .strictObject({
            ttl: duration("10m"),
            rotateEvery: duration("24h"),
            cacheSize: z.number().int().min(0).default(10_000),
            clockSkew: duration("30s"),
            jwksCache: duration("10m").meta({
              description:
                "How long verifiers may cache the JWKS: a new signing key is published this long before it signs.",
            }),
            keyEncryption: z
              .union([z.strictObject({ env: z.string() }), z.strictObject({ file: z.string() })])
              .optional()
              .meta({
                description:
                  "Key-encryption key (32 bytes, base64) for signing keys at rest: {env: VAR} or {file: PATH} (mode 0600).",
              }),
          })
          .prefault({}),
        sessions: z.strictObject({ maxAge: duration("12h") }).prefault({}),
        revocationPoll: duration("0ms").meta({
          description:
            "0: every data-plane request sees revocations made by other processes (about 3 us each); above 0, they are seen within this interval.",
        }),
        issuers: z.array(issuer).default([]),
      })
      .prefault({}),
    policy: z.string().default("./policy.yaml").meta({ description: "Path of the policy file." }),
    audit: z
      .strictObject({
        durability: z.enum(["strict", "buffered"]).default("strict").meta({
          description:
            "strict: a data-plane response leaves only after its audit record is committed and fsync'd. buffered: responses do not wait; records are committed within audit.bufferedDelay.",
        }),
        bufferedDelay: duration("200ms")
          .refine((ms) => ms > 0 && ms <= 60_000, { message: "must be between 1ms and 60s" })
          .meta({ description: "buffered: the bound within which a record is committed and fsync'd." }),
        maxQueue: z.number().int().min(1).default(10_000).meta({
          description:
            "Audit records waiting to be stored beyond which the audit cannot keep up: new data-plane requests are refused (or, with onFailure: open, served without waiting for their records).",
        }),
        onFailure: z.enum(["closed", "open"]).default("closed").meta({
          description:
            "When the audit cannot record (disk failed, store locked, queue full): closed answers 503 without contacting the upstream; open serves the request anyway, says so in the log and in metrics.",
        }),
        checkpoints: z
          .strictObject({
            every: z.number().int().min(1).default(1000).meta({
              description: "Write a signed checkpoint of the audit chain after this many new records...",
            }),
            interval: duration("60s")
              .refine((ms) => ms > 0, { message: "must be longer than 0" })
              .meta({
                description: "...or after this long, whichever comes first (only when records were added).",
              }),
          })
          .prefault({})
          .meta({ description: "Signed checkpoints of the audit chain, published at /audit/checkpoints." }),
        retention: z
          .union([z.string(), z.number()])
          .default("0")
          .transform((v, ctx) => {
            if (v === 0 || v === "0") return 0;
            // A bare number would be milliseconds: too easy a way to delete the whole trail.
            const ms = typeof v === "string" && !/^\s*[\d.]+\s*$/.test(v) ? parseDuration(v) : undefined;
            if (ms === undefined || ms <= 0) {
              ctx.addIssue({
                code: "custom",
                message: 'expected "0" (keep forever) or a duration with its unit, such as "90d" or "400d"',
              });
              return z.NEVER;
            }
            return ms;
          })
          .meta({
            description:
              'Prune audit records older than this (up to the newest checkpoint older than it, kept as the anchor). "0": keep forever.',
          }),
      })
      .prefault({}),
    agents: z
      .strictObject({
        maxLifetime: duration("7d")
          .refine((ms) => ms >= 60_000, { message: "must be at least 1m" })
          .meta({
            description:
              "The longest lifetime a person may give an agent grant (grants default to 8h, or this when shorter).",
          }),
        usageFlush: duration("1s")
          .refine((ms) => ms >= 10 && ms <= 60_000, { message: "must be between 10ms and 60s" })
          .meta({
            description:
              "How often agents' counted usage (requests, request charge) is written to stateDir/agents.db; budgets can overshoot by what other gateway processes counted in this time.",
          }),
      })
      .prefault({})
      .meta({ description: "AI agents acting for people under grants they confirm with a tap." }),
    approvals: z
      .strictObject({
        holdSeconds: z.number().int().min(0).max(300).default(0).meta({
          description:
            "Hold a request that needs approval open this many seconds, waiting for the approval, before answering 403 (0: answer at once).",
        }),
        webhook: url.optional().meta({
          description:
            "POST a JSON summary of each new pending approval here (id, url, operation without its body, person, agent). Failures are logged, never blocking.",
        }),
        webhookTimeout: duration("5s")
          .refine((ms) => ms > 0 && ms <= 60_000, { message: "must be between 1ms and 60s" })
          .meta({ description: "Time allowed for one webhook call." }),
        maxPending: z.number().int().min(1).default(100).meta({
          description:
            "Pending approvals one person may have at a time; a request needing one more is refused until some are decided or expire.",
        }),
      })
      .prefault({})
      .meta({ description: "Approvals asked for by policy approvals: rules." }),
    log: z
      .strictObject({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      })
      .prefault({}),
  })
  .meta({ title: "cosmosgate configuration", description: "cosmosgate.yaml" });

/** The validated configuration, with defaults applied and paths as written. */
export type Config = z.output<typeof configSchema>;
export type IssuerConfigEntry = Config["identity"]["issuers"][number];

/** Splits "HOST:PORT" (IPv6 as "[::1]:8081"). */
export function parseListen(value: string): { host: string; port: number } | undefined {
  const colon = value.lastIndexOf(":");
  if (colon <= 0) return undefined;
  let host = value.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const portText = value.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535 || host.length === 0) return undefined;
  return { host, port };
}
