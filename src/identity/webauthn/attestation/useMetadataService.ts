import { MetadataService, type MetadataStatement } from "@simplewebauthn/server";
import { WebAuthnError } from "../errors.js";

/**
 * What this module remembers about SimpleWebAuthn's `MetadataService`, kept on that object itself
 * under a registered symbol (so two copies of this module in one process still agree).
 */
interface MetadataGuard {
  /** Statement JSON by lower-case AAGUID: everything loaded so far. */
  loaded: Map<string, string>;
  /** Settles when the last `initialize` finished. */
  ready: Promise<void>;
}

const GUARD = Symbol.for("cosmosgate.webauthn.metadataService");

/**
 * Loads metadata statements into SimpleWebAuthn's `MetadataService` — local statements only
 * (`mdsServers: []`, nothing is downloaded) in `strict` mode — and resolves when it is ready.
 *
 * `MetadataService` is a process-wide singleton inside SimpleWebAuthn (its attestation verifiers
 * consult it directly), so it cannot be injected. This guard initializes it once per process and
 * again only when statements that were never loaded are asked for; it then loads the union of all
 * statements (each gateway still checks its own `allowAaguids`). Asking for a different statement
 * under an AAGUID already loaded is a configuration error. Nothing else in cosmosgate may call
 * `MetadataService.initialize`.
 *
 * Consequence of `strict` mode for the whole process: once initialized, a `packed`, `tpm`,
 * `android-key` or `android-safetynet` attestation *with a certificate chain* from an AAGUID
 * without a statement fails verification, also in a `createWebAuthn` without `allowAaguids`
 * (those ask browsers for `attestation: "none"`, so browsers send `none`, which is unaffected).
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_CONFIG` for a conflicting statement.
 *
 * @example
 * ```ts
 * await useMetadataService(loadMetadataStatements(file));
 * const result = await verifyRegistrationResponse({ ... }); // packed x5c now chains to statement roots
 * ```
 */
export function useMetadataService(statements: MetadataStatement[]): Promise<void> {
  const holder = MetadataService as unknown as Record<symbol, MetadataGuard | undefined>;
  const current = holder[GUARD];
  const loaded = new Map(current?.loaded ?? []);
  let changed = current === undefined;
  for (const statement of statements) {
    const aaguid = String(statement.aaguid).toLowerCase();
    const json = JSON.stringify({ ...statement, aaguid });
    const previous = loaded.get(aaguid);
    if (previous === undefined) {
      loaded.set(aaguid, json);
      changed = true;
    } else if (previous !== json) {
      return Promise.reject(
        new WebAuthnError(
          "ERR_WEBAUTHN_CONFIG",
          `two different FIDO metadata statements for AAGUID ${aaguid} were loaded in one process; use one metadata file.`,
        ),
      );
    }
  }
  if (!changed && current !== undefined) return current.ready;
  const all = [...loaded.values()].map((json) => JSON.parse(json) as MetadataStatement);
  const ready = (current?.ready ?? Promise.resolve())
    .catch(() => undefined)
    .then(() => MetadataService.initialize({ statements: all, mdsServers: [], verificationMode: "strict" }));
  holder[GUARD] = { loaded, ready };
  return ready;
}
