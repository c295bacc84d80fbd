/**
 * Test helpers for checkpoints and exports (used by tests only; not exported from the module).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import type { Database } from "../store/index.js";
import type { CheckpointKeys } from "./checkpoints.js";
import { listCheckpoints } from "./checkpoints.js";

/** A fresh ES256 key shaped like the identity keyring (`signer()`, `jwks()`). */
export async function createTestCheckpointKeys(): Promise<CheckpointKeys & { kid: string; jwk: JWK }> {
  const pair = await generateKeyPair("ES256");
  const pub = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint({ kty: "EC", crv: pub.crv, x: pub.x, y: pub.y }, "sha256");
  const jwk: JWK = { kty: "EC", crv: "P-256", x: pub.x, y: pub.y, kid, alg: "ES256", use: "sig" };
  return {
    kid,
    jwk,
    signer: async () => ({ kid, key: pair.privateKey }),
    jwks: () => ({ keys: [jwk] }),
  };
}

/**
 * The JSONL export of `db` in the documented format (docs: issue 5 brief): one line per record
 * (the event's fields plus seq, prevHash, hash) and `{"checkpoint": ...}` after the record it covers.
 * `from`/`to` bound the seqs; `anchor` writes the checkpoint just before `from` first (a full
 * export of a pruned trail).
 */
export function exportLines(
  db: Database,
  opts: { from?: number; to?: number; anchor?: boolean } = {},
): string[] {
  const from = opts.from ?? 0;
  const to = opts.to ?? Number.MAX_SAFE_INTEGER;
  const rows = db
    .prepare<[number, number], { seq: number; data: string; prev_hash: string; hash: string }>(
      "SELECT seq, data, prev_hash, hash FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq",
    )
    .all(from, to);
  const cps = new Map(listCheckpoints(db, { fromSeq: from, toSeq: to }).map((c) => [c.seq, c]));
  const out: string[] = [];
  if (opts.anchor && rows.length > 0) {
    const a = listCheckpoints(db, { fromSeq: rows[0].seq - 1, toSeq: rows[0].seq - 1 })[0];
    if (a) out.push(JSON.stringify({ checkpoint: a }));
  }
  for (const r of rows) {
    out.push(JSON.stringify({ ...JSON.parse(r.data), prevHash: r.prev_hash, hash: r.hash }));
    const cp = cps.get(r.seq);
    if (cp) out.push(JSON.stringify({ checkpoint: cp }));
  }
  return out;
}
