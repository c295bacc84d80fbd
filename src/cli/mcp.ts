import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import { rootCertificates } from "node:tls";
import type { CosmosClient } from "@azure/cosmos";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Command } from "commander";
import { decodeJwt } from "jose";
import { z } from "zod";
import {
  AGENT_NAME,
  type AgentApprovalStatus,
  APPROVAL_REQUIRED_SUBSTATUS,
  OUTSIDE_GRANT_SUBSTATUS,
} from "../agents/contract.js";
import { agentKeyPath } from "../client/agentKey.js";
import { normalizeGatewayUrl, secureUrl } from "../client/urls.js";
import { CliError, type Io } from "./io.js";

/** Options of `cosmosgate mcp`. */
export interface McpOptions {
  agent?: string;
  grant?: string;
  /** The control plane (token endpoint); default $COSMOSGATE_GATEWAY, else http://localhost:8080. */
  gateway?: string;
  /** The data plane; default the `aud` of the agent's first token. */
  endpoint?: string;
  /** The agent's private JWK; default $XDG_CONFIG_HOME/cosmosgate/agents/NAME.jwk. */
  key?: string;
  /** A PEM file of CA certificates to trust for the data plane (added to the system's). */
  ca?: string;
  /** Seconds one request to the gateway may take (default 45). */
  timeout?: string;
}

/** The access token source the server uses: `AgentCredential` in production. */
export interface TokenSource {
  getToken(
    scopes?: string | string[],
    options?: unknown,
  ): Promise<{ token: string; expiresOnTimestamp: number }>;
}

/** What the tools need: the settings, and how to get tokens. */
export interface McpContext {
  agent: string;
  grant: string;
  gateway: string;
  /** Fixed data-plane URL, else the token's audience. */
  endpoint?: string;
  credential: TokenSource;
  /** Extra CA certificates (PEM) to trust on the data plane, besides the system's and NODE_EXTRA_CA_CERTS. */
  ca?: string;
  timeoutMs: number;
  /** Where diagnostics go (stderr): never tokens, keys or document bodies. */
  log(line: string): void;
}

const DEFAULT_GATEWAY = "http://localhost:8080";
const DEFAULT_TIMEOUT_S = 45;
const VERSION = "0.1.0";

/** `cosmosgate mcp`: a Model Context Protocol server over stdio, acting for a person through an agent grant. */
export function registerMcp(program: Command, io: Io): void {
  program
    .command("mcp")
    .description(
      "run a Model Context Protocol server (stdio) that reaches Cosmos DB through the gateway as an agent",
    )
    .option(
      "--agent <name>",
      "the agent's name, as in its grant (default: $COSMOSGATE_AGENT; its key: cosmosgate agent keygen NAME)",
    )
    .option("--grant <id>", "the grant the person confirmed for this agent (default: $COSMOSGATE_GRANT)")
    .option(
      "--gateway <url>",
      `the gateway's control-plane URL, where tokens come from (default: $COSMOSGATE_GATEWAY, else ${DEFAULT_GATEWAY})`,
    )
    .option("--endpoint <url>", "the gateway's data-plane URL (default: the audience of the agent's tokens)")
    .option("--key <file>", "the agent's private key (default: $XDG_CONFIG_HOME/cosmosgate/agents/NAME.jwk)")
    .option(
      "--ca <file>",
      "PEM CA certificate(s) to trust for the data plane, e.g. cosmosgate dev's <stateDir>/tls/ca.pem (NODE_EXTRA_CA_CERTS works too)",
    )
    .option(
      "--timeout <seconds>",
      `how long one request to the gateway may take (default ${DEFAULT_TIMEOUT_S}; raise it with approvals.holdSeconds)`,
    )
    .addHelpText(
      "after",
      "\nSpeaks MCP on stdin/stdout (logs go to stderr). Tools: list_databases, list_containers, query_items,\n" +
        "read_item, create_item, upsert_item, patch_item, delete_item, approval_status. Every request carries\n" +
        "the agent's short-lived token: the person's identity, the agent's name and the grant; the gateway\n" +
        "allows only what both the person and the grant allow, and operations that need a person's approval\n" +
        "come back with the approval's URL for the person to tap.\n" +
        "Example (an MCP host's configuration):\n" +
        '  {"command": "cosmosgate", "args": ["mcp", "--agent", "reporter", "--grant", "gr_...",\n' +
        '   "--gateway", "http://localhost:8080", "--ca", ".cosmosgate/tls/ca.pem"]}',
    )
    .action(async (opts: McpOptions) => {
      await runMcp(opts, io);
    });
}

/**
 * Runs the MCP server on this process's stdin/stdout until stdin closes or a stop signal arrives.
 *
 * @throws {CliError} exit code 2 for bad options (before anything is written to stdout).
 */
