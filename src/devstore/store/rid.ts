/**
 * Resource ids (`_rid`) in Cosmos DB's shape: a database rid is 4 bytes, a container rid 8 (its
 * database's 4 and 4 of its own), an item rid 16 (its container's 8 and 8 of its own), written in
 * base64 with "/" replaced by "-". The SDK depends on the shape: it keeps session tokens only for
 * an owner id (`x-ms-content-path`, a container rid) that decodes to exactly 8 bytes.
 */

/** Multiplying by an odd constant is a bijection on 32-bit integers: distinct keys, distinct rids. */
function scramble(n: number): number {
  return Math.imul(n, 0x9e3779b1) >>> 0;
}

function encode(bytes: Buffer): string {
  return bytes.toString("base64").replace(/\//g, "-");
}

/** The rid bytes of a database with integer key `k`. */
export function databaseRidBytes(k: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE((scramble(k) | 1) >>> 0, 0); // never all zero
  return b;
}

/** The rid bytes of a container with integer key `k` in the database whose rid bytes are `db`. */
export function containerRidBytes(db: Buffer, k: number): Buffer {
  const b = Buffer.alloc(8);
  db.copy(b, 0, 0, 4);
  // The top bit marks a container rid in Cosmos DB; keep it set like the service does.
  b.writeUInt32LE((scramble(k) | 0x80000000) >>> 0, 4);
  return b;
}

/** The rid of the item at position `pos` of the container whose rid bytes are `coll`. */
export function itemRid(coll: Buffer, pos: number): string {
  const b = Buffer.alloc(16);
  coll.copy(b, 0, 0, 8);
  b.writeUInt32LE(pos % 0x100000000, 8);
  b.writeUInt32LE(Math.floor(pos / 0x100000000), 12);
  return encode(b);
}

/** The rid of a script, user or other child resource `k` of a container or database. */
export function childRid(parent: Buffer, k: number): string {
  const b = Buffer.alloc(parent.length + 4);
  parent.copy(b, 0);
  b.writeUInt32LE((scramble(k) | 1) >>> 0, parent.length);
  return encode(b);
}

export function ridText(bytes: Buffer): string {
  return encode(bytes);
}
