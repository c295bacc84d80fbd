/** The policy's short action names and the common audit event types, for the filters' choices. */
import type { Action } from "../../src/cosmos/types";

/** Every short action, checked against the server's `Action` type (a missing or unknown one fails to compile). */
const ACTION_SET: Record<Action, true> = {
  metadata: true,
  read: true,
  create: true,
  upsert: true,
  replace: true,
  patch: true,
  delete: true,
  query: true,
  changeFeed: true,
  execute: true,
  conflicts: true,
  manage: true,
};

export const ACTIONS = Object.keys(ACTION_SET) as Action[];

/** Common event types (docs/audit.md); the filter takes any. */
export const EVENT_TYPES = [
  "data.request",
  "signin.succeeded",
  "signin.failed",
  "token.issued",
  "token.refreshed",
  "token.revoked",
  "credential.added",
  "credential.renamed",
  "credential.removed",
  "credential.suspended",
  "credential.reenabled",
  "credential.clone_suspected",
  "user.invited",
  "user.enrolled",
  "user.disabled",
  "user.enabled",
  "policy.loaded",
  "gateway.started",
  "audit.checkpoint",
];
