import "reflect-metadata";
import { X509Certificate as NodeX509, webcrypto } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

/** Files of the local development CA and the data plane's server certificate. */
export interface DevCaFiles {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface DevTls {
  files: DevCaFiles;
  /** PEM text, ready for `https.createServer`. */
  cert: string;
  key: string;
  ca: string;
  /** True when this call created the CA (first start). */
  created: boolean;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const HOSTS = ["localhost"];
const IPS = ["127.0.0.1", "::1"];

/**
 * Returns the dev CA and a server certificate for localhost, 127.0.0.1 and ::1 kept in
 * `<stateDir>/tls/`, creating them on first use and reusing them afterwards. The server
 * certificate is renewed (signed by the same CA) when it is within 30 days of expiry, so clients
 * that trust the CA keep working. Private keys are written with mode 0600.
 *
 * @example const tls = await ensureDevTls(".cosmosgate"); https.createServer({ cert: tls.cert, key: tls.key })
 */
export async function ensureDevTls(stateDir: string, now: () => number = Date.now): Promise<DevTls> {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const dir = join(stateDir, "tls");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files: DevCaFiles = {
    caCert: join(dir, "ca.pem"),
    caKey: join(dir, "ca-key.pem"),
    cert: join(dir, "server.pem"),
    key: join(dir, "server-key.pem"),
  };

  let created = false;
  let ca = await readPair(files.caCert, files.caKey);
  if (!ca || !stillValid(ca.cert, now(), 0)) {
    ca = await createCa(now());
    await writePem(files.caCert, ca.cert, 0o644);
    await writePem(files.caKey, ca.key, 0o600);
    created = true;
  }
  let server = created ? undefined : await readPair(files.cert, files.key);
  if (!server || !stillValid(server.cert, now(), 30 * 86_400_000) || !issuedBy(server.cert, ca.cert)) {
    server = await createServerCert(ca, now());
    await writePem(files.cert, server.cert, 0o644);
    await writePem(files.key, server.key, 0o600);
  }
  return { files, cert: server.cert, key: server.key, ca: ca.cert, created };
}

interface PemPair {
  cert: string;
  key: string;
}

async function readPair(certFile: string, keyFile: string): Promise<PemPair | undefined> {
  try {
    const [cert, key] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]);
    new NodeX509(cert); // throws on a damaged file, which is then recreated
    return { cert, key };
  } catch {
    return undefined;
  }
}

function stillValid(pem: string, now: number, marginMs: number): boolean {
  const c = new NodeX509(pem);
  return Date.parse(c.validTo) - marginMs > now && Date.parse(c.validFrom) <= now + 60_000;
}

function issuedBy(certPem: string, caPem: string): boolean {
  try {
    return new NodeX509(certPem).verify(new NodeX509(caPem).publicKey);
  } catch {
    return false;
  }
}

async function createCa(now: number): Promise<PemPair> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=cosmosgate local development CA ${new Date(now).toISOString().slice(0, 10)}, O=cosmosgate`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 10 * 365 * 86_400_000),
    signingAlgorithm: ALG,
    keys: keys as unknown as CryptoKeyPair,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as CryptoKey),
    ],
  });
  return { cert: cert.toString("pem"), key: await exportKeyPem(keys.privateKey as unknown as CryptoKey) };
}

async function createServerCert(ca: PemPair, now: number): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await webcrypto.subtle.importKey("pkcs8", pemBody(ca.key), ALG, false, ["sign"]);
  const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=localhost, O=cosmosgate",
    issuer: caCert.subject,
    notBefore: new Date(now - 60_000),
    // 397 days: the longest validity browsers and Node accept for a server certificate.
    notAfter: new Date(now + 397 * 86_400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey as unknown as CryptoKey,
    signingKey: caKey as unknown as CryptoKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...HOSTS.map((value) => ({ type: "dns" as const, value })),
        ...IPS.map((value) => ({ type: "ip" as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString("pem"), key: await exportKeyPem(keys.privateKey as unknown as CryptoKey) };
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key as unknown as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

function pemBody(pem: string): ArrayBuffer {
  const der = x509.PemConverter.decode(pem)[0];
  return der;
}

function serial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // positive
  return Buffer.from(bytes).toString("hex");
}

async function writePem(file: string, pem: string, mode: number): Promise<void> {
  await writeFile(file, pem, { mode });
  await chmod(file, mode); // writeFile's mode applies only when the file is created
}
