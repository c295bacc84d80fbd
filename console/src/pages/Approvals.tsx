/**
 * Approvals: the requests waiting for a tap (live, from the app's approval feed), and one request's
 * page showing the operation exactly — method, resource, partition key, the document or patch, who
 * asked — with the hash the tap signs, the quorum's progress, and Approve (a tap) or Deny.
 */
import type { PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/browser";
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { ApprovalOperation, ApprovalView } from "../../../src/agents/contract";
import type { MeView } from "../../../src/server/controlPlane/consoleApi";
import { ApiError, post, seg } from "../api";
import {
  type ApprovalFeed,
  agentName,
  approvalChallengeText,
  approvedBy,
  askedBy,
  expired,
  later,
  mayApprove,
  mayDeny,
  operationLine,
  waitsForMe,
} from "../approvals";
import { canonicalJson, sha256hex, sha256url } from "../canonical";
import {
  Badge,
  Busy,
  Facts,
  LoadError,
  Loading,
  Messages,
  Page,
  Time,
  useFlash,
  useResource,
} from "../components/ui";
import { relative } from "../format";
import { authenticate, CeremonyError, server } from "../webauthn";

type Shown = ApprovalView["status"];

/** The status to show: a pending approval past its expiry is expired, whatever the server last said. */
const shownStatus = (a: ApprovalView, now = Date.now()): Shown =>
  a.status === "pending" && expired(a, now) ? "expired" : a.status;

const STATUS: Record<Shown, [string, "ok" | "warn" | "danger" | "neutral" | "accent"]> = {
  pending: ["Waiting", "warn"],
  approved: ["Approved", "ok"],
  denied: ["Denied", "danger"],
  expired: ["Expired", "neutral"],
  used: ["Approved and used", "accent"],
};

function StatusBadge({ a }: { a: ApprovalView }) {
  const [text, tone] = STATUS[shownStatus(a)];
  return <Badge tone={tone}>{text}</Badge>;
}

/** "1 of 2 approvals" with a progress bar. */
function Quorum({ a }: { a: ApprovalView }) {
  const n = Math.min(a.approvals.length, a.quorum);
  return (
    <span data-testid="approval-quorum" data-approved={a.approvals.length} data-quorum={a.quorum}>
      {n} of {a.quorum} {a.quorum === 1 ? "approval" : "approvals"}{" "}
      <progress class="quorum" max={a.quorum} value={n} aria-hidden="true" />
    </span>
  );
}

function approversText(approvers: string): string {
  if (approvers === "self") return "the person who asked";
  if (approvers.startsWith("group:")) return `a member of the group ${approvers.slice("group:".length)}`;
  return approvers;
}

function who(op: ApprovalOperation): ComponentChildren {
  return (
    <>
      <span data-testid="approval-person">{op.person}</span>
      {op.agent ? (
        <>
          {" "}
          through the agent <strong data-testid="approval-agent">{agentName(op.agent)}</strong>
        </>
      ) : (
        " (no agent)"
      )}
    </>
  );
}

// --------------------------------------------------------------- list ----

function ApprovalRow({ a, fresh }: { a: ApprovalView; fresh: boolean }) {
  const id = `approval-${a.id}`;
  const status = shownStatus(a);
  const op = a.operation;
  return (
    <li
      class={`item${fresh ? " fresh" : ""}`}
      data-testid="approval-row"
      data-approval-id={a.id}
      data-status={status}
      aria-labelledby={id}
    >
      <div class="item-head">
        <h3 id={id}>
          <a href={`#/approvals/${encodeURIComponent(a.id)}`}>
            <code>{op.method}</code> {operationLine(a)}
          </a>
        </h3>
        <StatusBadge a={a} />
      </div>
      <Facts
        items={[
          ["Asked by", askedBy(a)],
          ["Partition key", op.partitionKey === null ? "None" : <code>{op.partitionKey}</code>],
          ["Quorum", <Quorum a={a} />],
          ["Asked", <Time value={a.createdAt} />],
          [status === "pending" ? "Expires" : "Expiry", <Time value={a.expiresAt} />],
        ]}
      />
    </li>
  );
}

function Section({
  id,
  title,
  items,
  fresh,
  empty,
}: {
  id: string;
  title: string;
  items: ApprovalView[];
  fresh: ReadonlySet<string>;
  empty?: string;
}) {
  if (items.length === 0 && empty === undefined) return null;
  return (
    <section aria-labelledby={id} data-testid={id}>
      <h2 id={id}>
        {title} <span class="count">({items.length})</span>
      </h2>
      {items.length === 0 ? (
        <p class="empty">{empty}</p>
      ) : (
        <ul class="items" aria-labelledby={id}>
          {items.map((a) => (
            <ApprovalRow key={a.id} a={a} fresh={fresh.has(a.id)} />
          ))}
        </ul>
      )}
    </section>
  );
}

export function ApprovalsPage({ me, feed }: { me: MeView | undefined; feed: ApprovalFeed }) {
  const now = Date.now();
  const mine = feed.approvals.filter((a) => waitsForMe(a, me, now));
  const pending = feed.approvals.filter((a) => shownStatus(a, now) === "pending" && !waitsForMe(a, me, now));
  const done = feed.approvals.filter((a) => shownStatus(a, now) !== "pending");
  return (
    <Page
      name="approvals"
      title="Approvals"
      lead="Operations the policy holds until a person approves them with a tap of their key. Each approval is for that exact operation, once."
    >
      <p class="live-note" data-testid="approvals-live-state" data-live={feed.live}>
        {feed.live
          ? "Live: new requests appear here as they arrive."
          : feed.loaded
            ? "Not live: reconnecting to the gateway…"
            : "Connecting…"}
      </p>
      {feed.error !== undefined && feed.approvals.length === 0 ? (
        <LoadError error={feed.error} retry={feed.reload} />
      ) : !feed.loaded ? (
        <Loading what="the approvals" />
      ) : (
        <>
          <Section
            id="approvals-waiting"
            title="Waiting for you"
            items={mine}
            fresh={feed.fresh}
            empty="Nothing waits for your approval."
          />
          <Section id="approvals-pending" title="Waiting for others" items={pending} fresh={feed.fresh} />
          <Section id="approvals-decided" title="Decided" items={done} fresh={feed.fresh} />
        </>
      )}
    </Page>
  );
}

// ---------------------------------------------------------------- one ----

function bodyTitle(op: ApprovalOperation): string {
  if (/patch/i.test(op.operation)) return "The patch";
  if (op.body !== null && typeof op.body === "object" && !Array.isArray(op.body)) return "The document";
  return "The body";
}

function Body({ op }: { op: ApprovalOperation }) {
  if (op.body === null || op.body === undefined) {
    return op.bodySha256 === "" ? (
      <p data-testid="approval-body-none">The request has no body.</p>
    ) : (
      <p data-testid="approval-body-none">The body is not JSON, so it is not shown; its SHA-256 is below.</p>
    );
  }
  return (
    <>
      <h3 id="approval-body-heading">{bodyTitle(op)}</h3>
      <pre class="code body" data-testid="approval-body">
        <code>{JSON.stringify(op.body, null, 2)}</code>
      </pre>
    </>
  );
}

function Decide({
  a,
  me,
  onDecided,
}: {
  a: ApprovalView;
  me: MeView | undefined;
  onDecided: (a: ApprovalView) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [denying, setDenying] = useState(false);
  const [reason, setReason] = useState("");
  const [challenge, setChallenge] = useState<string | null | undefined>(undefined);
  /** SHA-256 of the canonical operation shown, recomputed here (null: no Web Crypto). */
  const [recomputed, setRecomputed] = useState<string | null | undefined>(undefined);
  const { flash, say, fail } = useFlash();
  const text = approvalChallengeText(a);
  const canonical = canonicalJson(a.operation);
  useEffect(() => {
    let alive = true;
    void sha256url(text).then((c) => alive && setChallenge(c));
    void sha256hex(canonical).then((h) => alive && setRecomputed(h));
    return () => {
      alive = false;
    };
  }, [text, canonical]);
  const hashOk = recomputed === a.operationHash;

  const status = shownStatus(a);
  const eligible = mayApprove(a, me);
  const mineAlready = approvedBy(a, me);
  const open = status === "pending" && eligible && !mineAlready;
  const denyable = mayDeny(a, me);

  const approve = async () => {
    setBusy(true);
    say("Preparing…");
    try {
      const options = await server(() =>
        post<PublicKeyCredentialRequestOptionsJSON>(`/api/approvals/${seg(a.id)}/options`, {}),
      );
      if (recomputed && !hashOk)
        throw new CeremonyError(
          "ERR_OPERATION_MISMATCH",
          "The operation's hash is not of the operation shown, so approving it could sign something else. Nothing was signed; reload the page.",
        );
      if (challenge && options.challenge !== challenge)
        throw new CeremonyError(
          "ERR_CHALLENGE_MISMATCH",
          "The gateway asked your key to sign something other than the operation shown. Nothing was signed; reload the page and check the operation again.",
        );
      say(`Touch your key to approve ${operationLine(a)}…`);
      const response = await authenticate(options);
      say("Recording your approval…");
      const updated = await server(() =>
        post<ApprovalView>(`/api/approvals/${seg(a.id)}/approve`, { response }),
      );
      onDecided(updated);
      say(
        updated.status === "approved"
          ? "Approved. The same request, sent again, now succeeds once."
          : `Your approval is recorded: ${updated.approvals.length} of ${updated.quorum}. It waits for ${updated.quorum - updated.approvals.length} more.`,
      );
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  const deny = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    say("Denying…");
    try {
      const r = reason.trim();
      const updated = await server(() =>
        post<ApprovalView>(`/api/approvals/${seg(a.id)}/deny`, r === "" ? {} : { reason: r }),
      );
      onDecided(updated);
      setDenying(false);
      say("Denied. The request stays refused; a new attempt needs a new approval.");
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby="signs-heading">
      <h2 id="signs-heading">What an approval signs</h2>
      <p class="help">
        The operation's hash identifies this exact request: any change to the method, resource, partition key
        or body makes another one. Your key signs the SHA-256 of <code>cosmosgate-approval:ID:HASH</code>.
      </p>
      <Facts
        items={[
          [
            "Operation hash",
            <code class="hash" data-testid="approval-hash">
              {a.operationHash}
            </code>,
          ],
          [
            "Check",
            recomputed === undefined ? (
              "Checking…"
            ) : recomputed === null ? (
              <span class="verdict pending">
                This browser cannot compute SHA-256 here, so it cannot check
              </span>
            ) : (
              <span
                class={`verdict ${hashOk ? "ok" : "bad"}`}
                data-testid="approval-hash-check"
                data-ok={hashOk}
              >
                <span aria-hidden="true">{hashOk ? "✓ " : "✗ "}</span>
                {hashOk
                  ? "the hash is the SHA-256 of the operation shown (canonical JSON)"
                  : "the hash is not of the operation shown: do not approve"}
              </span>
            ),
          ],
          [
            "Body SHA-256",
            a.operation.bodySha256 ? <code class="hash">{a.operation.bodySha256}</code> : "No body",
          ],
          [
            "Challenge",
            challenge === undefined ? (
              "Computing…"
            ) : challenge === null ? (
              "This browser cannot compute it here"
            ) : (
              <code class="hash" data-testid="approval-challenge">
                {challenge}
              </code>
            ),
          ],
        ]}
      />
      <div class="decide">
        {!open && (
          <p data-testid="approval-why-not">
            {status !== "pending"
              ? status === "expired"
                ? "This request expired: a new attempt needs a new approval."
                : status === "denied"
                  ? "This request was denied."
                  : status === "used"
                    ? "This approval was used: the request went through once."
                    : "This request is approved: the same request, sent again, succeeds once."
              : mineAlready
                ? `You approved it. It waits for ${a.quorum - a.approvals.length} more ${
                    a.quorum - a.approvals.length === 1 ? "approval" : "approvals"
                  } from ${approversText(a.approvers)}.`
                : `Only ${approversText(a.approvers)} may approve it${
                    a.approvers.startsWith("group:")
                      ? a.operation.person === me?.name
                        ? ", other than you: you asked"
                        : `, other than ${a.operation.person} who asked`
                      : ""
                  }.`}
            {denyable && !eligible && " You may deny it: the request is then refused."}
          </p>
        )}
        {(open || denyable) && (
          <div class="row">
            {open && (
              <button
                type="button"
                class="primary"
                disabled={busy || recomputed === undefined || (recomputed !== null && !hashOk)}
                onClick={approve}
              >
                Approve with my key
              </button>
            )}
            {denyable && (
              <button
                type="button"
                class="danger"
                disabled={busy}
                aria-expanded={denying}
                aria-controls="deny-form"
                onClick={() => setDenying(!denying)}
              >
                Deny
              </button>
            )}
          </div>
        )}
        {denyable && denying && (
          <form id="deny-form" class="stack" noValidate onSubmit={deny}>
            <Busy busy={busy}>
              <label for="deny-reason">
                Why <span class="optional">(optional)</span>
              </label>
              <textarea
                id="deny-reason"
                rows={2}
                maxLength={500}
                value={reason}
                onInput={(e) => setReason(e.currentTarget.value)}
              />
              <div class="row">
                <button type="submit" class="danger solid">
                  Deny the request
                </button>
                <button type="button" onClick={() => setDenying(false)}>
                  Cancel
                </button>
              </div>
            </Busy>
          </form>
        )}
        <Messages flash={flash} name="decide" />
      </div>
    </section>
  );
}

function notFound(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 404 || error.status === 403);
}

export function ApprovalPage({ id, me, feed }: { id: string; me: MeView | undefined; feed: ApprovalFeed }) {
  const own = useResource<ApprovalView>(`/api/approvals/${seg(id)}`);
  const a = later(
    own.data,
    feed.approvals.find((x) => x.id === id),
  );
  const put = (v: ApprovalView) => {
    own.setData(v);
    feed.put(v);
  };
  let content: ComponentChildren;
  if (a === undefined) {
    content =
      own.error === undefined ? (
        <Loading what="the approval" />
      ) : notFound(own.error) ? (
        <div class="notice danger" role="alert" data-testid="approval-missing">
          <p>
            There is no approval <code>{id}</code> that you may see: check the link, or ask who sent it.
          </p>
          <p>
            <a href="#/approvals">All approvals</a>
          </p>
        </div>
      ) : (
        <LoadError error={own.error} retry={own.reload} />
      );
  } else {
    const op = a.operation;
    content = (
      <div data-testid="approval" data-approval-id={a.id} data-status={shownStatus(a)}>
        <section class="card" aria-labelledby="operation-heading">
          <div class="item-head">
            <h2 id="operation-heading">The operation</h2>
            <span data-testid="approval-status">
              <StatusBadge a={a} />
            </span>
          </div>
          <Facts
            items={[
              ["Asked by", who(op)],
              ["Method", <code data-testid="approval-method">{op.method}</code>],
              ["Resource", <code data-testid="approval-resource">{op.resource}</code>],
              ["Operation", <span data-testid="approval-operation">{op.operation}</span>],
              ["Actions", op.actions.join(", ")],
              [
                "Partition key",
                <code data-testid="approval-partition-key">
                  {op.partitionKey === null ? "none" : op.partitionKey}
                </code>,
              ],
            ]}
          />
          <Body op={op} />
        </section>
        <section class="card" aria-labelledby="progress-heading">
          <h2 id="progress-heading">Approvals</h2>
          <Facts
            items={[
              ["Progress", <Quorum a={a} />],
              ["Who may approve", approversText(a.approvers)],
              ["Asked", <Time value={a.createdAt} seconds />],
              [
                shownStatus(a) === "pending" ? "Expires" : "Expiry",
                <>
                  <Time value={a.expiresAt} seconds /> ({relative(a.expiresAt)})
                </>,
              ],
              ["Policy rule", `approvals #${a.rule}`],
            ]}
          />
          {a.approvals.length > 0 && (
            <ul class="subitems" data-testid="approval-approvals" aria-label="Approved by">
              {a.approvals.map((x) => (
                <li class="subitem" key={`${x.by}-${x.at}`}>
                  Approved by <strong>{x.by}</strong> at <Time value={x.at} seconds />, key{" "}
                  <code class="hash">{x.credential}</code>
                </li>
              ))}
            </ul>
          )}
          {a.denial && (
            <p class="notice danger" data-testid="approval-denial">
              Denied by <strong>{a.denial.by}</strong> at <Time value={a.denial.at} seconds />
              {a.denial.reason ? `: ${a.denial.reason}` : "."}
            </p>
          )}
        </section>
        <Decide a={a} me={me} onDecided={put} />
      </div>
    );
  }
  return (
    <Page
      name="approval"
      title="Approval request"
      lead={
        a ? (
          <>
            {askedBy(a)} asks to <strong>{operationLine(a)}</strong>.
          </>
        ) : undefined
      }
    >
      <p>
        <a href="#/approvals">← All approvals</a>
      </p>
      {content}
    </Page>
  );
}
