import type { PartitionKeyComponent } from "./partitionKey.js";

/*
 * Effective partition keys (EPK) of hierarchical ("MultiHash", version 2) partition keys, as the
 * Cosmos DB SDKs compute them: per component, MurmurHash3 x64 128 (seed 0) of the component's
 * binary encoding, the 16 bytes reversed, the top two bits cleared, in upper-case hex; the key's
 * EPK is the concatenation. The SDK sends an EPK range (x-ms-start-epk / x-ms-end-epk) when it
 * reads the change feed of a prefix of a hierarchical key, so the store must map its keys onto
 * the same space. Hand-written: MurmurHash3 is a few lines, and the npm ports hash strings, not
 * the byte encoding Cosmos DB uses.
 */

const MASK = (1n << 64n) - 1n;
const C1 = 0x87c37b91114253d5n;
const C2 = 0x4cf5ad432745937fn;

function rotl(x: bigint, r: bigint): bigint {
  return ((x << r) | (x >> (64n - r))) & MASK;
}

function fmix(k: bigint): bigint {
  k ^= k >> 33n;
  k = (k * 0xff51afd7ed558ccdn) & MASK;
  k ^= k >> 33n;
  k = (k * 0xc4ceb9fe1a85ec53n) & MASK;
  k ^= k >> 33n;
  return k;
}

/** MurmurHash3 x64 128 with seed 0: h1 then h2, each as a 64-bit integer. */
export function murmur3x64(bytes: Uint8Array): [bigint, bigint] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  const blocks = len - (len % 16);
  let h1 = 0n;
  let h2 = 0n;
  for (let i = 0; i < blocks; i += 16) {
    let k1 = view.getBigUint64(i, true);
    let k2 = view.getBigUint64(i + 8, true);
    k1 = (k1 * C1) & MASK;
    k1 = rotl(k1, 31n);
    k1 = (k1 * C2) & MASK;
    h1 ^= k1;
    h1 = rotl(h1, 27n);
    h1 = (h1 + h2) & MASK;
    h1 = (h1 * 5n + 0x52dce729n) & MASK;
    k2 = (k2 * C2) & MASK;
    k2 = rotl(k2, 33n);
    k2 = (k2 * C1) & MASK;
    h2 ^= k2;
    h2 = rotl(h2, 31n);
    h2 = (h2 + h1) & MASK;
    h2 = (h2 * 5n + 0x38495ab5n) & MASK;
  }
  let k1 = 0n;
  let k2 = 0n;
  const tail = len - blocks;
  for (let i = tail - 1; i >= 8; i--) k2 ^= BigInt(bytes[blocks + i]) << BigInt((i - 8) * 8);
  if (tail > 8) {
    k2 = (k2 * C2) & MASK;
    k2 = rotl(k2, 33n);
    k2 = (k2 * C1) & MASK;
    h2 ^= k2;
  }
  for (let i = Math.min(tail, 8) - 1; i >= 0; i--) k1 ^= BigInt(bytes[blocks + i]) << BigInt(i * 8);
  if (tail > 0) {
    k1 = (k1 * C1) & MASK;
    k1 = rotl(k1, 31n);
    k1 = (k1 * C2) & MASK;
    h1 ^= k1;
  }
  h1 ^= BigInt(len);
  h2 ^= BigInt(len);
  h1 = (h1 + h2) & MASK;
  h2 = (h2 + h1) & MASK;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = (h1 + h2) & MASK;
  h2 = (h2 + h1) & MASK;
  return [h1, h2];
}

/** The binary encoding of one component (the SDK's hashing v2 prefixes). */
function encode(c: PartitionKeyComponent): Uint8Array {
  if (typeof c === "string") {
    const s = Buffer.from(c, "utf8");
    const out = new Uint8Array(s.length + 2);
    out[0] = 0x08;
    out.set(s, 1);
    out[s.length + 1] = 0xff;
    return out;
  }
  if (typeof c === "number") {
    const out = new Uint8Array(9);
    out[0] = 0x05;
    new DataView(out.buffer).setFloat64(1, c, true);
    return out;
  }
  if (c === true) return Uint8Array.of(0x03);
  if (c === false) return Uint8Array.of(0x02);
  if (c === null) return Uint8Array.of(0x01);
  return Uint8Array.of(0x00); // {}: undefined
}

/** The 32-hex-digit EPK of one component. */
export function componentEpk(c: PartitionKeyComponent): string {
  const [h1, h2] = murmur3x64(encode(c));
  // Bytes h1 (LE) || h2 (LE), reversed: h2 (BE) || h1 (BE); top two bits cleared.
  const hi = h2 & ~(0xc0n << 56n);
  return (hi.toString(16).padStart(16, "0") + h1.toString(16).padStart(16, "0")).toUpperCase();
}

/** The EPK of a (full or prefix) hierarchical key. */
export function multiHashEpk(key: readonly PartitionKeyComponent[]): string {
  let out = "";
  for (const c of key) out += componentEpk(c);
  return out;
}
