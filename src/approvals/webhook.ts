import type { Logger } from "pino";
import type { ApprovalOperation } from "../agents/contract.js";

/** What the webhook receives for a new pending approval: never the document or patch body. */
export interface ApprovalWebhookSummary {
  type: "approval.requested";
  id: string;
  /** Where an approver acts (the console's approval page). */
  url: string;
  status: string;
  /** The operation without its body (`bodySha256` still names the body's bytes). */
  operation: Omit<ApprovalOperation, "body">;
  operationHash: string;
  person: string;
  agent: string | null;
  approvers: string;
  quorum: number;
  createdAt: string;
  expiresAt: string;
}

/** Options of {@link createWebhookNotifier}. */
export interface WebhookOptions {
  url: string;
  timeoutMs: number;
  log: Logger;
  /** For tests: the fetch to use. */
  fetch?: typeof fetch;
}

/**
 * Announces new pending approvals with a JSON POST to `approvals.webhook`, bounded by
 * `approvals.webhookTimeout`. Fire and forget: the caller never waits, a failure (time-out,
 * refused connection, a non-2xx answer) is logged with the approval ID and nothing else.
 *
 * @example
 * ```ts
 * const notify = createWebhookNotifier({ url: "https://hooks.example.com/cg", timeoutMs: 5000, log });
 * notify(summary); // returns at once
 * ```
 */
export function createWebhookNotifier(
  opts: WebhookOptions,
): (summary: ApprovalWebhookSummary) => Promise<void> {
  const send = opts.fetch ?? fetch;
  const target = safeTarget(opts.url);
  return async (summary) => {
    try {
      const res = await send(opts.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "cosmosgate-approvals" },
        body: JSON.stringify(summary),
        signal: AbortSignal.timeout(opts.timeoutMs),
        redirect: "manual",
      });
      // The answer is not read beyond its status.
      await res.body?.cancel().catch(() => {});
      if (res.status < 200 || res.status >= 300) {
        opts.log.warn(
          { approval: summary.id, webhook: target, status: res.status },
          "approval webhook answered with an error status; the approval stays pending",
        );
      }
    } catch (err) {
      const timedOut = (err as Error).name === "TimeoutError";
      opts.log.warn(
        {
          approval: summary.id,
          webhook: target,
          problem: timedOut ? `no answer within ${opts.timeoutMs} ms` : (err as Error).message,
        },
        "approval webhook failed; the approval stays pending",
      );
    }
  };
}

/** The webhook's origin and path for the log: no query (it may carry a token) and no user info. */
function safeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "(not a URL)";
  }
}
