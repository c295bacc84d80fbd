import type { Dirent } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  disableUser,
  enableUser,
  findUser,
  inviteUser,
  listUsers,
  setUserGroups,
  USER_NAME,
  type UserEvent,
} from "../../../identity/users/index.js";
import type { Database } from "../../../store/index.js";
import type { InviteRecord, UserRecord } from "../../../store/ports.js";
import { openDatabase } from "../../../store/sqlite.js";
import { bodyObject, describe } from "../body.js";
import type { InviteView, PeopleView, PersonView, SessionTokenView, StatusView } from "../consoleApi.js";
import type { ConsoleDeps, ControlPlaneContext } from "../context.js";
import { ApiError } from "../errors.js";
import { html } from "../pages/html.js";
import { sendPage } from "../pages/send.js";
import { errorPage } from "../pages/views.js";
import { currentSignIn, type SignedIn } from "../session.js";
import { issueAccessToken, notSignedIn } from "../signIn.js";
import { keyView } from "./account.js";

/** How long a probe of the upstream is reused: a status page polled by many cannot hammer Cosmos DB. */
export const PROBE_CACHE_MS = 5_000;

/**
 * The web console's routes beyond "my keys" (routes/account.ts), audit and policy
 * (consoleAudit.ts, consolePolicy.ts); shapes in consoleApi.ts. Registered only when the control
 * plane has its {@link ConsoleDeps}; without them, `GET /` still redirects to /keys.
 *
 * - `POST /api/me/token` `{}` → {@link SessionTokenView}: an access token for this session (for
 *   scripts and the SDK), audited as `token.issued` with grant "console"; no refresh token.
 * - Administrators only (others: 403 `ERR_FORBIDDEN`, and nothing changes): `GET /api/people`,
 *   `POST /api/people/invite`, `POST /api/people/:name/disable|enable`,
 *   `PUT /api/people/:name/groups`, `POST /api/people/:name/keys/:id/reenable`, `GET /api/status`.
 *   Changes are audited as the CLI audits them (`user.invited`, `user.disabled`, `user.enabled`,
 *   `user.groups_changed`, `credential.reenabled`), with the administrator as the subject (and the
 *   key they signed in with), the person as the resource `/users/NAME` and `details.user`.
 * - `GET /console/` (index.html, no-store), `GET /console/assets/*` (immutable when the name is
 *   content-hashed) and other files at the top of the built console: only names listed in the
 *   directory, read once into memory, so no path can leave it. Without a build, `/console/` is a
 *   page saying to run `npm run build:console` (503).
 * - `GET /` → `/console/`.
 */
