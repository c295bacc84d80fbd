import { AsyncLocalStorage } from "node:async_hooks";
import { join } from "node:path";
import { loadAuthenticatorNames } from "../audit/keysReport.js";
import type { AuditDetails, AuditEvent } from "../audit/types.js";
import type { LoadedConfig } from "../config/load.js";
import { resolveConfigPath } from "../config/load.js";
import {
  createRevocationChecker,
  createSessions,
  type RevocationChecker,
  type SessionEvent,
  type Sessions,
} from "../identity/sessions/index.js";
import { createTokenIssuer, type TokenIssuer } from "../identity/tokens/issue.js";
import { loadKek } from "../identity/tokens/keyEncryption.js";
import { createKeyring, type Keyring, type KeyringEvent } from "../identity/tokens/keyring.js";
import { type AuthenticatorNames, authenticatorNames } from "../identity/webauthn/authenticatorNames.js";
import { createWebAuthn, type WebAuthn } from "../identity/webauthn/index.js";
import { openIdentityStore, type SqliteIdentityStore } from "../store/identityStore.js";
import type { IdentityStore } from "../store/ports.js";

/**
 * An identity event for the audit trail (enrollment, sign-in, key changes, tokens, rotation, ...):
 * the identity-side fields of the documented schema (docs/audit.md). `subject` is the user the
 * event is about, `credential` the key's credential ID; nothing here is ever a secret.
 */
export interface IdentityEvent {
  type: string;
  subject?: string;
  /** "user" by default when `subject` is set; "system" for the gateway's own events. */
  subjectKind?: string;
  /** The issuer of the subject, when it is not the gateway (a federated principal). */
  issuer?: string;
  credential?: string;
  credentialName?: string;
  aaguid?: string;
  deviceBound?: boolean;
  session?: string;
  /** The agent an event is about or acting ("agent:NAME"). */
  actor?: string;
  /** The agent grant an event is about. */
  grant?: string;
  /** The `jti` of an access token issued (never the token). */
  jti?: string;
  /** A signing key's kid: the resource becomes "/keys/KID". */
  kid?: string;
  /** What the event is about; default "/keys/KID", else "/users/SUBJECT", else "". */
  resource?: string;
  reason: string;
  decision?: AuditEvent["decision"];
  clientAddress?: string;
  userAgent?: string;
  details?: AuditDetails;
}

/** Who sent the control-plane request an event happens in. */
export interface RequestOrigin {
  clientAddress?: string;
  userAgent?: string;
}

/**
 * The control-plane request being handled, if any: the control plane runs each route handler in
 * `requestOrigin.run({clientAddress, userAgent}, ...)`, so that events emitted deep inside the
 * WebAuthn and session modules (sign-in failures, refresh-token reuse) carry the client's address
 * and user agent without threading them through every call.
 */
export const requestOrigin = new AsyncLocalStorage<RequestOrigin>();

/** What the data plane's audit record says about the key a token names. */
export interface CredentialInfo {
  nickname: string;
  aaguid: string;
  deviceBound: boolean;
}

/** The data plane's view of the gateway's own keys, for its audit records. */
export interface CredentialDirectory {
  /**
   * The key `credentialId` of a principal from `issuer`: from memory, read from the store at most
   * once per key per `ttlMs` (a nickname may change; the AAGUID and kind never do). Undefined for a
   * principal of another issuer, and for a key the store does not hold.
   */
  describe(issuer: string, credentialId: string, now: number): CredentialInfo | undefined;
  /** Drops a key from memory (it was renamed, removed, suspended or re-enabled). */
  forget(credentialId: string): void;
}

/**
 * A {@link CredentialDirectory} over the identity store: the data path reads no database per
 * request, only a Map (the cached object is shared, nothing is allocated on a hit). Bounded:
 * `maxEntries` keys, then the memory starts over.
 *
 * @example
 * ```ts
 * const keys = createCredentialDirectory(store, { issuer: "http://localhost:8080" });
 * keys.describe(principal.issuer, principal.credential, Date.now())?.nickname; // "desk key"
 * ```
 */
