import { createHash } from "node:crypto";
import type { ApprovalOperation } from "../agents/contract.js";
import { canonicalJson } from "../audit/chain.js";
import type { CosmosOperation } from "../cosmos/types.js";

/** What {@link approvalOperation} is built from: the classified request, its body and who asks. */
export interface OperationInput {
  method: string;
  op: Pick<CosmosOperation, "name" | "resource" | "actions" | "partitionKey">;
  /** The request body exactly as received; undefined when there is none. */
  body: Buffer | undefined;
  /** The person: the token's subject. */
  person: string;
  /** The agent acting for the person (`act.sub`, e.g. "agent:copilot"), when one is. */
  agent: string | undefined;
}

/**
 * The operation an approval is for, exactly as approvers see it and as its hash binds it: method,
 * resource, operation name, actions, partition key, the body (parsed when it is JSON a canonical
 * form can hold, else null) and the SHA-256 of the body's raw bytes, so any change to the bytes —
 * even one the parsed form cannot show — is a different operation.
 *
 * @example
 * ```ts
 * const operation = approvalOperation({ method: "DELETE", op, body: undefined, person: "ada", agent: "agent:bot" });
 * operationHash(operation); // "9f86d0..."
 * ```
 */
export function approvalOperation(input: OperationInput): ApprovalOperation {
  const raw = input.body;
  return {
    method: input.method.toUpperCase(),
    resource: input.op.resource,
    operation: input.op.name,
    actions: [...input.op.actions],
    partitionKey: input.op.partitionKey !== undefined ? JSON.stringify(input.op.partitionKey) : null,
    body: raw === undefined || raw.length === 0 ? null : parseBody(raw),
    bodySha256: raw === undefined || raw.length === 0 ? "" : createHash("sha256").update(raw).digest("hex"),
    person: input.person,
    agent: input.agent ?? null,
  };
}

/**
 * The canonical JSON of an operation: object keys sorted (src/audit/chain.ts's canonical JSON), no
 * whitespace. The same operation always gives the same text.
 */
export function canonicalOperation(operation: ApprovalOperation): string {
  return canonicalJson(operation);
}

/**
 * SHA-256 (hex) of the canonical operation: what "the same request" means for an approval.
 *
 * @example operationHash(operation) // "3b0c...e1" (64 hex digits)
 */
export function operationHash(operation: ApprovalOperation): string {
  return createHash("sha256").update(canonicalOperation(operation)).digest("hex");
}

/**
 * The WebAuthn challenge an approver's tap signs: base64url(SHA-256("cosmosgate-approval:" + id +
 * ":" + operationHash)). Bound to this approval and this exact operation: an assertion made for
 * another approval, or over another operation, does not verify.
 *
 * @example approvalChallenge("apr_x", hash) // 43 base64url characters
 */
export function approvalChallenge(id: string, hash: string): string {
  return createHash("sha256").update(`cosmosgate-approval:${id}:${hash}`).digest("base64url");
}

/** JSON that the canonical form can hold; null otherwise (the body's hash still binds its bytes). */
function parseBody(raw: Buffer): unknown {
  try {
    const value: unknown = JSON.parse(raw.toString("utf8"));
    canonicalJson(value); // refuses what JSON cannot hold faithfully; deep nesting throws RangeError
    return value;
  } catch {
    return null;
  }
}
