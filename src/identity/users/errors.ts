/**
 * Stable codes of {@link UserError}, with the HTTP status the edge answers with.
 *
 * @example
 * ```ts
 * reply.code(USER_ERROR_STATUS[error.code]);
 * ```
 */
export const USER_ERROR_STATUS = {
  /** A name, group list or duration is not acceptable. */
  ERR_USER_INVALID: 400,
  /** A user with that name exists already. */
  ERR_USER_EXISTS: 409,
  /** No user has that name. */
  ERR_USER_UNKNOWN: 404,
  /** The change would leave no enabled administrator. */
  ERR_USER_LAST_ADMIN: 409,
} as const;

/** One of the keys of {@link USER_ERROR_STATUS}. */
export type UserErrorCode = keyof typeof USER_ERROR_STATUS;

/**
 * A refused user-administration request. `message` says what was wrong and what to do.
 *
 * @example
 * ```ts
 * try {
 *   inviteUser(store, { name, groups, admin: false, clock });
 * } catch (error) {
 *   if (error instanceof UserError) return reply.code(error.status).send({ code: error.code, message: error.message });
 *   throw error;
 * }
 * ```
 */
export class UserError extends Error {
  readonly code: UserErrorCode;
  readonly status: 400 | 404 | 409;

  constructor(code: UserErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UserError";
    this.code = code;
    this.status = USER_ERROR_STATUS[code];
  }
}