export function createCredentialDirectory(
  store: Pick<IdentityStore, "getCredential">,
  opts: { issuer: string; ttlMs?: number; maxEntries?: number },
): CredentialDirectory {
  const ttlMs = opts.ttlMs ?? 60_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const known = new Map<string, { info: CredentialInfo | undefined; until: number }>();
  return {
    describe(issuer, credentialId, now) {
      if (issuer !== opts.issuer) return undefined;
      const hit = known.get(credentialId);
      if (hit !== undefined && hit.until > now) return hit.info;
      let info: CredentialInfo | undefined;
      try {
        const c = store.getCredential(credentialId);
        info =
          c === undefined
            ? undefined
            : Object.freeze({ nickname: c.nickname, aaguid: c.aaguid, deviceBound: c.deviceBound });
      } catch {
        // The audit record goes without the key's details rather than failing the request.
        return hit?.info;
      }
      if (known.size >= maxEntries && hit === undefined) known.clear();
      known.set(credentialId, { info, until: now + ttlMs });
      return info;
    },
    forget(credentialId) {
      known.delete(credentialId);
    },
  };
}

/** Events after which a key's cached description is stale. */
const KEY_CHANGES: ReadonlySet<string> = new Set([
  "credential.added",
  "credential.renamed",
  "credential.removed",
  "credential.suspended",
  "credential.reenabled",
  "credential.clone_suspected",
  "user.enrolled",
]);

/**
 * Completes an identity event from what the store knows and the request it happens in: the client
 * address and user agent of the control-plane request (see {@link requestOrigin}); for a session,
 * its key and user; for a key, its nickname, AAGUID and kind and its owner. Fields already set are
 * kept. Never throws: a failing store read leaves the fields out.
 *
 * @example const full = describeIdentityEvent(store, { type: "token.revoked", session: id, reason })
 */
export function describeIdentityEvent(
  store: Pick<IdentityStore, "getSession" | "getUserById" | "getCredential">,
  e: IdentityEvent,
  credentials?: CredentialDirectory,
): IdentityEvent {
  const out: IdentityEvent = { ...e };
  const origin = requestOrigin.getStore();
  if (origin !== undefined) {
    out.clientAddress ??= origin.clientAddress;
    out.userAgent ??= origin.userAgent;
  }
  try {
    if (out.session !== undefined && (out.credential === undefined || out.subject === undefined)) {
      const session = store.getSession(out.session);
      if (session !== undefined) {
        out.credential ??= session.credentialId;
        out.subject ??= store.getUserById(session.userId)?.name;
      }
    }
    if (out.credential !== undefined) {
      if (KEY_CHANGES.has(out.type)) credentials?.forget(out.credential);
      if (out.credentialName === undefined || out.aaguid === undefined || out.deviceBound === undefined) {
        const key = store.getCredential(out.credential);
        if (key !== undefined) {
          out.credentialName ??= key.nickname;
          out.aaguid ??= key.aaguid;
          out.deviceBound ??= key.deviceBound;
          out.subject ??= store.getUserById(key.userId)?.name;
        }
      }
    }
  } catch {
    // The event is recorded with what is known.
  }
  if (out.subject !== undefined) out.subjectKind ??= "user";
  return out;
}

/**
 * The audit record of an identity event. Every record has the same keys (absent ones undefined),
 * so the canonical JSON's key-order cache holds one shape for all of them.
 *
 * @example audit.append(identityAuditEvent(e, clock(), instance))
 */
export function identityAuditEvent(e: IdentityEvent, time: number, instance?: string): AuditEvent {
  const subject = e.subject ?? "";
  return {
    time,
    type: e.type,
    instance,
    subject,
    subjectKind: e.subjectKind ?? (subject !== "" ? "user" : undefined),
    issuer: e.issuer,
    credential: e.credential,
    credentialName: e.credentialName,
    aaguid: e.aaguid,
    deviceBound: e.deviceBound,
    session: e.session,
    actor: e.actor,
    grant: e.grant,
    jti: e.jti,
    actions: [],
    resource:
      e.resource ?? (e.kid !== undefined ? `/keys/${e.kid}` : subject !== "" ? `/users/${subject}` : ""),
    decision: e.decision ?? "allow",
    reason: e.reason,
    status: 0,
    durationMs: 0,
    clientAddress: e.clientAddress,
    userAgent: e.userAgent,
    details: e.kid !== undefined ? { kid: e.kid, ...e.details } : e.details,
  };
}

/** A session module event as an identity event: session id → `session`, user id → `subject`. */
function sessionIdentityEvent(store: Pick<IdentityStore, "getUserById">, e: SessionEvent): IdentityEvent {
  let subject: string | undefined;
  try {
    subject = e.userId !== undefined ? store.getUserById(e.userId)?.name : undefined;
  } catch {
    subject = undefined;
  }
  return {
    type: e.type,
    ...(subject !== undefined ? { subject } : {}),
    session: e.sessionId,
    reason: e.reason,
    decision: e.type === "refresh_token.reused" ? "deny" : "allow",
  };
}

