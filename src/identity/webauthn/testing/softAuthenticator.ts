import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { isoCBOR } from "@simplewebauthn/server/helpers";

/**
 * A software FIDO2 authenticator for tests, built by hand (W3C WebAuthn §6.1, §8.2) so a test can
 * make every shape a real authenticator could send — and several it should not: device-bound or
 * synced keys, `none`, `packed` self or full attestation, any flags (BS without BE, no UV), any
 * signature counter, a wrong RP ID hash, a wrong origin or ceremony type. `nid-webauthn-emulator`
 * covers the ordinary synced passkey; this covers the rest.
 *
 * Keys are ECDSA P-256 (COSE alg -7). `authData` = SHA-256(rpId) ‖ flags ‖ signCount (u32 BE) ‖
 * [AAGUID ‖ credIdLen (u16 BE) ‖ credId ‖ COSE key]; signatures are DER ECDSA over
 * `authData ‖ SHA-256(clientDataJSON)`; CBOR comes from SimpleWebAuthn's own `isoCBOR`.
 */

/** Authenticator data flags (W3C §6.1). */
export interface SoftFlags {
  /** User present (0x01). */
  up: boolean;
  /** User verified (0x04). */
  uv: boolean;
  /** Backup eligible (0x08). */
  be: boolean;
  /** Backed up (0x10). */
  bs: boolean;
}

/** A full-attestation identity: the certificate chain (leaf first, DER) and the leaf's private key. */
export interface SoftAttestation {
  x5c: Uint8Array[];
  privateKey: KeyObject;
}

/** Options of {@link createSoftAuthenticator}. */
export interface SoftAuthenticatorOptions {
  /** RP ID used when the options do not name one (and to scope credentials). */
  rpId: string;
  /** Origin written into clientDataJSON. */
  origin: string;
  /** Device-bound (BE=0, BS=0) like a security key; `false` makes synced passkeys (BE=1, BS=1). Default true. */
  deviceBound?: boolean;
  /** AAGUID (UUID string). Default 00000000-0000-0000-0000-000000000000. */
  aaguid?: string;
  /** Attestation format. Default "none"; "packed" is self attestation unless `attestation` is given. */
  fmt?: "none" | "packed";
  /** With `fmt: "packed"`: sign the attestation with this certificate's key and send the chain (full attestation). */
  attestation?: SoftAttestation;
  /** Whether the authenticator verifies the user (UV flag). Default true. */
  userVerification?: boolean;
}

/** A credential the authenticator holds. */
export interface SoftCredential {
  /** base64url. */
  id: string;
  rpId: string;
  /** The user handle (user.id of the creation options), base64url. */
  userHandle: string;
  /** The current signature counter (the last value sent). */
  counter: number;
  privateKey: KeyObject;
  /** COSE_Key bytes. */
  publicKey: Uint8Array;
}

/** Changes to one registration response. Anything not given follows the options and the authenticator. */
export interface SoftRegistrationOverrides {
  /** Flag values to force (AT is always set). */
  flags?: Partial<SoftFlags>;
  /** Signature counter to report (default 0). */
  counter?: number;
  /** Hash this RP ID instead of the options' (a wrong RP ID hash). */
  rpId?: string;
  origin?: string;
  /** clientDataJSON.type; default "webauthn.create". */
  type?: string;
  /** clientDataJSON.challenge; default the options' challenge. */
  challenge?: string;
  fmt?: "none" | "packed";
  aaguid?: string;
  /** Use this credential ID (base64url) instead of a fresh random one. */
  credentialId?: string;
  /** Ignore `excludeCredentials` (a buggy or hostile client). */
  ignoreExclude?: boolean;
}

/** Changes to one authentication response. */
export interface SoftAuthenticationOverrides {
  flags?: Partial<SoftFlags>;
  /** Signature counter to report; default the credential's counter + 1. It becomes the credential's counter. */
  counter?: number;
  rpId?: string;
  origin?: string;
  /** clientDataJSON.type; default "webauthn.get". */
  type?: string;
  challenge?: string;
  /** Answer with this credential (base64url ID) even if `allowCredentials` does not list it. */
  credentialId?: string;
  /** userHandle to send; `null` sends none. Default the credential's user handle. */
  userHandle?: string | null;
  /** Send a signature that does not verify. */
  badSignature?: boolean;
}