export async function runMcp(
  opts: McpOptions,
  io: Io,
  deps: {
    env?: Record<string, string | undefined>;
    stdin?: NodeJS.ReadableStream;
    stdout?: NodeJS.WritableStream;
  } = {},
): Promise<void> {
  const env = deps.env ?? process.env;
  // Only MCP messages may reach stdout: anything a library prints goes to stderr instead.
  keepStdoutForMcp();
  const settings = resolveSettings(opts, env);
  const log = (line: string) => io.err(`cosmosgate mcp: ${line}\n`);
  const { AgentCredential } = await import("../client/agentCredential.js");
  const credential = new AgentCredential({
    gateway: settings.gateway,
    grant: settings.grant,
    keyFile: settings.keyFile,
  });
  const ctx: McpContext = {
    agent: settings.agent,
    grant: settings.grant,
    gateway: settings.gateway,
    endpoint: settings.endpoint,
    credential,
    ca: settings.ca,
    timeoutMs: settings.timeoutMs,
    log,
  };
  const { server, close } = await createMcpServer(ctx);
  const { StdioServerTransport } = await import("@modelcontextprotocol/sdk/server/stdio.js");
  const stdin = (deps.stdin ?? process.stdin) as NodeJS.ReadStream;
  const stdout = (deps.stdout ?? process.stdout) as NodeJS.WriteStream;
  const transport = new StdioServerTransport(stdin, stdout);
  const closed = new Promise<string>((resolve) => {
    transport.onclose = () => resolve("closed");
    stdin.once("end", () => resolve("stdin closed"));
    stdin.once("close", () => resolve("stdin closed"));
    // The client went away mid-answer (EPIPE): nobody is left to serve.
    stdout.once("error", (err: Error) => resolve(`stdout: ${err.message}`));
  });
  // A stray rejection must not take the server down while the model waits for an answer.
  const onRejection = (err: unknown) => log(`unexpected: ${(err as Error)?.message ?? String(err)}`);
  process.on("unhandledRejection", onRejection);
  await server.connect(transport);
  log(
    `serving agent ${settings.agent} (grant ${settings.grant}) through ${settings.gateway}` +
      `${settings.endpoint ? `, data plane ${settings.endpoint}` : ""}; MCP on stdio`,
  );
  // A key problem is worth knowing at once (the tools report it too, and retry reading the file).
  credential.thumbprint().then(
    (kid) => log(`agent key ${settings.keyFile} (thumbprint ${kid})`),
    (err: Error) => log(`warning: ${err.message}`),
  );
  const why = await Promise.race([closed, io.waitForStop()]);
  log(`stopping (${why})`);
  await server.close().catch(() => {});
  await close();
  process.off("unhandledRejection", onRejection);
}

/** Validated settings of `cosmosgate mcp`. */
export interface McpSettings {
  agent: string;
  grant: string;
  gateway: string;
  endpoint?: string;
  keyFile: string;
  ca?: string;
  timeoutMs: number;
}

/**
 * Checks the options and fills in the defaults.
 *
 * @throws {CliError} exit code 2 naming the option and what to give instead.
 */
export function resolveSettings(
  opts: McpOptions,
  env: Record<string, string | undefined> = process.env,
): McpSettings {
  const agent = opts.agent ?? env.COSMOSGATE_AGENT;
  if (!agent) throw new CliError("--agent NAME is required: the agent's name, as in its grant", 2);
  if (!AGENT_NAME.test(agent)) {
    throw new CliError(
      `--agent ${JSON.stringify(agent)} is not an agent name: lower-case letters, digits, '-' and '_', 1–64 characters`,
      2,
    );
  }
  const grant = opts.grant ?? env.COSMOSGATE_GRANT;
  if (!grant) {
    throw new CliError(
      "--grant ID is required (or $COSMOSGATE_GRANT): the grant the person created for this agent in the console",
      2,
    );
  }
  const gateway = usageErrors(() =>
    normalizeGatewayUrl(opts.gateway ?? (env.COSMOSGATE_GATEWAY || DEFAULT_GATEWAY)),
  );
  let endpoint: string | undefined;
  if (opts.endpoint !== undefined) {
    endpoint = usageErrors(() => secureUrl(opts.endpoint, "the data-plane URL (--endpoint)")).href.replace(
      /\/+$/,
      "",
    );
    if (!endpoint.startsWith("https:")) {
      throw new CliError("--endpoint must be the gateway's https:// data-plane URL", 2);
    }
  }
  const keyFile = opts.key ?? agentKeyPath(agent, { env });
  let ca: string | undefined;
  if (opts.ca !== undefined) {
    try {
      ca = readFileSync(opts.ca, "utf8");
    } catch (err) {
      throw new CliError(`cannot read --ca ${opts.ca}: ${(err as Error).message}`, 2);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) {
      throw new CliError(`--ca ${opts.ca} holds no PEM certificate`, 2);
    }
  }
  let timeoutMs = DEFAULT_TIMEOUT_S * 1000;
  if (opts.timeout !== undefined) {
    const s = Number(opts.timeout);
    if (!Number.isFinite(s) || s <= 0 || s > 3600) {
      throw new CliError("--timeout must be a number of seconds between 0 and 3600", 2);
    }
    timeoutMs = Math.round(s * 1000);
  }
  return { agent, grant, gateway, endpoint, keyFile, ca, timeoutMs };
}

function usageErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

/** Routes console.log/info/debug/warn to stderr: stdout carries MCP messages only. */
function keepStdoutForMcp(): void {
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
}

// ---------------------------------------------------------------------------------------------
// The server and its tools

/** A JSON value as a partition key: one value, or an array of values for hierarchical keys. */
const pkScalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const partitionKeySchema = z
  .union([pkScalar, z.array(pkScalar).min(1).max(3)])
  .describe(
    "The item's partition key value: the value of the container's partition key property in the item " +
      '(e.g. "c1" when the container is partitioned on /customer and the item has "customer": "c1"); ' +
      "an array of values for a hierarchical partition key. list_containers shows each container's partition key paths.",
  );
const databaseSchema = z.string().min(1).max(255).describe("The database id (see list_databases).");
const containerSchema = z.string().min(1).max(255).describe("The container id (see list_containers).");
const idSchema = z.string().min(1).max(1023).describe("The item's id.");
const itemSchema = z
  .looseObject({ id: z.string().min(1).max(1023) })
  .describe(
    "The whole JSON document. It must have a string `id` and the container's partition key property " +
      "(list_containers shows the partition key paths).",
  );

