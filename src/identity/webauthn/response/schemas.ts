import { z } from "zod";

/**
 * zod schemas of the response JSON the browser (or `@simplewebauthn/browser`) posts back. Every
 * binary member is a base64url string with a size limit; unknown members are dropped; a padded
 * value ("…==") is accepted and its padding removed, because a few clients pad.
 */

/** Largest accepted response, as JSON text: an attestation with a certificate chain fits well under. */
export const MAX_RESPONSE_CHARS = 64 * 1024;

/** A WebAuthn credential ID is at most 1023 bytes (W3C §5.1.3): 1364 base64url characters. */
const MAX_CREDENTIAL_ID_CHARS = 1364;

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** A non-empty base64url string of at most `max` characters, padding removed. */
export function base64url(max: number) {
  return z
    .string({ error: "expected a base64url string" })
    .min(1, { error: "must not be empty" })
    .max(max, { error: `is longer than ${max} characters` })
    .regex(BASE64URL, { error: "is not base64url (only A-Z, a-z, 0-9, '-' and '_')" })
    .transform((s) => s.replace(/=+$/, ""));
}

/** `null` or `""` (which some clients send for "absent") read as undefined. */
function absentAsUndefined(value: unknown): unknown {
  return value === null || value === "" ? undefined : value;
}

const credentialBase = {
  id: base64url(MAX_CREDENTIAL_ID_CHARS),
  rawId: base64url(MAX_CREDENTIAL_ID_CHARS),
  type: z.literal("public-key", { error: 'must be "public-key"' }),
  authenticatorAttachment: z.preprocess(
    absentAsUndefined,
    z.enum(["platform", "cross-platform"], { error: 'must be "platform" or "cross-platform"' }).optional(),
  ),
  clientExtensionResults: z
    .record(z.string(), z.unknown(), { error: "expected an object" })
    .optional()
    .transform(() => ({})),
};

const sameIds = (r: { id: string; rawId: string }) => r.id === r.rawId;
const sameIdsMessage = { error: "id and rawId must be the same base64url credential ID", path: ["rawId"] };

/** The shape of a `RegistrationResponseJSON`. */
export const registrationResponseSchema = z
  .object({
    ...credentialBase,
    response: z.object(
      {
        clientDataJSON: base64url(8 * 1024),
        attestationObject: base64url(MAX_RESPONSE_CHARS),
        authenticatorData: base64url(MAX_RESPONSE_CHARS).optional(),
        transports: z
          .array(z.string().max(32, { error: "is longer than 32 characters" }), {
            error: "expected an array",
          })
          .max(16, { error: "has more than 16 entries" })
          .optional(),
        publicKeyAlgorithm: z.number({ error: "expected a number" }).int().optional(),
        publicKey: base64url(8 * 1024).optional(),
      },
      { error: "expected an object" },
    ),
  })
  .refine(sameIds, sameIdsMessage);

/** The shape of an `AuthenticationResponseJSON`. */
export const authenticationResponseSchema = z
  .object({
    ...credentialBase,
    response: z.object(
      {
        clientDataJSON: base64url(8 * 1024),
        authenticatorData: base64url(8 * 1024),
        signature: base64url(2 * 1024),
        /** At most 64 bytes (W3C §5.4.3): 86 characters. */
        userHandle: z.preprocess(absentAsUndefined, base64url(88).optional()),
      },
      { error: "expected an object" },
    ),
  })
  .refine(sameIds, sameIdsMessage);
