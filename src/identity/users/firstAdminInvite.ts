import type { IdentityStore } from "../../store/ports.js";
import { type InviteResult, inviteUser } from "./inviteUser.js";
import type { UserEvents } from "./types.js";

/**
 * The bootstrap invite: while the gateway has no users at all, makes a fresh invite for "admin"
 * (an administrator in the group "cosmos-admins", valid 24 hours) for the gateway to print at start-up. Each start makes a new
 * one (the secret of an earlier one cannot be shown again, since only its hash is stored); any of
 * them enrolls the first administrator, after which this returns undefined.
 *
 * @example
 * ```ts
 * const invite = firstAdminInvite(store, Date.now);
 * // Shown once to the operator on the console (never written to the log):
 * if (invite) console.log(`Enroll the first administrator: ${publicUrl}/enroll?invite=${invite.secret}`);
 * ```
 */
export function firstAdminInvite(
  store: IdentityStore,
  clock: () => number,
  events?: UserEvents,
): InviteResult | undefined {
  if (store.countUsers() > 0) return undefined;
  return inviteUser(store, {
    name: "admin",
    // The starter policy (cosmosgate init / dev) gives this group every action.
    groups: ["cosmos-admins"],
    admin: true,
    createdBy: "cosmosgate",
    clock,
    ...(events !== undefined ? { events } : {}),
  });
}