const APPROVAL_NOTE =
  "The person may have required approval for some operations: then nothing happens yet and the result says " +
  "so, with an approval ID and URL; tell the person, and after they approve call this tool again with exactly " +
  "the same arguments.";

const INSTRUCTIONS =
  "These tools reach an Azure Cosmos DB account through cosmosgate, acting for a person through a grant they " +
  "gave this agent: a limited set of actions on some databases/containers (and possibly partition keys), for a " +
  "limited time, possibly with a request budget. Every call is audited under the person's and the agent's names.\n" +
  "- Start with list_databases and list_containers to learn ids and partition keys; prefer query_items with " +
  "parameters (@name placeholders) over building SQL from values.\n" +
  "- Writes (create_item, upsert_item, patch_item, delete_item) may need a person's approval: the tool then " +
  "returns APPROVAL REQUIRED with an approval ID and URL and changes nothing. Give the person the URL and ask " +
  "them to review and approve the operation there with their security key; once they say it is approved, call " +
  "the same tool again with exactly the same arguments (an approval covers one exact operation, once). " +
  "approval_status asks the gateway whether an approval is still pending, approved (then retry the same call), " +
  "denied, expired or used.\n" +
  "- An error saying the operation is outside the grant will not succeed by retrying: tell the person what you " +
  "tried; only they can give the agent a wider grant.\n" +
  "- An error about the agent's token (grant revoked, expired or exhausted) or an unreachable gateway also needs " +
  "the person; do not loop on it.";

/** How many approvals this server remembers (approval_status names the tool call each was for). */
const MAX_REMEMBERED_APPROVALS = 500;

/** A tool's callback result. */
type Result = CallToolResult;

/** An approval seen by this server: where to approve it, and for which call. */
interface SeenApproval {
  id: string;
  url: string | null;
  tool: string;
  target: string;
  at: string;
  message: string;
}

/**
 * Builds the MCP server with its tools (not connected). `close` releases the Cosmos DB client.
 *
 * @example const { server } = await createMcpServer(ctx); await server.connect(transport);
 */
