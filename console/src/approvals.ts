/**
 * Approvals waiting for a tap, one feed per tab for every page: the list (`GET /api/approvals`)
 * kept current by the event stream (`GET /api/approvals/stream`, `approval` events), the count in
 * the navigation, and the announcement of new requests.
 */
import { useCallback, useEffect, useState } from "preact/hooks";
import type { ApprovalView } from "../../src/agents/contract";
import type { MeView } from "../../src/server/controlPlane/consoleApi";
import { get, loadMe } from "./api";

/** The challenge an approval's tap signs: the text whose SHA-256 it is (src/agents/contract.ts). */
export const approvalChallengeText = (a: ApprovalView) => `cosmosgate-approval:${a.id}:${a.operationHash}`;

/**
 * Whether this person is one of its approvers: "self" is the person who asked (or for whom an agent
 * asked); "group:G" the members of G other than that person (src/approvals/approvals.ts isApprover).
 */
export function mayApprove(a: ApprovalView, me: MeView | undefined): boolean {
  if (me === undefined) return false;
  if (a.approvers === "self") return a.operation.person === me.name;
  if (a.approvers.startsWith("group:"))
    return a.operation.person !== me.name && me.groups.includes(a.approvers.slice("group:".length));
  return false;
}

/** Approvers and the person who asked may deny an open (pending or approved, unused) approval. */
export const mayDeny = (a: ApprovalView, me: MeView | undefined, now = Date.now()) =>
  (a.status === "pending" || a.status === "approved") &&
  !expired(a, now) &&
  (mayApprove(a, me) || a.operation.person === me?.name);

export const approvedBy = (a: ApprovalView, me: MeView | undefined) =>
  me !== undefined && a.approvals.some((x) => x.by === me.name);

export const expired = (a: ApprovalView, now = Date.now()) => Date.parse(a.expiresAt) <= now;

/** Pending, not expired, and this person may still add their tap. */
export const waitsForMe = (a: ApprovalView, me: MeView | undefined, now = Date.now()) =>
  a.status === "pending" && !expired(a, now) && mayApprove(a, me) && !approvedBy(a, me);

/** "item.delete /dbs/shop/colls/orders/docs/o1". */
export const operationLine = (a: ApprovalView) => `${a.operation.operation} ${a.operation.resource}`;

/** "alice through the agent claude", or "alice". */
export const askedBy = (a: ApprovalView) =>
  a.operation.agent
    ? `${a.operation.person} through the agent ${agentName(a.operation.agent)}`
    : a.operation.person;

/** "agent:claude" → "claude". */
export const agentName = (actor: string) => actor.replace(/^agent:/, "");

/** How far a view has come: a later state never gives way to an earlier one arriving late. */
function progress(a: ApprovalView): number {
  const stage = a.status === "pending" ? 0 : a.status === "approved" ? 1 : 2;
  return stage * 1000 + a.approvals.length;
}

/** The more advanced of two views of one approval (a page's own and the live feed's). */
export function later(a: ApprovalView | undefined, b: ApprovalView | undefined): ApprovalView | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return progress(b) >= progress(a) ? b : a;
}

export interface ApprovalFeed {
  /** Newest first. */
  approvals: ApprovalView[];
  loaded: boolean;
  error: unknown;
  /** The stream is connected. */
  live: boolean;
  /** Approvals that arrived over the stream (highlighted in the list). */
  fresh: ReadonlySet<string>;
  /** The last announcement of new requests; `id` when it is about one. */
  news: { text: string; id: string | null } | null;
  /** Pending approvals this person may still approve. */
  waiting: number;
  dismiss: () => void;
  reload: () => void;
  /** Merges a view the page received (after approving or denying). */
  put: (a: ApprovalView) => void;
}

interface State {
  byId: Map<string, ApprovalView>;
  loaded: boolean;
  error: unknown;
  live: boolean;
  fresh: Set<string>;
  news: { text: string; id: string | null } | null;
}

const EMPTY: State = {
  byId: new Map(),
  loaded: false,
  error: undefined,
  live: false,
  fresh: new Set(),
  news: null,
};

function merge(byId: Map<string, ApprovalView>, views: ApprovalView[]): Map<string, ApprovalView> {
  const next = new Map(byId);
  for (const v of views) {
    const old = next.get(v.id);
    if (old === undefined || progress(v) >= progress(old)) next.set(v.id, v);
  }
  return next;
}