export function consoleRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const deps = ctx.console;
  if (deps === undefined) {
    app.get("/", async (_request, reply) => reply.redirect("/keys", 302));
    return;
  }
  const { store } = ctx.identity;
  const nameOf = ctx.identity.authenticatorName;

  const me = (request: FastifyRequest, reply: FastifyReply): SignedIn => {
    const signedIn = currentSignIn(request, reply, store, ctx.clock(), ctx.secure);
    if (signedIn === undefined) throw notSignedIn();
    return signedIn;
  };
  const admin = (request: FastifyRequest, reply: FastifyReply): SignedIn => {
    const signedIn = me(request, reply);
    if (!signedIn.user.admin) {
      throw new ApiError(
        403,
        "ERR_FORBIDDEN",
        "only administrators can see or change people and the gateway's status; ask an administrator.",
      );
    }
    return signedIn;
  };
  /** The user-administration functions' events, as the administrator's actions on the person. */
  const asAdmin =
    (signedIn: SignedIn) =>
    (e: UserEvent): void => {
      const person = e.subject ?? "";
      ctx.emit({
        type: e.type,
        subject: signedIn.user.name,
        session: signedIn.session.id,
        resource: `/users/${person}`,
        reason: `${e.reason} (by ${signedIn.user.name} in the console)`,
        decision: e.decision ?? "allow",
        details: { user: person, ...e.details },
      });
    };
  const personView = (user: UserRecord, viewer: SignedIn, invite?: InviteRecord): PersonView => {
    const keys = store.listCredentials(user.id);
    const lastSeen = Math.max(0, ...keys.map((k) => k.lastUsedAt ?? 0));
    return {
      name: user.name,
      groups: user.groups,
      admin: user.admin,
      disabled: user.disabled,
      createdAt: new Date(user.createdAt).toISOString(),
      keys: keys.map((k) => keyView(k, viewer.credential.id, nameOf)),
      lastSeenAt: lastSeen > 0 ? new Date(lastSeen).toISOString() : null,
      pendingInvite: invite !== undefined ? { expiresAt: new Date(invite.expiresAt).toISOString() } : null,
    };
  };

  // ---------------------------------------------------------------- me ----

  app.post("/api/me/token", async (request, reply): Promise<SessionTokenView> => {
    const { user, session } = me(request, reply);
    const token = await issueAccessToken(ctx, user, session, {
      type: "token.issued",
      reason: "issued to the console session for scripts and the SDK",
      grant: "console",
    });
    return { ...token, endpoint: ctx.config.dataPlane.publicUrl };
  });

  // ------------------------------------------------------------ people ----

  app.get("/api/people", async (request, reply): Promise<PeopleView> => {
    const viewer = admin(request, reply);
    const pending = new Map<string, InviteRecord>();
    for (const invite of store.listPendingInvites(ctx.clock())) {
      const seen = pending.get(invite.userName);
      if (seen === undefined || invite.expiresAt > seen.expiresAt) pending.set(invite.userName, invite);
    }
    const people = listUsers(store).map((u) => personView(u, viewer, pending.get(u.name)));
    // Invited people who have not enrolled yet: no user record, no keys.
    const users = new Set(people.map((p) => p.name));
    for (const [name, invite] of pending) {
      if (users.has(name)) continue;
      people.push({
        name,
        groups: invite.groups,
        admin: invite.admin,
        disabled: false,
        createdAt: new Date(invite.createdAt).toISOString(),
        keys: [],
        lastSeenAt: null,
        pendingInvite: { expiresAt: new Date(invite.expiresAt).toISOString() },
      });
    }
    people.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { people };
  });

  app.post("/api/people/invite", async (request, reply): Promise<InviteView> => {
    const viewer = admin(request, reply);
    const body = bodyObject(request.body);
    const name = personName(body.name, "name");
    if (body.groups !== undefined && !Array.isArray(body.groups)) {
      throw badRequest(`groups must be a list of group names, not ${describe(body.groups)}.`);
    }
    if (body.admin !== undefined && typeof body.admin !== "boolean") {
      throw badRequest(`admin must be true or false, not ${describe(body.admin)}.`);
    }
    const { secret, expiresAt } = inviteUser(store, {
      name,
      groups: (body.groups ?? []) as string[],
      admin: body.admin === true,
      createdBy: viewer.user.name,
      clock: ctx.clock,
      events: asAdmin(viewer),
    });
    // Shown once: only the secret's hash is kept. Never logged (the log has the route pattern only).
    return {
      name,
      url: `${ctx.publicUrl}/enroll?invite=${secret}`,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  });

  app.post<{ Params: { name: string } }>("/api/people/:name/disable", async (request, reply) => {
    const viewer = admin(request, reply);
    const { user } = disableUser(
      store,
      personName(request.params.name, "the name in the path"),
      ctx.clock,
      asAdmin(viewer),
    );
    return personView(user, viewer);
  });

  app.post<{ Params: { name: string } }>("/api/people/:name/enable", async (request, reply) => {
    const viewer = admin(request, reply);
    const user = enableUser(
      store,
      personName(request.params.name, "the name in the path"),
      ctx.clock,
      asAdmin(viewer),
    );
    return personView(user, viewer);
  });

  app.put<{ Params: { name: string } }>("/api/people/:name/groups", async (request, reply) => {
    const viewer = admin(request, reply);
    const name = personName(request.params.name, "the name in the path");
    const { groups } = bodyObject(request.body);
    if (!Array.isArray(groups)) {
      throw badRequest(`groups must be a list of group names ([] for none), not ${describe(groups)}.`);
    }
    const { user } = setUserGroups(store, name, groups, ctx.clock, asAdmin(viewer));
    return personView(user, viewer);
  });

  app.post<{ Params: { name: string; id: string } }>(
    "/api/people/:name/keys/:id/reenable",
    async (request, reply) => {
      const viewer = admin(request, reply);
      const user = findUser(store, personName(request.params.name, "the name in the path"));
      const key = store.getCredential(request.params.id);
      if (key === undefined || key.userId !== user.id) {
        throw new ApiError(
          404,
          "ERR_KEY_NOT_FOUND",
          `${user.name} has no key with this id; list their keys with GET /api/people.`,
        );
      }
      if (key.suspendedAt !== undefined) {
        store.reenableCredential(key.id);
        ctx.emit({
          type: "credential.reenabled",
          subject: viewer.user.name,
          session: viewer.session.id,
          credential: key.id,
          resource: `/users/${user.name}`,
          reason: `re-enabled (suspended ${new Date(key.suspendedAt).toISOString()}: ${key.suspendedReason ?? "no reason recorded"}) by ${viewer.user.name} in the console`,
          decision: "allow",
          details: { user: user.name },
        });
      }
      return personView(user, viewer);
    },
  );

  // ------------------------------------------------------------ status ----

  const probe = cachedProbe(deps.upstream.probe, ctx.clock);
  const auditReader = lazyAuditReader(deps.auditFile);
  app.addHook("onClose", async () => auditReader.close());

  app.get("/api/status", async (request, reply): Promise<StatusView> => {
    admin(request, reply);
    const keys = ctx.identity.keyring.list();
    const next = keys.filter((k) => k.state === "next").sort((a, b) => a.activatesAt - b.activatesAt)[0];
    const current = keys.find((k) => k.state === "current");
    const rotation = next?.activatesAt ?? current?.retiresAt;
    let trail: { records: number; lastCheckpoint: { seq: number; time: string } | null } = {
      records: 0,
      lastCheckpoint: null,
    };
    try {
      trail = auditReader.read();
    } catch (error) {
      ctx.log.warn({ err: error }, "console: cannot read the audit trail's size for the status page");
    }
    return {
      version: deps.version,
      startedAt: new Date(deps.startedAt).toISOString(),
      upstream: { type: deps.upstream.type, endpoint: deps.upstream.endpoint, ...(await probe()) },
      signingKeys: keys.map((k) => ({
        kid: k.kid,
        state: k.state,
        createdAt: new Date(k.createdAt).toISOString(),
        activatesAt: new Date(k.activatesAt).toISOString(),
        retiresAt: new Date(k.retiresAt).toISOString(),
      })),
      nextRotation: rotation !== undefined ? new Date(rotation).toISOString() : null,
      audit: {
        durability: ctx.config.audit.durability,
        onFailure: ctx.config.audit.onFailure,
        state: deps.audit.state(),
        accepting: deps.audit.accepting(),
        queueDepth: deps.audit.pending(),
        maxQueue: ctx.config.audit.maxQueue,
        ...trail,
      },
      issuers: deps.issuers.map((i) => ({ name: i.name, issuer: i.issuer })),
    };
  });

  // ---------------------------------------------------- static console ----

  const files = consoleFiles(deps.consoleDir);
  const serve = async (reply: FastifyReply, name: string) => {
    const built = await files.get();
    const file = built?.get(name);
    if (file === undefined) {
      throw new ApiError(404, "ERR_NOT_FOUND", "no such file in the web console.");
    }
    reply.header("cache-control", file.cache).type(file.type);
    return file.body;
  };

  app.get("/", async (_request, reply) => reply.redirect("/console/", 302));
  app.get("/console", async (_request, reply) => reply.redirect("/console/", 302));
  app.get("/console/", async (_request, reply) => {
    const built = await files.get();
    const index = built?.get("index.html");
    if (index === undefined) {
      return sendPage(
        reply,
        errorPage(
          "The web console is not built",
          `There is no built console in ${deps.consoleDir}.`,
          html`Run <code>npm run build:console</code> (or <code>npm run build</code>) in the cosmosgate directory, then reload this page. Your keys are at <a href="/keys">/keys</a> meanwhile.`,
        ),
        503,
      );
    }
    reply.header("cache-control", index.cache).type(index.type);
    return index.body;
  });
  app.get<{ Params: { "*": string } }>("/console/assets/*", async (request, reply) =>
    serve(reply, `assets/${request.params["*"]}`),
  );
  app.get<{ Params: { file: string } }>("/console/:file", async (request, reply) =>
    serve(reply, request.params.file),
  );
}

