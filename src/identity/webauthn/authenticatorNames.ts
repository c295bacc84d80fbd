/**
 * Names of well-known authenticator models by AAGUID, for display only ("my keys", the people
 * list). Entries come from the FIDO Metadata Service descriptions (hardware keys) and the
 * community list passkeydeveloper/passkey-authenticator-aaguids (passkey providers); only models
 * whose AAGUID is stable and widely documented are listed. An AAGUID is what the authenticator
 * claims at registration: without verified attestation (`allowAaguids`) it names the model the
 * key says it is, not one the gateway proved.
 */
export const KNOWN_AUTHENTICATORS: ReadonlyMap<string, string> = new Map([
  // Hardware security keys (FIDO MDS descriptions).
  ["cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"],
  ["ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"],
  ["fa2b99dc-9e39-4257-8f92-4a30d23c4118", "YubiKey 5 Series with NFC"],
  ["2fc0579f-8113-47ea-b116-bb5a8db9202a", "YubiKey 5 Series with NFC"],
  ["f8a011f3-8c0a-4d15-8006-17111f9edc7d", "Security Key by Yubico"],
  // Platform authenticators and passkey providers (community list names).
  ["ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4", "Google Password Manager"],
  ["adce0002-35bc-c60a-648b-0b25f1f05503", "Chrome on Mac"],
  ["08987058-cadc-4b81-b6e1-30de50dcbe96", "Windows Hello"],
  ["9ddd1817-af5a-4672-a2b9-3e3dd95000a9", "Windows Hello"],
  ["6028b017-b1d4-4c02-b4b3-afcdafc96bb2", "Windows Hello"],
  ["fbfc3007-154e-4ecc-8c0b-6e020557d7bd", "iCloud Keychain"],
  ["dd4ec289-e01d-41c9-bb89-70fa845d4bf2", "iCloud Keychain (Managed)"],
  ["bada5566-a7aa-401f-bd96-45619a55120d", "1Password"],
  ["d548826e-79b4-db40-a3d8-11116f7e8349", "Bitwarden"],
  ["531126d6-e717-415c-9320-3d9aa6981239", "Dashlane"],
  ["b84e4048-15dc-4dd0-8640-f4f60813c8af", "NordPass"],
  ["0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6", "Keeper"],
  ["50726f74-6f6e-5061-7373-50726f746f6e", "Proton Pass"],
  ["fdb141b2-5d84-443e-8a35-4698c205a502", "KeePassXC"],
  ["53414d53-554e-4700-0000-000000000000", "Samsung Pass"],
]);

/** The all-zero AAGUID: the authenticator did not say what it is (attestation "none", many passkeys). */
export const ZERO_AAGUID = "00000000-0000-0000-0000-000000000000";

/** Looks up an authenticator model's name by AAGUID; null when unknown. */
export type AuthenticatorNames = (aaguid: string) => string | null;

/**
 * A lookup of authenticator names: `extra` first (e.g. the descriptions of a configured FIDO
 * metadata file, keyed by lower-case AAGUID), then {@link KNOWN_AUTHENTICATORS}. The all-zero
 * AAGUID and anything unknown are null. AAGUIDs match in any case.
 *
 * @example
 * ```ts
 * const nameOf = authenticatorNames(new Map([["0a1b...", "Contoso Key"]]));
 * nameOf("EE882879-721C-4913-9775-3DFCCE97072A"); // "YubiKey 5 Series"
 * nameOf("00000000-0000-0000-0000-000000000000"); // null
 * ```
 */
export function authenticatorNames(extra?: ReadonlyMap<string, string>): AuthenticatorNames {
  return (aaguid) => {
    if (typeof aaguid !== "string") return null;
    const key = aaguid.toLowerCase();
    if (key === ZERO_AAGUID) return null;
    return extra?.get(key) ?? KNOWN_AUTHENTICATORS.get(key) ?? null;
  };
}
