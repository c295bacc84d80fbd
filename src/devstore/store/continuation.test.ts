import { describe, expect, it } from "vitest";
import { decodeContinuation, encodeContinuation, requestHash } from "./continuation.js";
import { DevStoreError } from "./errors.js";

describe("continuation tokens", () => {
  it("round-trips, bound to the request that issued them", () => {
    const h = requestHash("query", "rid", "SELECT * FROM c");
    const token = encodeContinuation({ h, e: 4, p: 17, k: 1 });
    expect(decodeContinuation(token, h)).toEqual({ h, e: 4, p: 17, k: 1 });
    expect(() => decodeContinuation(token, requestHash("query", "rid", "SELECT c.id FROM c"))).toThrow(
      /different query/,
    );
  });

  it("refuses garbage and tampered values with a 400", () => {
    const h = requestHash("x");
    for (const bad of [
      "",
      "not base64 json",
      encodeContinuation({ h, e: -1 }),
      Buffer.from('{"h":1}').toString("base64url"),
      "x".repeat(2000),
    ]) {
      let err: unknown;
      try {
        decodeContinuation(bad, h);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DevStoreError);
      expect((err as DevStoreError).status).toBe(400);
    }
  });
});