function badRequest(message: string): ApiError {
  return new ApiError(400, "ERR_BAD_REQUEST", message);
}

/** A person's name from the body or the path: 1–64 of A–Z a–z 0–9 . _ @ -. */
function personName(value: unknown, what: string): string {
  if (typeof value !== "string" || !USER_NAME.test(value)) {
    throw badRequest(
      `${what} must be a user name: 1–64 characters of A–Z, a–z, 0–9, ".", "_", "@", "-"${typeof value === "string" ? "" : `, not ${describe(value)}`}.`,
    );
  }
  return value;
}

type ProbeResult = Awaited<ReturnType<ConsoleDeps["upstream"]["probe"]>>;

/**
 * The upstream probe, reused for {@link PROBE_CACHE_MS}: concurrent callers share one probe in
 * flight, and a finished probe answers everyone for a few seconds.
 */
export function cachedProbe(
  probe: () => Promise<ProbeResult>,
  clock: () => number,
): () => Promise<ProbeResult> {
  let last: { at: number; result: ProbeResult } | undefined;
  let inFlight: Promise<ProbeResult> | undefined;
  return () => {
    if (last !== undefined && clock() - last.at < PROBE_CACHE_MS) return Promise.resolve(last.result);
    inFlight ??= probe()
      .catch(
        (error: unknown): ProbeResult => ({
          healthy: false,
          latencyMs: null,
          problem: error instanceof Error ? error.message : String(error),
        }),
      )
      .then((result) => {
        last = { at: clock(), result };
        inFlight = undefined;
        return result;
      });
    return inFlight;
  };
}