export async function createMcpServer(
  ctx: McpContext,
): Promise<{ server: McpServer; close(): Promise<void> }> {
  const { McpServer } = await import("@modelcontextprotocol/sdk/server/mcp.js");
  const server = new McpServer(
    { name: "cosmosgate", title: "Cosmos DB through cosmosgate", version: VERSION },
    { instructions: INSTRUCTIONS },
  );
  const data = new DataPlane(ctx);
  const approvals = new Map<string, SeenApproval>();

  /** Runs one tool call: logs it (never bodies), maps failures to tool errors, approvals to a normal result. */
  async function run(tool: string, target: string, fn: () => Promise<Result>): Promise<Result> {
    const started = Date.now();
    try {
      const result = await fn();
      ctx.log(`${tool} ${target}: ok (${Date.now() - started} ms)`);
      return result;
    } catch (err) {
      const approval = approvalOf(err);
      if (approval?.id === null) {
        // Needs approval, but the gateway made none (e.g. too many pending): the person must act first.
        ctx.log(`${tool} ${target}: needs approval; none could be requested`);
        return {
          isError: true,
          content: [
            {
              type: "text",
              text:
                `This ${tool} needs a person's approval, and the gateway could not ask for one now: ${approval.message}\n` +
                "Tell the person; do not retry until they say so.",
            },
          ],
        };
      }
      if (approval?.id) {
        const id = approval.id;
        const seen: SeenApproval = {
          id,
          url: approval.url ?? approvals.get(id)?.url ?? null,
          tool,
          target,
          at: new Date().toISOString(),
          message: approval.message,
        };
        approvals.delete(seen.id);
        approvals.set(seen.id, seen);
        // Remember the latest ones only (a Map iterates oldest first).
        if (approvals.size > MAX_REMEMBERED_APPROVALS)
          approvals.delete(approvals.keys().next().value as string);
        ctx.log(`${tool} ${target}: waiting for approval ${seen.id}`);
        return approvalResult(tool, seen);
      }
      const text = describeFailure(err, ctx, data.endpointForErrors());
      ctx.log(`${tool} ${target}: failed (${Date.now() - started} ms): ${firstLine(text)}`);
      return { isError: true, content: [{ type: "text", text }] };
    }
  }

  server.registerTool(
    "list_databases",
    {
      title: "List databases",
      description:
        "Lists the ids of the Cosmos DB databases the agent can see through the gateway. Takes no parameters. " +
        "If the grant covers only some containers this may be refused; then ask the person which database to use.",
      inputSchema: {},
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (_args, extra) =>
      run("list_databases", "/", async () => {
        const client = await data.client();
        const res = await client.databases.readAll({ abortSignal: extra.signal }).fetchAll();
        const ids = res.resources.map((d) => d.id);
        return json({ databases: ids, requestCharge: res.requestCharge });
      }),
  );

  server.registerTool(
    "list_containers",
    {
      title: "List containers",
      description:
        "Lists the containers of a database with their partition key paths (e.g. /customer): every item " +
        "operation needs the item's value at that path as its partitionKey.",
      inputSchema: { database: databaseSchema },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ database }, extra) =>
      run("list_containers", `/dbs/${database}`, async () => {
        const client = await data.client();
        const res = await client
          .database(database)
          .containers.readAll({ abortSignal: extra.signal })
          .fetchAll();
        return json({
          database,
          containers: res.resources.map((c) => ({
            id: c.id,
            partitionKeyPaths: c.partitionKey?.paths ?? [],
            ...(c.partitionKey?.kind === "MultiHash" ? { hierarchicalPartitionKey: true } : {}),
          })),
          requestCharge: res.requestCharge,
        });
      }),
  );

  server.registerTool(
    "query_items",
    {
      title: "Query items",
      description:
        "Runs a Cosmos DB NoSQL query (SELECT ... FROM c WHERE ...) on one container and returns the matching " +
        "items as JSON, at most maxItems of them, with a continuationToken when there are more (pass it back to " +
        "get the next page). Put values in `parameters` (@name placeholders) rather than in the query text. " +
        "Give `partitionKey` to query one partition only (cheaper, and required if the grant limits the agent " +
        `to some partition keys). ${APPROVAL_NOTE}`,
      inputSchema: {
        database: databaseSchema,
        container: containerSchema,
        query: z
          .string()
          .min(1)
          .max(262_144)
          .describe('The query, e.g. "SELECT * FROM c WHERE c.status = @status ORDER BY c._ts DESC".'),
        parameters: z
          .array(
            z.object({
              name: z
                .string()
                .regex(/^@[A-Za-z_][A-Za-z0-9_]*$/)
                .describe('The placeholder, with its @, e.g. "@status".'),
              value: z.unknown().describe("Its JSON value."),
            }),
          )
          .max(256)
          .optional()
          .describe('Query parameters, e.g. [{"name": "@status", "value": "open"}].'),
        partitionKey: partitionKeySchema.optional(),
        maxItems: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .optional()
          .describe("The most items to return in this call (default 100)."),
        continuationToken: z
          .string()
          .max(16_384)
          .optional()
          .describe("The continuationToken of a previous call with the same query, for the next page."),
      },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args, extra) =>
      run("query_items", `/dbs/${args.database}/colls/${args.container}`, async () => {
        const client = await data.client();
        const maxItems = args.maxItems ?? 100;
        const iterator = client
          .database(args.database)
          .container(args.container)
          .items.query(
            { query: args.query, parameters: (args.parameters ?? []) as { name: string; value: never }[] },
            {
              maxItemCount: maxItems,
              abortSignal: extra.signal,
              ...(args.partitionKey !== undefined ? { partitionKey: args.partitionKey as never } : {}),
              ...(args.continuationToken ? { continuationToken: args.continuationToken } : {}),
            },
          );
        const items: unknown[] = [];
        let requestCharge = 0;
        let continuationToken: string | undefined;
        // One page of at most maxItems items (skipping the empty pages a cross-partition query may give).
        for (let pages = 0; pages < 50 && iterator.hasMoreResults(); pages++) {
          const page = await iterator.fetchNext();
          items.push(...page.resources.map(withoutSystemLinks));
          requestCharge += page.requestCharge ?? 0;
          continuationToken = page.continuationToken;
          if (items.length > 0) break;
        }
        const more = iterator.hasMoreResults();
        return json({
          items,
          count: items.length,
          ...(more && continuationToken ? { continuationToken } : {}),
          ...(more && !continuationToken ? { note: "more results exist; narrow the query to see them" } : {}),
          requestCharge: round(requestCharge),
        });
      }),
  );

  server.registerTool(
    "read_item",
    {
      title: "Read an item",
      description:
        "Reads one item by its id and partition key (a point read: the cheapest way to get one document). " +
        "Returns the document, with its _etag and _ts, or says it does not exist.",
      inputSchema: {
        database: databaseSchema,
        container: containerSchema,
        id: idSchema,
        partitionKey: partitionKeySchema,
      },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args, extra) =>
      run("read_item", itemPath(args), async () => {
        const client = await data.client();
        const res = await client
          .database(args.database)
          .container(args.container)
          .item(args.id, args.partitionKey as never)
          .read({ abortSignal: extra.signal });
        if (res.statusCode === 404 || res.resource === undefined) {
          return {
            isError: true,
            content: [
              {
                type: "text",
                text:
                  `No item with id ${JSON.stringify(args.id)} and partition key ${JSON.stringify(args.partitionKey)} ` +
                  `in ${args.database}/${args.container} (404). Check the id and the partition key value.`,
              },
            ],
          };
        }
        return json({ item: withoutSystemLinks(res.resource), requestCharge: res.requestCharge });
      }),
  );

  server.registerTool(
    "create_item",
    {
      title: "Create an item",
      description:
        "Creates a new item (JSON document) in a container; fails with a conflict if an item with the same id " +
        `and partition key exists (use upsert_item to replace it). Writes data. ${APPROVAL_NOTE}`,
      inputSchema: { database: databaseSchema, container: containerSchema, item: itemSchema },
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    async (args, extra) =>
      run("create_item", `/dbs/${args.database}/colls/${args.container}/docs/${args.item.id}`, async () => {
        const client = await data.client();
        const res = await client
          .database(args.database)
          .container(args.container)
          .items.create(args.item, { abortSignal: extra.signal });
        return json({ created: withoutSystemLinks(res.resource), requestCharge: res.requestCharge });
      }),
  );

  server.registerTool(
    "upsert_item",
    {
      title: "Create or replace an item",
      description:
        "Creates an item, or replaces the whole existing item with the same id and partition key (fields not " +
        `given are removed; use patch_item to change some fields). Writes data. ${APPROVAL_NOTE}`,
      inputSchema: { database: databaseSchema, container: containerSchema, item: itemSchema },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args, extra) =>
      run("upsert_item", `/dbs/${args.database}/colls/${args.container}/docs/${args.item.id}`, async () => {
        const client = await data.client();
        const res = await client
          .database(args.database)
          .container(args.container)
          .items.upsert(args.item, { abortSignal: extra.signal });
        return json({
          [res.statusCode === 201 ? "created" : "replaced"]: withoutSystemLinks(res.resource),
          requestCharge: res.requestCharge,
        });
      }),
  );

  server.registerTool(
    "patch_item",
    {
      title: "Patch an item",
      description:
        "Changes some fields of one item in place with JSON Patch-like operations (at most 10): add, set, " +
        "replace, remove, incr (add a number), move. Paths are JSON pointers like /status or /items/0/qty. " +
        "`condition` (e.g. \"FROM c WHERE c.status = 'open'\") makes the patch apply only when it holds. " +
        `Returns the patched item. Writes data. ${APPROVAL_NOTE}`,
      inputSchema: {
        database: databaseSchema,
        container: containerSchema,
        id: idSchema,
        partitionKey: partitionKeySchema,
        operations: z
          .array(
            z.object({
              op: z.enum(["add", "set", "replace", "remove", "incr", "move"]).describe("The operation."),
              path: z
                .string()
                .min(1)
                .startsWith("/")
                .describe("The JSON pointer it applies to, e.g. /status."),
              value: z
                .unknown()
                .optional()
                .describe(
                  "The value for add, set, replace; the number to add for incr; none for remove, move.",
                ),
              from: z.string().startsWith("/").optional().describe("For move: the path to move from."),
            }),
          )
          .min(1)
          .max(10)
          .describe(
            'The operations, applied in order, e.g. [{"op": "set", "path": "/status", "value": "paid"}].',
          ),
        condition: z
          .string()
          .max(8192)
          .optional()
          .describe('Optional filter: the patch applies only if the item matches ("FROM c WHERE ...").'),
      },
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    async (args, extra) =>
      run("patch_item", itemPath(args), async () => {
        for (const op of args.operations) {
          if (op.op === "move" && op.from === undefined)
            throw new ToolInputError("a move operation needs `from`");
          if (op.op !== "remove" && op.op !== "move" && op.value === undefined) {
            throw new ToolInputError(`a ${op.op} operation needs a \`value\``);
          }
        }
        const client = await data.client();
        const res = await client
          .database(args.database)
          .container(args.container)
          .item(args.id, args.partitionKey as never)
          .patch(
            (args.condition
              ? { operations: args.operations, condition: args.condition }
              : args.operations) as never,
            { abortSignal: extra.signal },
          );
        return json({ patched: withoutSystemLinks(res.resource), requestCharge: res.requestCharge });
      }),
  );

  server.registerTool(
    "delete_item",
    {
      title: "Delete an item",
      description:
        "Deletes one item by its id and partition key. This cannot be undone. Deletes often need the person's " +
        "approval: then nothing is deleted yet and the result gives an approval ID and URL; tell the person, and " +
        "after they approve call delete_item again with exactly the same arguments.",
      inputSchema: {
        database: databaseSchema,
        container: containerSchema,
        id: idSchema,
        partitionKey: partitionKeySchema,
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args, extra) =>
      run("delete_item", itemPath(args), async () => {
        const client = await data.client();
        const res = await client
          .database(args.database)
          .container(args.container)
          .item(args.id, args.partitionKey as never)
          .delete({ abortSignal: extra.signal });
        return json({
          deleted: { id: args.id, partitionKey: args.partitionKey },
          requestCharge: res.requestCharge,
        });
      }),
  );

  server.registerTool(
    "approval_status",
    {
      title: "Approval status",
      description:
        "Asks the gateway for the state of an approval that a previous tool call returned (by its ID): pending " +
        "(with how many of the needed approvals it has, and the URL where the person approves it), approved (call " +
        "the original tool again now with exactly the same arguments: it succeeds once), denied, expired or used. " +
        "Approving needs the person's tap on their security key at the URL; the agent cannot approve.",
      inputSchema: {
        id: z.string().min(1).max(200).describe("The approval ID from an APPROVAL REQUIRED result."),
      },
      annotations: { readOnlyHint: true, idempotentHint: false, openWorldHint: false },
    },
    async ({ id }, extra) => {
      const seen = approvals.get(id);
      const started = Date.now();
      const result = await approvalStatus(ctx, id, seen, extra.signal);
      ctx.log(
        `approval_status ${id}: ${result.isError ? "failed" : "ok"} (${Date.now() - started} ms): ${textOf(result).split(/[: ]/, 1)[0]}`,
      );
      return result;
    },
  );

  return { server, close: () => data.close() };
}

/** A tool argument combination the schema cannot express. */
class ToolInputError extends Error {}

/** The lazily made Cosmos DB client: nothing is contacted until the first tool call. */
class DataPlane {
  readonly #ctx: McpContext;
  #client?: Promise<CosmosClient>;
  #endpoint?: string;
  #agent?: HttpsAgent;

  constructor(ctx: McpContext) {
    this.#ctx = ctx;
    this.#endpoint = ctx.endpoint;
  }

  endpointForErrors(): string | undefined {
    return this.#endpoint;
  }

  client(): Promise<CosmosClient> {
    if (this.#client === undefined) {
      this.#client = this.#make();
      // A failure (gateway down, grant refused) must not stick: the next call tries again.
      this.#client.catch(() => {
        this.#client = undefined;
      });
    }
    return this.#client;
  }

  async #make(): Promise<CosmosClient> {
    const credential = new CheckedCredential(this.#ctx.credential);
    let endpoint = this.#endpoint;
    if (endpoint === undefined) {
      const { token } = await credential.getToken();
      endpoint = audienceOf(token);
      this.#endpoint = endpoint;
    }
    let CosmosClient: typeof import("@azure/cosmos").CosmosClient;
    try {
      ({ CosmosClient } = await import("@azure/cosmos"));
    } catch (err) {
      throw new McpSetupError(
        `it needs the @azure/cosmos package, which cannot be loaded (${(err as Error).message}); install it beside cosmosgate: npm install @azure/cosmos`,
      );
    }
    this.#agent ??= new HttpsAgent({
      keepAlive: true,
      ...(this.#ctx.ca ? { ca: [...rootCertificates, ...extraCaFromEnv(), this.#ctx.ca] } : {}),
    });
    return new CosmosClient({
      endpoint,
      aadCredentials: credential,
      agent: this.#agent,
      userAgentSuffix: "cosmosgate-mcp",
      connectionPolicy: {
        enableEndpointDiscovery: false,
        requestTimeout: this.#ctx.timeoutMs,
        retryOptions: {
          maxRetryAttemptCount: 3,
          fixedRetryIntervalInMilliseconds: 0,
          maxWaitTimeInSeconds: Math.max(1, Math.floor(this.#ctx.timeoutMs / 1000)),
        },
      },
    });
  }

  async close(): Promise<void> {
    const pending = this.#client;
    this.#client = undefined;
    if (pending) {
      try {
        (await pending).dispose();
      } catch {
        // never made: nothing to release
      }
    }
    this.#agent?.destroy();
  }
}

/** NODE_EXTRA_CA_CERTS is dropped when an explicit `ca` is given, so it is added back. */
function extraCaFromEnv(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, "utf8")];
  } catch {
    return [];
  }
}

