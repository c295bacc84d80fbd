import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance } from "fastify";
import { PAGES_SCRIPT } from "../assets/pagesScript.js";
import { STYLE_SHEET } from "../assets/styleSheet.js";
import type { ControlPlaneContext } from "../context.js";
import { sendPage } from "../pages/send.js";
import { enrollPage, keysPage, signinPage } from "../pages/views.js";
import { currentSignIn } from "../session.js";

/**
 * Reads SimpleWebAuthn's browser bundle (UMD, global `SimpleWebAuthnBrowser`) from node_modules,
 * once, at start-up.
 */
export function readWebAuthnBundle(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve("@simplewebauthn/browser"); // .../script/index.js
  return readFileSync(join(dirname(main), "..", "dist", "bundle", "index.umd.min.js"), "utf8");
}

/** A `next` that stays on this site: a path, not `//host` or a URL. */
function safeNext(value: unknown): string {
  if (typeof value !== "string" || !/^\/(?![/\\])[\x21-\x7e]{0,512}$/.test(value)) return "/keys";
  return value;
}

/**
 * The pages and their static assets:
 * `GET /enroll`, `GET /signin`, `GET /keys` (redirects to /signin when not signed
 * in); `GET /assets/webauthn.js`, `/assets/pages.js`, `/assets/style.css`.
 */
export function pageRoutes(app: FastifyInstance, ctx: ControlPlaneContext, webauthnBundle: string): void {
  const { store } = ctx.identity;
  const assets: Record<string, { type: string; body: string }> = {
    "webauthn.js": { type: "text/javascript; charset=utf-8", body: webauthnBundle },
    "pages.js": { type: "text/javascript; charset=utf-8", body: PAGES_SCRIPT },
    "style.css": { type: "text/css; charset=utf-8", body: STYLE_SHEET },
  };
  for (const [name, asset] of Object.entries(assets)) {
    app.get(`/assets/${name}`, async (_request, reply) => {
      reply.header("cache-control", "public, max-age=300").type(asset.type);
      return asset.body;
    });
  }

  app.get("/enroll", async (_request, reply) => sendPage(reply, enrollPage(ctx.config.identity.rp.name)));

  app.get("/signin", async (request, reply) =>
    sendPage(reply, signinPage(safeNext((request.query as Record<string, unknown>).next))),
  );

  app.get("/keys", async (request, reply) => {
    const me = currentSignIn(request, reply, store, ctx.clock(), ctx.secure);
    if (me === undefined) return reply.redirect("/signin?next=%2Fkeys", 302);
    return sendPage(reply, keysPage(me.user, store.listCredentials(me.user.id), me.credential.id));
  });
}
