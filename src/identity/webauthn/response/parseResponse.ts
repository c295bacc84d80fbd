import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import type { z } from "zod";
import { WebAuthnError } from "../errors.js";
import { authenticationResponseSchema, MAX_RESPONSE_CHARS, registrationResponseSchema } from "./schemas.js";

type Ceremony = "registration" | "authentication";

/**
 * Checks the shape of an untrusted registration or authentication response (as parsed from the
 * request body) and returns it typed. Nothing is decoded yet beyond the JSON structure; binary
 * members are checked to be base64url within size limits.
 *
 * @throws {WebAuthnError} `ERR_WEBAUTHN_MALFORMED` (400) naming the member that is wrong.
 *
 * @example
 * ```ts
 * const response = parseResponse("authentication", request.body); // AuthenticationResponseJSON
 * ```
 */
export function parseResponse(ceremony: "registration", input: unknown): RegistrationResponseJSON;
export function parseResponse(ceremony: "authentication", input: unknown): AuthenticationResponseJSON;
export function parseResponse(
  ceremony: Ceremony,
  input: unknown,
): RegistrationResponseJSON | AuthenticationResponseJSON {
  const what = ceremony === "registration" ? "registration" : "sign-in";
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw malformed(`the ${what} response must be a JSON object (the credential the browser returned)`);
  }
  let size: number;
  try {
    size = JSON.stringify(input).length;
  } catch {
    throw malformed(`the ${what} response is not plain JSON`);
  }
  if (size > MAX_RESPONSE_CHARS) {
    throw malformed(
      `the ${what} response is ${size} characters long, more than the ${MAX_RESPONSE_CHARS} allowed`,
    );
  }
  const schema: z.ZodType =
    ceremony === "registration" ? registrationResponseSchema : authenticationResponseSchema;
  const result = schema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.slice(0, 3).map((issue) => {
      const path = issue.path.length > 0 ? issue.path.join(".") : "(response)";
      return `${path} ${issue.message}`;
    });
    throw malformed(`the ${what} response is malformed: ${problems.join("; ")}`);
  }
  return result.data as RegistrationResponseJSON | AuthenticationResponseJSON;
}

function malformed(message: string): WebAuthnError {
  return new WebAuthnError(
    "ERR_WEBAUTHN_MALFORMED",
    `${message}; send the credential exactly as the browser returned it (PublicKeyCredential.toJSON()).`,
  );
}