/** A software authenticator; see {@link createSoftAuthenticator}. */
export interface SoftAuthenticator {
  readonly aaguid: string;
  /** The credentials it holds, in creation order. */
  readonly credentials: readonly SoftCredential[];
  /** Answers creation options like `navigator.credentials.create()` + `toJSON()`. */
  register(
    options: PublicKeyCredentialCreationOptionsJSON,
    overrides?: SoftRegistrationOverrides,
  ): RegistrationResponseJSON;
  /** Answers request options like `navigator.credentials.get()` + `toJSON()`. */
  authenticate(
    options: PublicKeyCredentialRequestOptionsJSON,
    overrides?: SoftAuthenticationOverrides,
  ): AuthenticationResponseJSON;
  /** A second authenticator holding copies of the same keys and counters: a cloned authenticator. */
  clone(): SoftAuthenticator;
}

const ZERO_AAGUID = "00000000-0000-0000-0000-000000000000";

/**
 * Creates a {@link SoftAuthenticator}.
 *
 * @example
 * ```ts
 * const key = createSoftAuthenticator({ rpId: "localhost", origin: "http://localhost:8080" });
 * const reg = key.register(await webauthn.registrationOptions({ inviteSecret }));
 * await webauthn.verifyRegistration({ response: reg });
 * const login = key.authenticate(await webauthn.authenticationOptions({}));
 * const { user, amr } = await webauthn.verifyAuthentication({ response: login }); // amr: ["hwk", "user", "pin"]
 * // negative shapes:
 * key.authenticate(options, { flags: { bs: true } }); // backed up but not backup-eligible
 * key.authenticate(options, { counter: 0 });          // counter regression
 * ```
 */
export function createSoftAuthenticator(options: SoftAuthenticatorOptions): SoftAuthenticator {
  return build(options, []);
}

