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

const issuer = z.strictObject({
  issuer: z.string().min(1).meta({ description: "The exact `iss` value of tokens from this issuer." }),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  jwks: z.union([
    z.strictObject({ file: z.string().meta({ description: "A JWKS JSON file." }) }),
    z.strictObject({ url: url.meta({ description: "The issuer's JWKS URL." }) }),
  ]),
  algorithms: z
    .array(z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]))
    .min(1)
    .default(["RS256", "ES256"]),
  subjectClaim: z.string().default("sub"),
  rolesClaim: z.string().default("roles"),
  kind: z.enum(["user", "service"]).default("user"),
  name: z.string().optional(),
});

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
