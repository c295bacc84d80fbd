import type { FastifyInstance } from "fastify";
import { discoveryDocument } from "../../../identity/tokens/discovery.js";
import type { ControlPlaneContext } from "../context.js";

/**
 * Public documents: `GET /.well-known/jwks.json` (cacheable for `identity.tokens.jwksCache`: a new
 * key is published that long before it signs), `GET /.well-known/openid-configuration` and
 * `/.well-known/oauth-authorization-server` (RFC 8414), and `GET /healthz`.
 */
export function wellKnownRoutes(app: FastifyInstance, ctx: ControlPlaneContext): void {
  const maxAge = Math.max(0, Math.floor(ctx.config.identity.tokens.jwksCache / 1000));
  const discovery = discoveryDocument({ issuer: ctx.identity.issuerUrl, controlPlaneUrl: ctx.publicUrl });

  app.get("/.well-known/jwks.json", async (_request, reply) => {
    reply.header("cache-control", `public, max-age=${maxAge}`);
    reply.type("application/jwk-set+json; charset=utf-8");
    return ctx.identity.keyring.jwks();
  });

  for (const path of ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]) {
    app.get(path, async (_request, reply) => {
      reply.header("cache-control", "public, max-age=3600");
      return discovery;
    });
  }

  app.get("/healthz", async () => ctx.health());
}
