import { join } from "node:path";
import type { LoadedConfig } from "../config/load.js";
import { resolveConfigPath } from "../config/load.js";
import {
  createRevocationChecker,
  createSessions,
  type RevocationChecker,
  type Sessions,
} from "../identity/sessions/index.js";
import { createTokenIssuer, type TokenIssuer } from "../identity/tokens/issue.js";
import { loadKek } from "../identity/tokens/keyEncryption.js";
import { createKeyring, type Keyring } from "../identity/tokens/keyring.js";
import { createWebAuthn, type WebAuthn } from "../identity/webauthn/index.js";
import { openIdentityStore, type SqliteIdentityStore } from "../store/identityStore.js";

/** An identity event for the audit trail (enrollment, sign-in, key changes, rotation, ...). */
export interface IdentityEvent {
  type: string;
  subject?: string;
  credential?: string;
  session?: string;
  kid?: string;
  reason: string;
  decision?: "allow" | "deny";
}

/** Everything the gateway's own identity provider is made of, built once per process. */
export interface IdentityServices {
  store: SqliteIdentityStore;
  webauthn: WebAuthn;
  keyring: Keyring;
  issuer: TokenIssuer;
  sessions: Sessions;
  revocation: RevocationChecker;
  /** The `iss` of the gateway's own tokens: the control plane's public URL. */
  issuerUrl: string;
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
    const keyring = createKeyring({
      store,
      clock: deps.clock,
      rotateEveryMs: id.tokens.rotateEvery,
      tokenTtlMs: id.tokens.ttl,
      jwksCacheMs: id.tokens.jwksCache,
      skewMs: id.tokens.clockSkew,
      kek,
      events: (e) => deps.events({ type: e.type, kid: e.kid, reason: e.reason, decision: "allow" }),
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
      events: (e) => deps.events(e),
    });
    const sessions = createSessions({
      store,
      clock: deps.clock,
      maxAgeMs: id.sessions.maxAge,
      events: (e) => deps.events(e as IdentityEvent),
    });
    const revocation = createRevocationChecker(store, { issuers: [issuerUrl] });
    return {
      store,
      webauthn,
      keyring,
      issuer,
      sessions,
      revocation,
      issuerUrl,
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
