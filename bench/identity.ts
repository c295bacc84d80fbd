import { createTestWebAuthn } from "../src/identity/webauthn/testing/createTestWebAuthn.js";
import { createSoftAuthenticator } from "../src/identity/webauthn/testing/softAuthenticator.js";

/**
 * WebAuthn sign-in verifications per second: options (a stored challenge), a software
 * authenticator's assertion, and the full server-side verification with its store writes.
 */
export async function benchSignIn(
  iterations = 500,
): Promise<{ signInsPerSecond: number; msPerSignIn: number }> {
  const t = createTestWebAuthn();
  try {
    const key = createSoftAuthenticator({ rpId: t.rpId, origin: t.origin });
    await t.enroll("bench", key);
    for (let i = 0; i < 20; i++) await t.signIn(key, "bench"); // warm-up
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await t.signIn(key, "bench");
    const ms = performance.now() - start;
    return { signInsPerSecond: (iterations / ms) * 1000, msPerSignIn: ms / iterations };
  } finally {
    t.close();
  }
}
