import "reflect-metadata";
import { createPrivateKey, webcrypto } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import type { MetadataStatement } from "@simplewebauthn/server";
import type { SoftAttestation } from "./softAuthenticator.js";

/** A test authenticator vendor: a root CA, an attestation certificate under it, and the model's metadata. */
export interface AttestationCa {
  aaguid: string;
  /** Root certificate, DER. */
  root: Uint8Array;
  /** Give to `createSoftAuthenticator({ fmt: "packed", attestation })` for full attestation. */
  attestation: SoftAttestation;
  /** A FIDO metadata statement for the model, naming `root` as its attestation root. */
  statement: MetadataStatement;
  /** Writes `[statement, ...more]` as a metadata file in `dir` and returns its path. */
  writeMetadataFile(dir: string, more?: MetadataStatement[]): Promise<string>;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
/** id-fido-gen-ce-aaguid: the attestation certificate names the model it attests. */
const FIDO_AAGUID_OID = "1.3.6.1.4.1.45724.1.1.4";

/**
 * Makes a tiny attestation PKI for tests: a self-signed root CA and a packed attestation
 * certificate (OU "Authenticator Attestation", CA false, the AAGUID extension) valid from a day ago
 * for ten years — SimpleWebAuthn checks certificate validity against the real clock — plus a
 * metadata statement that lists the root.
 *
 * @example
 * ```ts
 * const ca = await createAttestationCa("4b7c9a4e-0d3c-4a57-9a3e-6f1d8e2c5b10");
 * const key = createSoftAuthenticator({ rpId, origin, aaguid: ca.aaguid, fmt: "packed", attestation: ca.attestation });
 * const metadataFile = await ca.writeMetadataFile(tmpDir);
 * ```
 */
export async function createAttestationCa(
  aaguid: string,
  vendor = "cosmosgate test vendor",
): Promise<AttestationCa> {
  const crypto = webcrypto as unknown as Crypto;
  x509.cryptoProvider.set(crypto);
  const notBefore = new Date(Date.now() - 24 * 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + 10 * 365 * 24 * 60 * 60 * 1000);

  const rootKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `C=US, O=${vendor}, CN=${vendor} attestation root`,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });

  const leafKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const aaguidBytes = Buffer.from(aaguid.replace(/-/g, ""), "hex");
  const leafCert = await x509.X509CertificateGenerator.create({
    serialNumber: "02",
    subject: `C=US, O=${vendor}, OU=Authenticator Attestation, CN=${vendor} soft key`,
    issuer: rootCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: leafKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      // extnValue of id-fido-gen-ce-aaguid is an OCTET STRING holding the 16 AAGUID bytes.
      new x509.Extension(FIDO_AAGUID_OID, false, Buffer.concat([Buffer.from([0x04, 0x10]), aaguidBytes])),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });

  const pkcs8 = Buffer.from(await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey));
  const root = new Uint8Array(rootCert.rawData);
  const statement = {
    aaguid: aaguid.toLowerCase(),
    description: `${vendor} soft key`,
    authenticatorVersion: 1,
    protocolFamily: "fido2",
    schema: 3,
    upv: [{ major: 1, minor: 0 }],
    authenticationAlgorithms: ["secp256r1_ecdsa_sha256_raw"],
    publicKeyAlgAndEncodings: ["cose"],
    attestationTypes: ["basic_full"],
    userVerificationDetails: [[{ userVerificationMethod: "passcode_internal" }]],
    keyProtection: ["hardware", "secure_element"],
    matcherProtection: ["on_chip"],
    attachmentHint: ["external", "wired"],
    tcDisplay: [],
    attestationRootCertificates: [Buffer.from(root).toString("base64")],
  } as unknown as MetadataStatement;

  return {
    aaguid: aaguid.toLowerCase(),
    root,
    attestation: {
      x5c: [new Uint8Array(leafCert.rawData)],
      privateKey: createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }),
    },
    statement,
    async writeMetadataFile(dir, more = []) {
      const file = join(dir, `metadata-${aaguid.slice(0, 8)}.json`);
      await writeFile(file, JSON.stringify([statement, ...more], null, 2));
      return file;
    },
  };
}