/** A keyring event as an identity event: the gateway itself acts on the key "/keys/KID". */
function keyringIdentityEvent(e: KeyringEvent): IdentityEvent {
  return {
    type: e.type,
    subject: "cosmosgate",
    subjectKind: "system",
    ...(e.kid !== undefined ? { kid: e.kid } : { resource: "/keys" }),
    reason: e.reason,
    decision: e.type === "signing_key.ensure_failed" ? "error" : "allow",
  };
}

/** Everything the gateway's own identity provider is made of, built once per process. */
export interface IdentityServices {
  store: SqliteIdentityStore;
  webauthn: WebAuthn;
  keyring: Keyring;
  issuer: TokenIssuer;
  sessions: Sessions;
  revocation: RevocationChecker;
  /** The gateway's keys as the data plane's audit records describe them (cached). */
  credentials: CredentialDirectory;
  /** {@link describeIdentityEvent} on this store (and it keeps {@link credentials} fresh). */
  describeEvent(e: IdentityEvent): IdentityEvent;
  /** The `iss` of the gateway's own tokens: the control plane's public URL. */
  issuerUrl: string;
  /**
   * An authenticator model's name by AAGUID, for display: the configured FIDO metadata file's
   * descriptions (`identity.authenticators.metadataFile`), then a built-in list of common models.
   */
  authenticatorName: AuthenticatorNames;
  close(): void;
}

/**
 * Opens `stateDir/state.db` and builds the passkey identity provider: WebAuthn ceremonies, the
 * rotating signing keyring, the token issuer, sessions and the revocation checker.
 *
 * @example const id = await createIdentityServices(loaded, { clock, events: (e) => audit(e) })
 */
export async function createIdentityServices(
  loaded: LoadedConfig,
  deps: {
    clock: () => number;
    events: (e: IdentityEvent) => void;
    env?: NodeJS.ProcessEnv;
    stateDir: string;
  },
): Promise<IdentityServices> {
  const { config } = loaded;
  const id = config.identity;
  const store = openIdentityStore(join(deps.stateDir, "state.db"), { revocationPollMs: id.revocationPoll });
  try {
    const kekSource = id.tokens.keyEncryption;
    const kek = kekSource
      ? loadKek(
          "file" in kekSource ? { file: resolveConfigPath(loaded, kekSource.file) } : { env: kekSource.env },
          deps.env ?? process.env,
        )
      : undefined;
    const issuerUrl = config.controlPlane.publicUrl.replace(/\/$/, "");
    const credentials = createCredentialDirectory(store, { issuer: issuerUrl });
    const describeEvent = (e: IdentityEvent) => describeIdentityEvent(store, e, credentials);
    const keyring = createKeyring({
      store,
      clock: deps.clock,
      rotateEveryMs: id.tokens.rotateEvery,
      tokenTtlMs: id.tokens.ttl,
      jwksCacheMs: id.tokens.jwksCache,
      skewMs: id.tokens.clockSkew,
      kek,
      events: (e) => deps.events(keyringIdentityEvent(e)),
    });
    await keyring.ensure();
    const issuer = createTokenIssuer({
      keyring,
      issuer: issuerUrl,
      audience: config.dataPlane.publicUrl,
      ttlMs: id.tokens.ttl,
      clock: deps.clock,
    });
    const webauthn = createWebAuthn({
      store,
      rp: id.rp,
      authenticators: {
        ...id.authenticators,
        metadataFile: id.authenticators.metadataFile
          ? resolveConfigPath(loaded, id.authenticators.metadataFile)
          : undefined,
      },
      clock: deps.clock,
      events: (e) => deps.events(describeEvent(e)),
    });
    const sessions = createSessions({
      store,
      clock: deps.clock,
      maxAgeMs: id.sessions.maxAge,
      events: (e) => deps.events(describeEvent(sessionIdentityEvent(store, e))),
    });
    const revocation = createRevocationChecker(store, { issuers: [issuerUrl] });
    const metadataFile = id.authenticators.metadataFile;
    const authenticatorName = authenticatorNames(
      metadataFile !== undefined
        ? loadAuthenticatorNames(resolveConfigPath(loaded, metadataFile))
        : undefined,
    );
    return {
      store,
      webauthn,
      keyring,
      issuer,
      sessions,
      revocation,
      credentials,
      describeEvent,
      issuerUrl,
      authenticatorName,
      close() {
        keyring.stop();
        store.close();
      },
    };
  } catch (err) {
    store.close();
    throw err;
  }
}
