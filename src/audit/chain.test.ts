import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, canonicalRecord, hashCanonical, hashRecord } from "./chain.js";
import { AuditError } from "./errors.js";
import type { AuditEvent } from "./types.js";

const event: AuditEvent = {
  time: 1_700_000_000_000,
  type: "data.request",
  subject: "alice",
  credential: undefined,
  actions: ["read"],
  resource: "/dbs/shop/colls/orders/docs/a1",
  decision: "allow",
  reason: "allowed by reader#0",
  status: 200,
  durationMs: 2.5,
};

describe("canonicalJson", () => {
  it("sorts keys, omits undefined members, writes no whitespace", () => {
    expect(canonicalJson({ b: 1, a: [true, "x", null], c: undefined, d: { z: 1, y: "é" } })).toBe(
      '{"a":[true,"x",null],"b":1,"d":{"y":"é","z":1}}',
    );
    expect(canonicalJson([])).toBe("[]");
    expect(canonicalJson({})).toBe("{}");
    expect(canonicalJson(-0)).toBe("0");
    expect(canonicalJson('quote " and \n')).toBe('"quote \\" and \\n"');
  });

  it("agrees with a plain recursive reference on any JSON value (flat fast path included)", () => {
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(reference).join(",")}]`;
      if (v !== null && typeof v === "object") {
        const members = Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => `${JSON.stringify(k)}:${reference((v as Record<string, unknown>)[k])}`);
        return `{${members.join(",")}}`;
      }
      return JSON.stringify(v);
    };
    const flat = fc.dictionary(
      fc.string(),
      fc.oneof(
        fc.string(),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.boolean(),
        fc.constant(null),
        fc.constant(undefined),
        fc.array(fc.string()),
      ),
    );
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), flat), (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
    );
    expect(canonicalJson({ 10: "a", 2: "b", b: ["x"], a: undefined })).toBe('{"10":"a","2":"b","b":["x"]}');
  });

  it("refuses what JSON cannot hold, at any depth", () => {
    const bad = [Number.NaN, Number.POSITIVE_INFINITY, 1n, () => 1, Symbol("s"), new Date(0), [undefined]];
    for (const value of [
      ...bad,
      ...bad.map((v) => ({ v })),
      ...bad.map((v) => ({ v: [v] })),
      { o: { v: 1n } },
    ]) {
      expect(() => canonicalJson(value), String(value)).toThrow(AuditError);
      expect(() => canonicalJson(value)).toThrow(
        expect.objectContaining({ name: "AuditError", code: "ERR_AUDIT_EVENT" }),
      );
    }
  });

  it("is stable: key order of the input does not matter, and it round-trips through JSON.parse", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
      }),
    );
  });
});

describe("hashRecord", () => {
  it("is SHA-256 hex over prevHash, a newline and the canonical record with its seq", () => {
    const data = canonicalRecord(1, event);
    expect(data).toContain('"seq":1');
    expect(data).not.toContain("credential");
    const expected = createHash("sha256").update(`\n${data}`).digest("hex");
    expect(hashRecord("", 1, event)).toBe(expected);
    expect(hashCanonical("", data)).toBe(expected);
    expect(hashRecord("", 1, event)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("depends on the previous hash, the seq and every field, not on key order", () => {
    const h = hashRecord("", 1, event);
    expect(hashRecord("x", 1, event)).not.toBe(h);
    expect(hashRecord("", 2, event)).not.toBe(h);
    expect(hashRecord("", 1, { ...event, status: 201 })).not.toBe(h);
    const shuffled = Object.fromEntries(Object.entries(event).reverse()) as unknown as AuditEvent;
    expect(hashRecord("", 1, shuffled)).toBe(h);
  });
});