/** The data plane an agent token is for (its `aud`). */
function audienceOf(token: string): string {
  let aud: unknown;
  try {
    aud = decodeJwt(token).aud;
  } catch {
    aud = undefined;
  }
  const first = Array.isArray(aud) ? aud[0] : aud;
  if (typeof first !== "string" || !/^https:\/\//.test(first)) {
    throw new McpSetupError(
      "the agent's token does not name the gateway's data plane (aud); start cosmosgate mcp with --endpoint https://HOST:PORT",
    );
  }
  return first.replace(/\/+$/, "");
}

/** A setup problem to report as it is. */
class McpSetupError extends Error {}

/** A failure to get the agent's token, with the cause. */
export class AgentTokenError extends Error {
  constructor(cause: unknown) {
    super((cause as Error)?.message ?? String(cause), { cause });
    this.name = "AgentTokenError";
  }
}

/** Wraps the credential so that its failures are told apart from the data plane's. */
class CheckedCredential {
  readonly #inner: TokenSource;
  constructor(inner: TokenSource) {
    this.#inner = inner;
  }
  async getToken(
    scopes?: string | string[],
    options?: unknown,
  ): Promise<{ token: string; expiresOnTimestamp: number }> {
    try {
      return await this.#inner.getToken(scopes, options);
    } catch (err) {
      throw new AgentTokenError(err);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Results and errors

function json(value: unknown): Result {
  return { content: [{ type: "text", text: JSON.stringify(value) }] };
}

/** System properties that only address the resource inside the service (_etag and _ts are kept). */
const SYSTEM_LINKS = ["_rid", "_self", "_attachments"];

/** A document as the model sees it: without _rid, _self and _attachments (noise to it). */
function withoutSystemLinks(doc: unknown): unknown {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return doc;
  const copy: Record<string, unknown> = { ...(doc as Record<string, unknown>) };
  for (const k of SYSTEM_LINKS) delete copy[k];
  return copy;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function itemPath(a: { database: string; container: string; id: string }): string {
  return `/dbs/${a.database}/colls/${a.container}/docs/${a.id}`;
}

function firstLine(text: string): string {
  const line = text.split("\n", 1)[0];
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** An approval the gateway asks for: its ID and URL as far as they can be read. */
export interface ApprovalRequired {
  id: string | null;
  url: string | null;
  message: string;
}

interface SdkError {
  code?: unknown;
  substatus?: unknown;
  message?: unknown;
  body?: { message?: unknown; code?: unknown; [k: string]: unknown };
  headers?: Record<string, unknown>;
}

/**
 * Reads an approval-required refusal (403 with substatus {@link APPROVAL_REQUIRED_SUBSTATUS}): the
 * approval ID and URL from the gateway's message (or structured fields, when the body has them).
 *
 * @example approvalOf(err)?.url // "http://localhost:8080/console/#/approvals/apr_..."
 */
export function approvalOf(err: unknown): ApprovalRequired | undefined {
  const e = err as SdkError | undefined;
  if (!e || typeof e !== "object") return undefined;
  const substatus = Number(e.substatus ?? e.headers?.["x-ms-substatus"]);
  if (e.code !== 403 || substatus !== APPROVAL_REQUIRED_SUBSTATUS) return undefined;
  const message = String(e.body?.message ?? e.message ?? "");
  const body = (e.body ?? {}) as Record<string, unknown>;
  const nested = (body.approval ?? {}) as Record<string, unknown>;
  let url = str(nested.url) ?? str(body.approvalUrl) ?? str(body.url) ?? null;
  let id = str(nested.id) ?? str(body.approvalId) ?? null;
  // The gateway's message names the ID after "approval ID " and the URL after "approve it at ".
  if (url === null) {
    const m =
      /approve it at (https?:\/\/[^\s"'<>]+)/i.exec(message) ?? /(https?:\/\/[^\s"'<>]+)/.exec(message);
    if (m) url = m[1].replace(/[.,;:)\]}]+$/, "");
  }
  if (id === null) {
    const m =
      /approval ID ([A-Za-z0-9_-]+)/i.exec(message) ??
      (url !== null ? /approvals\/([A-Za-z0-9_-]+)/.exec(url) : null) ??
      /\bapproval[\s:#]+([A-Za-z0-9][A-Za-z0-9_-]{5,})/i.exec(message);
    if (m) id = m[1];
  }
  return { id, url, message };
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function textOf(r: Result): string {
  const first = r.content[0];
  return first?.type === "text" ? first.text : "";
}

/**
 * approval_status: `GET {gateway}/api/agent/approvals/:id` with the agent's token (AgentCredential),
 * told to the model as what to do next. Never throws: failures are tool errors.
 */
async function approvalStatus(
  ctx: McpContext,
  id: string,
  seen: SeenApproval | undefined,
  signal: AbortSignal | undefined,
): Promise<Result> {
  const error = (text: string): Result => ({ isError: true, content: [{ type: "text", text }] });
  const consolePage = `${ctx.gateway}/console/#/approvals`;
  let token: string;
  try {
    token = (await ctx.credential.getToken()).token;
  } catch (err) {
    return error(describeFailure(new AgentTokenError(err), ctx));
  }
  const url = `${ctx.gateway}/api/agent/approvals/${encodeURIComponent(id)}`;
  let res: Response;
  let body: unknown;
  try {
    const timeout = AbortSignal.timeout(Math.min(ctx.timeoutMs, 30_000));
    res = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    body = await res.json().catch(() => undefined);
  } catch (err) {
    return error(
      `Cannot reach the gateway at ${ctx.gateway} to ask about approval ${id}: ${(err as Error).message}\n` +
        "The gateway may be down; tell the person if it persists.",
    );
  }
  const message = String((body as { message?: unknown } | undefined)?.message ?? "");
  if (res.status === 404) {
    return error(
      `The gateway knows no approval ${JSON.stringify(id)} asked for by agent ${ctx.agent} for this person` +
        `${message ? ` (${message})` : ""}. Check the ID in the APPROVAL REQUIRED result; the person sees their ` +
        `approvals at ${consolePage}.`,
    );
  }
  if (res.status === 401 || res.status === 403) {
    return error(
      `The gateway did not accept the agent's token to read approval ${id} (${res.status}): ${message}\n` +
        `The grant ${ctx.grant} may have been revoked or have expired, or the person's access was removed. ` +
        "Do not retry: tell the person.",
    );
  }
  const a = body as AgentApprovalStatus | undefined;
  if (res.status !== 200 || a === undefined || typeof a.status !== "string") {
    return error(`The gateway answered ${res.status} about approval ${id}: ${message || "(no details)"}`);
  }
  const op = a.operation;
  const what =
    `${op.operation} (${op.method} ${op.resource}${op.partitionKey !== null ? `, partition key ${op.partitionKey}` : ""})` +
    (seen ? `, asked for by ${seen.tool}` : "");
  const tool = seen?.tool ?? "the tool that returned it";
  const head = `Approval ${a.id} for ${what}`;
  let text: string;
  switch (a.status) {
    case "pending":
      text =
        `PENDING: ${head} is waiting for the person: ${a.approvals} of ${a.quorum} approval${a.quorum === 1 ? "" : "s"} ` +
        `so far; it expires at ${a.expiresAt}.\nApprove at: ${a.url}\n` +
        "Ask the person to open the URL, check the operation and approve it with their security key. Nothing to " +
        "retry yet; check again with approval_status after they say they have approved it.";
      break;
    case "approved":
      text =
        `APPROVED: ${head} has been approved. Retry the same call now: call ${tool} again with exactly the same ` +
        `arguments (before ${a.expiresAt}); it succeeds once, as the approval covers that exact operation a single time.`;
      break;
    case "denied":
      text =
        `DENIED: ${head} was denied by an approver. Do not retry it; tell the person, and change the request only ` +
        "if they ask you to.";
      break;
    case "expired":
      text =
        `EXPIRED: ${head} was not approved in time (it expired at ${a.expiresAt}). Calling ${tool} again with the same ` +
        "arguments asks for a new approval, which the person must approve; do so only if the person still wants it.";
      break;
    case "used":
      text =
        `USED: ${head} was approved and the operation has been carried out once with it. Doing it again needs a ` +
        "new approval.";
      break;
    default:
      text = `${head} is ${String(a.status)}. Approvals are at ${a.url}.`;
  }
  return { content: [{ type: "text", text }] };
}

function approvalResult(tool: string, a: SeenApproval): Result {
  if (a.url === null) {
    // The approval this call had was used or expired meanwhile: a new call asks for a new one.
    return {
      content: [
        {
          type: "text",
          text:
            `APPROVAL REQUIRED: nothing was done. ${a.message}\n` +
            `Call ${tool} again once with exactly the same arguments to get a new approval ID and URL for the person.`,
        },
      ],
    };
  }
  return {
    content: [
      {
        type: "text",
        text:
          `APPROVAL REQUIRED: nothing was done yet. The gateway holds this ${tool} until a person approves it.\n` +
          `Approval ID: ${a.id}\n` +
          `Approve at: ${a.url}\n` +
          `Tell the person that this ${tool} on ${a.target} needs their approval, and ask them to open the URL, ` +
          "check the operation shown there and approve it with their security key. When they say it is approved, " +
          `call ${tool} again with exactly the same arguments: the approval covers this exact operation, once. ` +
          "Any change to the arguments needs a new approval.\n" +
          `Gateway's message: ${a.message}`,
      },
    ],
  };
}

/**
 * A tool error's text for a failure: what happened and what to do about it, for the model (and the
 * person). Never includes tokens or document bodies.
 */
export function describeFailure(
  err: unknown,
  ctx: Pick<McpContext, "gateway" | "grant" | "agent">,
  endpoint?: string,
): string {
  if (err instanceof ToolInputError) return `Invalid arguments: ${err.message}.`;
  if (err instanceof McpSetupError) return `cosmosgate mcp is not set up right: ${err.message}.`;
  const tokenError = findTokenError(err);
  if (tokenError) {
    const cause = tokenError.cause as { code?: unknown; oauthError?: unknown; message?: unknown } | undefined;
    const msg = String(cause?.message ?? tokenError.message);
    if (cause?.code === "ERR_AGENT_KEY" || cause?.code === "ERR_INSECURE_URL") {
      return (
        `The agent cannot sign its token requests: ${msg}\n` +
        "This is a set-up problem on the machine running the agent; tell the person. Retrying will not help."
      );
    }
    if (cause?.code === "ERR_AGENT_REFUSED" || typeof cause?.oauthError === "string") {
      return (
        `The gateway refused to give agent ${ctx.agent} a token for grant ${ctx.grant}: ${msg}\n` +
        "The grant may have been revoked, have expired or used up its budget, or the agent's key does not match it. " +
        "Do not retry: ask the person to check the grant in the gateway's console (Agents) and, if they wish, give " +
        "the agent a new grant."
      );
    }
    if (isNetworkError(cause) || /cannot reach|no answer within/i.test(msg)) {
      return (
        `Cannot reach the gateway at ${ctx.gateway} to get the agent's token: ${msg}\n` +
        "The gateway may be down or the URL wrong. Tell the person; retrying right away will not help."
      );
    }
    return (
      `Cannot get the agent's token from the gateway at ${ctx.gateway}: ${msg}\n` +
      "The gateway answered something unexpected; tell the person if it persists."
    );
  }
  const e = err as SdkError & { name?: string; cause?: unknown };
  const code = typeof e?.code === "number" ? e.code : undefined;
  const substatus = Number(e?.substatus ?? e?.headers?.["x-ms-substatus"]) || undefined;
  const message = String(e?.body?.message ?? e?.message ?? err);
  if (code !== undefined) {
    const status = `${code}${substatus ? `/${substatus}` : ""}`;
    switch (code) {
      case 400:
        return `The request is not valid (${status}): ${message}\nFix the arguments (query syntax, partition key, item shape) and try again.`;
      case 401:
        return (
          `The gateway did not accept the agent's token (${status}): ${message}\n` +
          `The grant ${ctx.grant} may have been revoked, have expired or used up its budget, or the person's access ` +
          "was removed. Do not retry: tell the person; only they can give the agent a new grant."
        );
      case 403:
        if (/^approval \S+ .*was denied/.test(message)) {
          return (
            `An approver denied this operation (${status}): ${message}\n` +
            "Do not retry it; tell the person, and change the request only if they ask you to."
          );
        }
        if (substatus === OUTSIDE_GRANT_SUBSTATUS) {
          return (
            `Refused by the gateway (${status}): ${message}\n` +
            `This operation is outside what the person allowed (agent ${ctx.agent}'s grant ${ctx.grant}, or the ` +
            "person's own rights). " +
            "Retrying will not help: tell the person what you tried; only they can widen the grant."
          );
        }
        return `Refused by the gateway (${status}): ${message}\nRetrying will not help; tell the person.`;
      case 404:
        return `Not found (${status}): ${message}\nCheck the database, container, id and partition key (list_databases, list_containers).`;
      case 409:
        return `Conflict (${status}): an item with this id and partition key already exists. Use upsert_item to replace it, or read it first.`;
      case 412:
        return `Precondition failed (${status}): ${message}\nThe item did not match the condition, or changed meanwhile; read it again.`;
      case 413:
        return `Too large (${status}): ${message}`;
      case 429:
        return `The database is busy (${status}, throttled): ${message}\nWait a little and try again, or ask for fewer items.`;
      default:
        if (code >= 500) {
          return `The gateway or the database failed (${status}): ${message}\nTry again later; if it persists, tell the person.`;
        }
        if (code === 408 || /timeout/i.test(String(e?.name))) {
          return `The request timed out at the gateway ${endpoint ?? ""}: ${message}`;
        }
        return `The gateway answered ${status}: ${message}`;
    }
  }
  if (/TimeoutError/.test(String(e?.name)) || /Timeout Error/.test(message)) {
    return `The request to the gateway's data plane ${endpoint ?? ""} timed out: ${message}\nThe gateway may be overloaded or holding the request; try again later.`;
  }
  if (isTlsError(err)) {
    return (
      `The gateway's data plane ${endpoint ?? ""} has a TLS certificate this process does not trust: ${message}\n` +
      "Tell the person: start cosmosgate mcp with --ca <the gateway's CA PEM> (cosmosgate dev's is " +
      "<stateDir>/tls/ca.pem) or set NODE_EXTRA_CA_CERTS."
    );
  }
  if (isNetworkError(err)) {
    return (
      `Cannot reach the gateway's data plane ${endpoint ?? ""}: ${message}\n` +
      "The gateway may be down. Tell the person; retrying right away will not help."
    );
  }
  if (e?.name === "AbortError") return "The call was cancelled.";
  return `The operation failed: ${message}`;
}

function findTokenError(err: unknown): AgentTokenError | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof AgentTokenError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);

function isNetworkError(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function isTlsError(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === "string" &&
      /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS/.test(code)
    ) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
