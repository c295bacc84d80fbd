import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { classify } from "../cosmos/classify.js";
import { approvalChallenge, approvalOperation, canonicalOperation, operationHash } from "./operation.js";

const op = (method: string, id = "o1", pk = '["c1"]', headers: Record<string, string> = {}) =>
  classify(method, `/dbs/shop/colls/orders/docs/${id}`, { "x-ms-documentdb-partitionkey": pk, ...headers });

const build = (o: {
  method?: string;
  id?: string;
  pk?: string;
  body?: string;
  person?: string;
  agent?: string;
}) =>
  approvalOperation({
    method: o.method ?? "DELETE",
    op: op(o.method ?? "DELETE", o.id, o.pk),
    body: o.body === undefined ? undefined : Buffer.from(o.body),
    person: o.person ?? "ada",
    agent: o.agent,
  });

describe("the canonical operation and its hash", () => {
  it("holds the method, resource, operation, actions, partition key, body, body hash, person and agent", () => {
    const body = '{"id":"o1","total":12,"customer":"c1"}';
    const operation = approvalOperation({
      method: "put",
      op: op("PUT"),
      body: Buffer.from(body),
      person: "ada",
      agent: "agent:copilot",
    });
    expect(operation).toEqual({
      method: "PUT",
      resource: "/dbs/shop/colls/orders/docs/o1",
      operation: "item.replace",
      actions: ["replace"],
      partitionKey: '["c1"]',
      body: { id: "o1", total: 12, customer: "c1" },
      bodySha256: createHash("sha256").update(body).digest("hex"),
      person: "ada",
      agent: "agent:copilot",
    });
    // Canonical JSON: sorted keys, no whitespace.
    expect(canonicalOperation(operation)).toBe(
      `{"actions":["replace"],"agent":"agent:copilot","body":{"customer":"c1","id":"o1","total":12},"bodySha256":"${operation.bodySha256}","method":"PUT","operation":"item.replace","partitionKey":"[\\"c1\\"]","person":"ada","resource":"/dbs/shop/colls/orders/docs/o1"}`,
    );
    expect(operationHash(operation)).toMatch(/^[0-9a-f]{64}$/);
    expect(operationHash(operation)).toBe(
      createHash("sha256").update(canonicalOperation(operation)).digest("hex"),
    );
  });

  it("a delete has no body: body null, bodySha256 empty, agent null for a person", () => {
    expect(build({})).toMatchObject({ body: null, bodySha256: "", agent: null, partitionKey: '["c1"]' });
    const noPk = approvalOperation({
      method: "DELETE",
      op: classify("DELETE", "/dbs/shop/colls/orders/docs/o1", {}),
      body: undefined,
      person: "ada",
      agent: undefined,
    });
    expect(noPk.partitionKey).toBeNull();
  });

  it("any change to the operation changes the hash: resource, partition key, body bytes, method, person, agent", () => {
    const base = operationHash(build({ method: "PUT", body: '{"id":"o1","n":1}' }));
    expect(operationHash(build({ method: "PUT", body: '{"id":"o1","n":1}' }))).toBe(base);
    const variants = [
      build({ method: "PUT", id: "o2", body: '{"id":"o1","n":1}' }),
      build({ method: "PUT", pk: '["c2"]', body: '{"id":"o1","n":1}' }),
      build({ method: "PUT", body: '{"id":"o1","n":2}' }),
      // Same parsed body, other bytes (key order, whitespace): still another operation.
      build({ method: "PUT", body: '{"n":1,"id":"o1"}' }),
      build({ method: "PUT", body: '{"id":"o1", "n":1}' }),
      build({ method: "PUT", body: '{"id":"o1","n":1}', person: "bob" }),
      build({ method: "PUT", body: '{"id":"o1","n":1}', agent: "agent:x" }),
    ];
    const hashes = new Set([base, ...variants.map(operationHash)]);
    expect(hashes.size).toBe(variants.length + 1);
  });

  it("a body that is not JSON, or that JSON cannot hold canonically, is shown as null and bound by its hash", () => {
    const text = build({ method: "PUT", body: "not json" });
    expect(text.body).toBeNull();
    expect(text.bodySha256).toBe(createHash("sha256").update("not json").digest("hex"));
    expect(build({ method: "PUT", body: '{"n":1e400}' }).body).toBeNull();
    const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    expect(build({ method: "PUT", body: deep }).body).toBeNull();
    expect(operationHash(build({ method: "PUT", body: deep }))).toMatch(/^[0-9a-f]{64}$/);
  });

  it("the challenge is base64url(SHA-256('cosmosgate-approval:' + id + ':' + operationHash))", () => {
    const hash = operationHash(build({}));
    const challenge = approvalChallenge("apr_abc", hash);
    expect(challenge).toBe(
      createHash("sha256").update(`cosmosgate-approval:apr_abc:${hash}`).digest("base64url"),
    );
    expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(approvalChallenge("apr_abd", hash)).not.toBe(challenge);
    expect(approvalChallenge("apr_abc", operationHash(build({ id: "o2" })))).not.toBe(challenge);
  });
});