/** The feed of a signed-in person (nothing when `me` is undefined). */
export function useApprovalFeed(me: MeView | undefined): ApprovalFeed {
  const [state, setState] = useState<State>(EMPTY);
  const [tick, setTick] = useState(0);
  const [, setNow] = useState(0);
  const who = me?.name;

  useEffect(() => {
    setState(EMPTY);
    if (who === undefined) return;
    let alive = true;
    /**
     * Approvals seen (listed or streamed): an event for any other is a new request — once the list
     * has loaded (the stream first replays the open ones, which are not news).
     */
    const known = new Set<string>();
    let ready = false;
    const load = () =>
      get<{ approvals: ApprovalView[] }>("/api/approvals").then(
        (r) => {
          if (!alive) return;
          ready = true;
          for (const a of r.approvals) known.add(a.id);
          setState((s) => ({ ...s, byId: merge(s.byId, r.approvals), loaded: true, error: undefined }));
        },
        (error) => alive && setState((s) => ({ ...s, loaded: true, error })),
      );
    void load();

    const source = new EventSource("/api/approvals/stream");
    let opened = false;
    let checking = false;
    let added: ApprovalView[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    source.addEventListener("open", () => {
      setState((s) => ({ ...s, live: true }));
      // After a reconnection, what changed meanwhile.
      if (opened) void load();
      opened = true;
    });
    const lost = () => {
      setState((s) => ({ ...s, live: false }));
      // A stream does not say why it failed: a session that ended shows on /api/me (401 → sign-in).
      if (!checking) {
        checking = true;
        loadMe()
          .catch(() => undefined)
          .finally(() => {
            checking = false;
          });
      }
    };
    source.addEventListener("error", lost);
    source.addEventListener("end", lost);
    source.addEventListener("approval", (e) => {
      let view: ApprovalView;
      try {
        view = JSON.parse((e as MessageEvent<string>).data) as ApprovalView;
      } catch {
        return;
      }
      if (typeof view?.id !== "string" || typeof view.operation !== "object") return;
      const isNew = ready && !known.has(view.id);
      known.add(view.id);
      if (isNew && view.status === "pending") added.push(view);
      setState((s) => ({
        ...s,
        byId: merge(s.byId, [view]),
        fresh: isNew ? new Set(s.fresh).add(view.id) : s.fresh,
      }));
      // One announcement a second at most.
      if (timer === undefined) {
        timer = setTimeout(() => {
          timer = undefined;
          const batch = added;
          added = [];
          if (batch.length === 0) return;
          const one = batch.length === 1 ? batch[0] : undefined;
          const text = one
            ? `New approval request: ${askedBy(one)} asks to ${operationLine(one)}.`
            : `${batch.length} new approval requests.`;
          setState((s) => ({ ...s, news: { text, id: one?.id ?? null } }));
        }, 1000);
      }
    });
    return () => {
      alive = false;
      source.close();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [who, tick]);

  const approvals = [...state.byId.values()].sort(
    (a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? -1 : 1),
  );
  const now = Date.now();
  const waiting = approvals.filter((a) => waitsForMe(a, me, now)).length;

  // Re-render when the next pending approval expires, so counts and pages do not show it as open.
  const nextExpiry = Math.min(
    ...approvals
      .filter((a) => a.status === "pending" && !expired(a, now))
      .map((a) => Date.parse(a.expiresAt)),
  );
  useEffect(() => {
    if (!Number.isFinite(nextExpiry)) return;
    const t = setTimeout(() => setNow(Date.now()), Math.min(nextExpiry - Date.now() + 50, 2 ** 31 - 1));
    return () => clearTimeout(t);
  }, [nextExpiry]);

  const dismiss = useCallback(() => setState((s) => ({ ...s, news: null })), []);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const put = useCallback((a: ApprovalView) => setState((s) => ({ ...s, byId: merge(s.byId, [a]) })), []);
  return {
    approvals,
    loaded: state.loaded,
    error: state.error,
    live: state.live,
    fresh: state.fresh,
    news: state.news,
    waiting,
    dismiss,
    reload,
    put,
  };
}