/**
 * The audit trail's size and last checkpoint, read through one read-only connection opened on
 * first use (the writer keeps its own). Both queries are primary-key lookups: constant time
 * whatever the trail's length.
 */
function lazyAuditReader(file: string) {
  let db: Database | undefined;
  return {
    read(): { records: number; lastCheckpoint: { seq: number; time: string } | null } {
      db ??= openDatabase(file, { readonly: true, busyTimeoutMs: 100 });
      const span = db.prepare("SELECT max(seq) AS last, min(seq) AS first FROM audit_events").get() as {
        last: number | null;
        first: number | null;
      };
      const checkpoint = db
        .prepare("SELECT seq, time FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
        .get() as { seq: number; time: number } | undefined;
      return {
        records: span.last !== null && span.first !== null ? span.last - span.first + 1 : 0,
        lastCheckpoint:
          checkpoint !== undefined
            ? { seq: checkpoint.seq, time: new Date(checkpoint.time).toISOString() }
            : null,
      };
    },
    close(): void {
      db?.close();
      db = undefined;
    },
  };
}

/** A file of the built console, in memory. */
interface ConsoleFile {
  body: Buffer;
  type: string;
  cache: string;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".txt": "text/plain; charset=utf-8",
  ".webmanifest": "application/manifest+json",
};

/** Vite's content-hashed names: `index-q7wr01Fh.js`. */
const HASHED = /-[A-Za-z0-9_-]{8,}\.[A-Za-z0-9]+$/;

/**
 * The built console (`index.html`, other top-level files and `assets/`), read into memory once on
 * first use and served from the map: a name not listed in the directory can never be served. While
 * the console is not built, every call looks again, so building it while the gateway runs works.
 */
export function consoleFiles(dir: string): { get(): Promise<ReadonlyMap<string, ConsoleFile> | undefined> } {
  let loaded: Promise<ReadonlyMap<string, ConsoleFile> | undefined> | undefined;
  const load = async (): Promise<ReadonlyMap<string, ConsoleFile> | undefined> => {
    const out = new Map<string, ConsoleFile>();
    const add = async (name: string, path: string) => {
      const type = CONTENT_TYPES[extname(name).toLowerCase()] ?? "application/octet-stream";
      const cache =
        name === "index.html"
          ? "no-store"
          : name.startsWith("assets/") && HASHED.test(name)
            ? "public, max-age=31536000, immutable"
            : "public, max-age=300";
      out.set(name, { body: await readFile(path), type, cache });
    };
    let top: Dirent[];
    try {
      top = await readdir(dir, { withFileTypes: true });
    } catch {
      return undefined;
    }
    if (!top.some((e) => e.isFile() && e.name === "index.html")) return undefined;
    for (const entry of top) {
      if (entry.isFile()) await add(entry.name, join(dir, entry.name));
    }
    if (top.some((e) => e.isDirectory() && e.name === "assets")) {
      for (const entry of await readdir(join(dir, "assets"), { withFileTypes: true })) {
        if (entry.isFile()) await add(`assets/${entry.name}`, join(dir, "assets", entry.name));
      }
    }
    return out;
  };
  return {
    get() {
      loaded ??= load().then(
        (files) => {
          if (files === undefined) loaded = undefined; // not built yet: look again next time
          return files;
        },
        (error: unknown) => {
          loaded = undefined;
          throw error;
        },
      );
      return loaded;
    },
  };
}
