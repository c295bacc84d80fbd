export { checkGroups } from "./checkGroups.js";
export { type DisableUserResult, disableUser } from "./disableUser.js";
export { enableUser } from "./enableUser.js";
export { USER_ERROR_STATUS, UserError, type UserErrorCode } from "./errors.js";
export { findUser } from "./findUser.js";
export { firstAdminInvite } from "./firstAdminInvite.js";
export { hashInviteSecret } from "./hashInviteSecret.js";
export { type InviteResult, type InviteUserOptions, inviteUser } from "./inviteUser.js";
export { listUsers } from "./listUsers.js";
export { type SetUserGroupsResult, setUserGroups } from "./setUserGroups.js";
export {
  DEFAULT_INVITE_TTL_MS,
  GROUP_NAME,
  MAX_GROUPS,
  USER_NAME,
  type UserEvent,
  type UserEvents,
} from "./types.js";
