export { type BenchAppendOptions, type BenchAppendResult, benchAppend } from "./bench.js";
export { canonicalJson, canonicalRecord, hashCanonical, hashRecord } from "./chain.js";
export { type AuditCheckpoint, listCheckpoints } from "./checkpoints.js";
export { AuditError, type AuditErrorCode } from "./errors.js";
export { formatRecord, tail } from "./query.js";
export { AUDIT_COLUMNS, type AuditColumns, auditColumns, auditMigrations } from "./schema.js";
export { type AuditFilter, countAudit, type SearchOptions, searchAudit } from "./search.js";
export type { AuditEvent, AuditRecord } from "./types.js";
export { AUDIT_EVENT_TYPES, type AuditDetails } from "./types.js";
export {
  type BreakKind,
  type BrokenLink,
  type VerifyOptions,
  type VerifyResult,
  verifyChain,
} from "./verify.js";
export {
  type AuditWriter,
  type AuditWriterOptions,
  type AuditWriterStats,
  type ChainHead,
  createAuditWriter,
} from "./writer.js";