function build(options: SoftAuthenticatorOptions, credentials: SoftCredential[]): SoftAuthenticator {
  const deviceBound = options.deviceBound ?? true;
  const aaguid = (options.aaguid ?? ZERO_AAGUID).toLowerCase();
  const uv = options.userVerification ?? true;
  const baseFlags = (over: Partial<SoftFlags> | undefined): SoftFlags => ({
    up: true,
    uv,
    be: !deviceBound,
    bs: !deviceBound,
    ...over,
  });

  return {
    aaguid,
    credentials,

    register(opts, over = {}) {
      const rpId = opts.rp.id ?? options.rpId;
      if (!over.ignoreExclude) {
        const excluded = new Set((opts.excludeCredentials ?? []).map((c) => c.id));
        if (credentials.some((c) => c.rpId === rpId && excluded.has(c.id))) {
          throw new Error(
            "InvalidStateError: this authenticator already holds a credential in excludeCredentials",
          );
        }
      }
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const cose = coseKey(publicKey);
      const idBytes =
        over.credentialId !== undefined ? Buffer.from(over.credentialId, "base64url") : randomBytes(32);
      const id = idBytes.toString("base64url");
      const counter = over.counter ?? 0;
      const authData = Buffer.concat([
        sha256(over.rpId ?? rpId),
        Buffer.from([flagsByte(baseFlags(over.flags), true)]),
        u32(counter),
        uuidBytes(over.aaguid ?? aaguid),
        u16(idBytes.length),
        idBytes,
        cose,
      ]);
      const clientDataJSON = clientData(
        over.type ?? "webauthn.create",
        over.challenge ?? opts.challenge,
        over.origin ?? options.origin,
      );
      const fmt = over.fmt ?? options.fmt ?? "none";
      const attStmt = new Map<string, unknown>();
      if (fmt === "packed") {
        const signed = Buffer.concat([authData, sha256(clientDataJSON)]);
        attStmt.set("alg", -7);
        if (options.attestation !== undefined) {
          attStmt.set("sig", new Uint8Array(sign("sha256", signed, options.attestation.privateKey)));
          attStmt.set(
            "x5c",
            options.attestation.x5c.map((c) => new Uint8Array(c)),
          );
        } else {
          attStmt.set("sig", new Uint8Array(sign("sha256", signed, privateKey)));
        }
      }
      const attestationObject = isoCBOR.encode(
        new Map<string, unknown>([
          ["fmt", fmt],
          ["attStmt", attStmt],
          ["authData", new Uint8Array(authData)],
        ]) as never,
      );
      credentials.push({ id, rpId, userHandle: opts.user.id, counter, privateKey, publicKey: cose });
      return {
        id,
        rawId: id,
        type: "public-key",
        response: {
          clientDataJSON: b64(clientDataJSON),
          attestationObject: b64(attestationObject),
          authenticatorData: b64(authData),
          transports: deviceBound ? ["usb"] : ["internal", "hybrid"],
          publicKeyAlgorithm: -7,
          publicKey: b64(publicKey.export({ format: "der", type: "spki" })),
        },
        authenticatorAttachment: deviceBound ? "cross-platform" : "platform",
        clientExtensionResults: { credProps: { rk: true } },
      };
    },

    authenticate(opts, over = {}) {
      const rpId = opts.rpId ?? options.rpId;
      const mine = credentials.filter((c) => c.rpId === rpId);
      let credential: SoftCredential | undefined;
      if (over.credentialId !== undefined) {
        credential = credentials.find((c) => c.id === over.credentialId);
      } else if (opts.allowCredentials !== undefined && opts.allowCredentials.length > 0) {
        const allowed = new Set(opts.allowCredentials.map((c) => c.id));
        credential = mine.find((c) => allowed.has(c.id));
      } else {
        credential = mine.at(-1);
      }
      if (credential === undefined)
        throw new Error("NotAllowedError: this authenticator holds no matching credential");
      const counter = over.counter ?? credential.counter + 1;
      credential.counter = counter;
      const authData = Buffer.concat([
        sha256(over.rpId ?? rpId),
        Buffer.from([flagsByte(baseFlags(over.flags), false)]),
        u32(counter),
      ]);
      const clientDataJSON = clientData(
        over.type ?? "webauthn.get",
        over.challenge ?? opts.challenge,
        over.origin ?? options.origin,
      );
      let signature = sign(
        "sha256",
        Buffer.concat([authData, sha256(clientDataJSON)]),
        credential.privateKey,
      );
      if (over.badSignature) {
        signature = sign("sha256", Buffer.from("something else"), credential.privateKey);
      }
      const userHandle = over.userHandle === undefined ? credential.userHandle : over.userHandle;
      return {
        id: credential.id,
        rawId: credential.id,
        type: "public-key",
        response: {
          clientDataJSON: b64(clientDataJSON),
          authenticatorData: b64(authData),
          signature: b64(signature),
          ...(userHandle !== null ? { userHandle } : {}),
        },
        authenticatorAttachment: deviceBound ? "cross-platform" : "platform",
        clientExtensionResults: {},
      };
    },

    clone() {
      return build(
        options,
        credentials.map((c) => ({ ...c })),
      );
    },
  };
}

function flagsByte(f: SoftFlags, attested: boolean): number {
  return (
    (f.up ? 0x01 : 0) | (f.uv ? 0x04 : 0) | (f.be ? 0x08 : 0) | (f.bs ? 0x10 : 0) | (attested ? 0x40 : 0)
  );
}

/** COSE_Key (RFC 9053) of a P-256 public key: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}. */
function coseKey(publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: "jwk" });
  return isoCBOR.encode(
    new Map<number, unknown>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x as string, "base64url"))],
      [-3, new Uint8Array(Buffer.from(jwk.y as string, "base64url"))],
    ]) as never,
  );
}

function clientData(type: string, challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), "utf8");
}

function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  return Buffer.from(hex, "hex");
}

function sha256(data: string | Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function b64(data: Uint8Array): string {
  return Buffer.from(data).toString("base64url");
}
