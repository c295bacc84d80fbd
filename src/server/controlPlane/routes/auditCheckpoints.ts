import type { FastifyInstance } from "fastify";
import type { AuditCheckpoint } from "../../../audit/checkpoints.js";
import { ApiError } from "../errors.js";

/** Where the route reads checkpoints: the gateway's checkpointer. */
export interface AuditCheckpointSource {
  /** The newest `limit` checkpoints, newest first. */
  recent(limit: number): AuditCheckpoint[];
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/**
 * `GET /audit/checkpoints[?limit=N]`: the newest signed checkpoints of the audit chain, newest
 * first, as `{"checkpoints": [{seq, hash, time, instance?, kid, alg, jws, jwk}, ...]}` (default
 * 100, at most 1000). Public, like the JWKS: a checkpoint holds a seq, a hash, a time and a
 * signature — no record content — and auditors should copy them elsewhere, so that
 * `cosmosgate audit verify --checkpoints FILE|URL` can later prove the trail was not cut back.
 */
export function auditCheckpointRoutes(app: FastifyInstance, source: AuditCheckpointSource): void {
  app.get("/audit/checkpoints", async (request) => {
    const raw = (request.query as { limit?: unknown } | undefined)?.limit;
    let limit = DEFAULT_LIMIT;
    if (raw !== undefined) {
      limit = typeof raw === "string" && /^\d{1,4}$/.test(raw) ? Number(raw) : 0;
      if (limit < 1 || limit > MAX_LIMIT) {
        throw new ApiError(400, "ERR_BAD_LIMIT", `limit must be a whole number from 1 to ${MAX_LIMIT}.`);
      }
    }
    return { checkpoints: source.recent(limit) };
  });
}
