import { readFileSync } from "node:fs";
import type { MetadataStatement } from "@simplewebauthn/server";
import { WebAuthnError } from "../errors.js";

const AAGUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Reads FIDO metadata statements from a JSON file holding an array of them (the `metadataStatement`
 * objects of a FIDO MDS BLOB, or statements a vendor publishes). Runs once, at start-up, so it reads
 * synchronously. AAGUIDs are lower-cased, the form SimpleWebAuthn looks them up by.
 *
 * Each statement needs an `aaguid`, at least one `attestationRootCertificates` entry (base64 DER),
 * `authenticationAlgorithms` and `attestationTypes`.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_CONFIG` naming the file and what is wrong with it.
 *
 * @example
 * ```ts
 * const statements = loadMetadataStatements("/etc/cosmosgate/fido-metadata.json");
 * ```
 */
export function loadMetadataStatements(file: string): MetadataStatement[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    const why = error instanceof SyntaxError ? "is not valid JSON" : "cannot be read";
    throw config(file, `${why} (${(error as Error).message})`, error);
  }
  if (!Array.isArray(parsed)) throw config(file, "must hold a JSON array of FIDO metadata statements");
  return parsed.map((entry, index) => {
    const at = `entry ${index}`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw config(file, `${at} is not an object`);
    }
    const s = entry as Record<string, unknown>;
    const aaguid = typeof s.aaguid === "string" ? s.aaguid.toLowerCase() : undefined;
    if (aaguid === undefined || !AAGUID.test(aaguid)) {
      throw config(file, `${at} has no "aaguid" (FIDO2 statements name their model by AAGUID)`);
    }
    const roots = s.attestationRootCertificates;
    if (!Array.isArray(roots) || roots.length === 0 || !roots.every((r) => typeof r === "string")) {
      throw config(
        file,
        `${at} (aaguid ${aaguid}) has no "attestationRootCertificates" (base64 DER strings)`,
      );
    }
    if (!Array.isArray(s.authenticationAlgorithms) || !Array.isArray(s.attestationTypes)) {
      throw config(
        file,
        `${at} (aaguid ${aaguid}) needs "authenticationAlgorithms" and "attestationTypes" arrays`,
      );
    }
    return { ...(s as unknown as MetadataStatement), aaguid };
  });
}

function config(file: string, what: string, cause?: unknown): WebAuthnError {
  return new WebAuthnError(
    "ERR_WEBAUTHN_CONFIG",
    `identity.authenticators.metadataFile "${file}" ${what}; fix the file or remove allowAaguids.`,
    { cause },
  );
}
