/**
 * Sign-in sessions, rotating refresh tokens, and the data path's revocation check.
 *
 * @example
 * ```ts
 * import { createRevocationChecker, createSessions } from "./identity/sessions/index.js";
 * const sessions = createSessions({ store, clock: Date.now });
 * const revocation = createRevocationChecker(store);
 * ```
 */
export { SESSION_ERRORS, SessionError, type SessionErrorCode } from "./errors.js";
export {
  createRevocationChecker,
  type RevocationChecker,
  type RevocationCheckerOptions,
  type RevocationSubject,
  type RevokedBy,
} from "./revocation.js";
export {
  createSessions,
  type SessionEvent,
  type SessionEventType,
  type Sessions,
  type SessionsOptions,
  type StartInput,
} from "./sessions.js";
