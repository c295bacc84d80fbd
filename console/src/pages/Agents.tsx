/**
 * Agents: give an agent a grant — a narrow, expiring part of the person's own permissions, for the
 * agent's public key — shown as the exact canonical JSON the tap signs, and confirmed by that tap;
 * the grants with their usage, and revoking one.
 */
import type { PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/browser";
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { AGENT_NAME, type GrantDraft, type GrantRequest, type GrantView } from "../../../src/agents/contract";
import type { ExplainResult } from "../../../src/policy/explain";
import type { MeView, PolicyView } from "../../../src/server/controlPlane/consoleApi";
import { del, get, post, seg } from "../api";
import { sha256url } from "../canonical";
import {
  Badge,
  Busy,
  CopyButton,
  Dialog,
  Facts,
  Loaded,
  Messages,
  Page,
  Time,
  useFlash,
  useResource,
} from "../components/ui";
import { formatNumber, list, relative } from "../format";
import { navigate, useRoute } from "../router";
import { ACTIONS, expandAction } from "../vocabulary";
import { authenticate, CeremonyError, server } from "../webauthn";

type Action = (typeof ACTIONS)[number];

const LIFETIMES: [string, string][] = [
  ["30m", "30 minutes"],
  ["1h", "1 hour"],
  ["4h", "4 hours"],
  ["8h", "8 hours"],
  ["1d", "1 day"],
  ["2d", "2 days"],
  ["7d", "7 days"],
];

// ------------------------------------------------------- what I hold ----

interface HeldRule {
  role: string;
  actions: Action[];
  scope: string;
}

/**
 * The rules of the roles this person holds (the policy's roles, and which of them are theirs as
 * the policy explainer says): what a grant may be cut from. undefined while unknown.
 */
function useHeld(): HeldRule[] | undefined {
  const policy = useResource<PolicyView>("/api/policy");
  const [roles, setRoles] = useState<string[] | null | undefined>(undefined);
  useLayoutEffect(() => {
    let alive = true;
    post<ExplainResult>("/api/policy/explain", { action: "read", resource: "/" }).then(
      (r) => alive && setRoles(r.roles.map((x) => x.name)),
      () => alive && setRoles(null),
    );
    return () => {
      alive = false;
    };
  }, []);
  if (policy.data === undefined || !roles) return undefined;
  return policy.data.roles
    .filter((r) => roles.includes(r.name))
    .flatMap((r) =>
      r.rules.map((rule) => ({
        role: r.name,
        actions: [...new Set(rule.allow.flatMap(expandAction))],
        scope: rule.on,
      })),
    );
}

// ------------------------------------------------------------- parsing ----

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * The agent's public key from what was pasted (the JWK, possibly with the lines `cosmosgate agent
 * keygen` prints around it). A private key (`d`) is refused: it must never leave the agent.
 */
export function parsePublicKey(text: string): Parsed<GrantRequest["publicKey"]> & { private?: boolean } {
  const t = text.trim();
  if (t === "")
    return { ok: false, message: "Paste the agent's public key: cosmosgate agent keygen prints it." };
  let jwk: unknown;
  try {
    jwk = JSON.parse(t.slice(t.indexOf("{"), t.lastIndexOf("}") + 1));
  } catch {
    return { ok: false, message: "The public key is not JSON: paste the JWK, from { to }." };
  }
  const k = (jwk ?? {}) as Record<string, unknown>;
  if ("d" in k)
    return {
      ok: false,
      private: true,
      message:
        "That is the agent's private key, which must never leave the agent: it was cleared from the form. Paste the public key cosmosgate agent keygen printed.",
    };
  if (k.kty !== "EC" || k.crv !== "P-256" || typeof k.x !== "string" || typeof k.y !== "string")
    return { ok: false, message: "The public key must be an EC P-256 JWK (kty EC, crv P-256, x and y)." };
  return { ok: true, value: { kty: "EC", crv: "P-256", x: k.x, y: k.y } };
}

/** Partition keys, one a line, each as the JSON of the key: `["c1"]`; a single value is wrapped (`"c1"` → `["c1"]`). */
export function parsePartitionKeys(text: string): Parsed<string[]> {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (l === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      return {
        ok: false,
        message: `The partition key ${l} is not JSON: write it as the JSON of the key, e.g. ["c1"] or ["c1", 5].`,
      };
    }
    out.push(JSON.stringify(Array.isArray(v) ? v : [v]));
  }
  return { ok: true, value: [...new Set(out)] };
}

function optionalNumber(text: string, what: string): Parsed<number | undefined> {
  const t = text.trim();
  if (t === "") return { ok: true, value: undefined };
  const n = Number(t);
  if (!Number.isFinite(n) || n <= 0) return { ok: false, message: `The ${what} must be a positive number.` };
  return { ok: true, value: n };
}

// ------------------------------------------------------------- pieces ----

function statusTone(s: GrantView["status"]): "ok" | "warn" | "danger" | "neutral" {
  return s === "active"
    ? "ok"
    : s === "pending" || s === "exhausted"
      ? "warn"
      : s === "revoked"
        ? "danger"
        : "neutral";
}

const STATUS_TEXT: Record<GrantView["status"], string> = {
  pending: "Waiting for the tap",
  active: "Active",
  expired: "Expired",
  revoked: "Revoked",
  exhausted: "Budget used up",
};

function usage(g: GrantView): string {
  const requests = `${formatNumber(g.used.requests)}${g.budget.requests !== null ? ` of ${formatNumber(g.budget.requests)}` : ""} requests`;
  const charge = `${formatNumber(Math.round(g.used.requestCharge * 100) / 100)}${
    g.budget.requestCharge !== null ? ` of ${formatNumber(g.budget.requestCharge)}` : ""
  } RU`;
  return `${requests}, ${charge}`;
}

function grantFacts(g: GrantView, showPerson: boolean): [string, ComponentChildren][] {
  return [
    ["Grant ID", <code>{g.id}</code>],
    ["For", showPerson ? g.person : null],
    ["Actions", g.actions.join(", ")],
    ["Scopes", <code>{g.scopes.join(", ")}</code>],
    ["Partition keys", g.partitionKeys === null ? "Any" : <code>{g.partitionKeys.join(", ")}</code>],
    [
      "Agent's key",
      <code title="RFC 7638 thumbprint: the kid of the agent's assertions">{g.keyThumbprint}</code>,
    ],
    [
      "Budget",
      g.budget.requests === null && g.budget.requestCharge === null
        ? "No limit"
        : [
            g.budget.requests !== null ? `${formatNumber(g.budget.requests)} requests` : null,
            g.budget.requestCharge !== null ? `${formatNumber(g.budget.requestCharge)} RU` : null,
          ]
            .filter(Boolean)
            .join(", "),
    ],
  ];
}

// --------------------------------------------------------------- form ----

interface FormState {
  agent: string;
  key: string;
  actions: Action[];
  scopes: string;
  partitionKeys: string;
  lifetime: string;
  requests: string;
  charge: string;
}

const BLANK: FormState = {
  agent: "",
  key: "",
  actions: [],
  scopes: "",
  partitionKeys: "",
  lifetime: "8h",
  requests: "",
  charge: "",
};

function toRequest(f: FormState): Parsed<GrantRequest> & { field?: string; private?: boolean } {
  const agent = f.agent.trim();
  if (!AGENT_NAME.test(agent))
    return {
      ok: false,
      field: "grant-agent",
      message:
        "Name the agent with lower-case letters, digits, - and _ (1 to 64, starting with a letter or digit), as in cosmosgate agent keygen NAME.",
    };
  const key = parsePublicKey(f.key);
  if (!key.ok) return { ...key, field: "grant-key" };
  if (f.actions.length === 0)
    return { ok: false, field: "grant-actions", message: "Choose at least one action the agent may do." };
  const scopes = [...new Set(f.scopes.split(/[\s,]+/).filter((s) => s !== ""))];
  if (scopes.length === 0)
    return {
      ok: false,
      field: "grant-scopes",
      message: "Give at least one scope, e.g. /dbs/shop/colls/orders.",
    };
  const bad = scopes.find((s) => !s.startsWith("/"));
  if (bad !== undefined)
    return {
      ok: false,
      field: "grant-scopes",
      message: `The scope ${bad} is not a path: scopes start with /.`,
    };
  const pks = parsePartitionKeys(f.partitionKeys);
  if (!pks.ok) return { ...pks, field: "grant-partition-keys" };
  const requests = optionalNumber(f.requests, "request budget");
  if (!requests.ok) return { ...requests, field: "grant-budget-requests" };
  if (requests.value !== undefined && !Number.isInteger(requests.value))
    return {
      ok: false,
      field: "grant-budget-requests",
      message: "The request budget must be a whole number.",
    };
  const charge = optionalNumber(f.charge, "request-charge budget");
  if (!charge.ok) return { ...charge, field: "grant-budget-ru" };
  const value: GrantRequest = {
    agent,
    actions: ACTIONS.filter((a) => f.actions.includes(a)),
    scopes,
    lifetime: f.lifetime,
    publicKey: key.value,
  };
  if (pks.value.length > 0) value.partitionKeys = pks.value;
  if (requests.value !== undefined || charge.value !== undefined) {
    value.budget = {};
    if (requests.value !== undefined) value.budget.requests = requests.value;
    if (charge.value !== undefined) value.budget.requestCharge = charge.value;
  }
  return { ok: true, value };
}

function HeldTable({ held, onUse }: { held: HeldRule[]; onUse: (r: HeldRule) => void }) {
  if (held.length === 0)
    return <p class="notice warn">You hold no permissions under the policy, so there is nothing to grant.</p>;
  return (
    <details class="field full" data-testid="grant-held">
      <summary>What you hold ({held.length})</summary>
      <div class="table-wrap">
        <table class="compact">
          <caption class="visually-hidden">Your permissions, which a grant may narrow</caption>
          <thead>
            <tr>
              <th scope="col">Role</th>
              <th scope="col">Actions</th>
              <th scope="col">Scope</th>
              <th scope="col">
                <span class="visually-hidden">Use</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {held.map((r, i) => (
              <tr key={`${r.role}-${i}`}>
                <td>{r.role}</td>
                <td>{r.actions.join(", ")}</td>
                <td class="mono wrap">{r.scope}</td>
                <td>
                  <button type="button" onClick={() => onUse(r)}>
                    Use
                    <span class="visually-hidden">
                      {" "}
                      {r.actions.join(", ")} on {r.scope}
                    </span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

function GrantForm({ onDraft }: { onDraft: (draft: GrantDraft, sent: GrantRequest) => void }) {
  const held = useHeld();
  const [f, setF] = useState<FormState>(BLANK);
  const [busy, setBusy] = useState(false);
  const { flash, say, fail, clear } = useFlash();
  const heldActions = held === undefined ? undefined : new Set(held.flatMap((r) => r.actions));
  const set = (k: keyof FormState) => (e: { currentTarget: { value: string } }) =>
    setF({ ...f, [k]: e.currentTarget.value });
  const toggle = (a: Action, on: boolean) =>
    setF({ ...f, actions: on ? [...f.actions, a] : f.actions.filter((x) => x !== a) });
  const use = (r: HeldRule) => {
    const scopes = f.scopes.split("\n").filter((s) => s.trim() !== "");
    setF({
      ...f,
      actions: [...new Set([...f.actions, ...r.actions])],
      scopes: [...new Set([...scopes, r.scope])].join("\n"),
    });
    say(`Added ${r.actions.join(", ")} and the scope ${r.scope}. Narrow them as you wish.`);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed = toRequest(f);
    if (!parsed.ok) {
      if (parsed.private) setF({ ...f, key: "" });
      fail(new Error(parsed.message));
      document.getElementById(parsed.field ?? "")?.focus();
      return;
    }
    setBusy(true);
    say("Asking the gateway to prepare the grant…");
    try {
      const draft = await post<GrantDraft>("/api/grants", parsed.value);
      clear();
      onDraft(draft, parsed.value);
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      class="stack wide"
      noValidate
      onSubmit={submit}
      aria-labelledby="grant-heading"
      data-testid="grant-form"
    >
      <Busy busy={busy}>
        <label for="grant-agent">Agent name</label>
        <input
          id="grant-agent"
          type="text"
          maxLength={64}
          autoComplete="off"
          spellcheck={false}
          placeholder="e.g. claude"
          aria-describedby="grant-agent-help"
          value={f.agent}
          onInput={set("agent")}
        />
        <p id="grant-agent-help" class="help">
          The name you gave it in <code>cosmosgate agent keygen NAME</code>: lower-case letters, digits, - and
          _.
        </p>
        <label for="grant-key">The agent's public key (JWK)</label>
        <textarea
          id="grant-key"
          class="mono"
          rows={4}
          spellcheck={false}
          autoComplete="off"
          placeholder='{"kty":"EC","crv":"P-256","x":"…","y":"…"}'
          aria-describedby="grant-key-help"
          value={f.key}
          onInput={set("key")}
        />
        <p id="grant-key-help" class="help">
          Where the agent runs, <code>cosmosgate agent keygen NAME</code> makes its key pair and prints the
          public key. Never paste the private key.
        </p>
        {held !== undefined && <HeldTable held={held} onUse={use} />}
        <fieldset class="group" id="grant-actions" tabIndex={-1}>
          <legend>Actions the agent may do</legend>
          <div class="checks">
            {ACTIONS.map((a) => {
              const notHeld = heldActions !== undefined && !heldActions.has(a);
              return (
                <label class="check" key={a}>
                  <input
                    type="checkbox"
                    name="grant-action"
                    value={a}
                    checked={f.actions.includes(a)}
                    disabled={notHeld && !f.actions.includes(a)}
                    onChange={(e) => toggle(a, e.currentTarget.checked)}
                  />
                  {a}
                  {notHeld && <span class="held"> (you do not hold it)</span>}
                </label>
              );
            })}
          </div>
        </fieldset>
        <label for="grant-scopes">Scopes, one a line</label>
        <textarea
          id="grant-scopes"
          class="mono"
          rows={2}
          spellcheck={false}
          autoComplete="off"
          placeholder="/dbs/shop/colls/orders"
          aria-describedby="grant-scopes-help"
          value={f.scopes}
          onInput={set("scopes")}
        />
        <p id="grant-scopes-help" class="help">
          Each scope must lie within one where you hold every chosen action; narrower is better.
        </p>
        <label for="grant-partition-keys">
          Partition keys, one a line <span class="optional">(optional)</span>
        </label>
        <textarea
          id="grant-partition-keys"
          class="mono"
          rows={2}
          spellcheck={false}
          autoComplete="off"
          placeholder='["customer-1"]'
          aria-describedby="grant-partition-keys-help"
          value={f.partitionKeys}
          onInput={set("partitionKeys")}
        />
        <p id="grant-partition-keys-help" class="help">
          The JSON of each key the agent may touch, e.g. <code>["customer-1"]</code>; empty for any.
        </p>
        <div class="pairs">
          <div class="field">
            <label for="grant-lifetime">Lifetime</label>
            <select id="grant-lifetime" value={f.lifetime} onChange={set("lifetime")}>
              {LIFETIMES.map(([v, label]) => (
                <option key={v} value={v}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="grant-budget-requests">
              Request budget <span class="optional">(optional)</span>
            </label>
            <input
              id="grant-budget-requests"
              type="number"
              inputMode="numeric"
              min={1}
              step={1}
              value={f.requests}
              onInput={set("requests")}
            />
          </div>
          <div class="field">
            <label for="grant-budget-ru">
              Request-charge budget, RU <span class="optional">(optional)</span>
            </label>
            <input
              id="grant-budget-ru"
              type="number"
              inputMode="decimal"
              min={0}
              step="any"
              value={f.charge}
              onInput={set("charge")}
            />
          </div>
        </div>
        <button type="submit" class="primary">
          Review the grant
        </button>
      </Busy>
      <Messages flash={flash} name="grant" />
    </form>
  );
}

// -------------------------------------------------------------- draft ----

/** The pending grant: what the tap signs, checked against the gateway's challenge, and the tap. */
function Verdict({ ok, yes, no, testid }: { ok: boolean; yes: string; no: string; testid: string }) {
  return (
    <span class={`verdict ${ok ? "ok" : "bad"}`} data-testid={testid} data-ok={ok}>
      <span aria-hidden="true">{ok ? "✓ " : "✗ "}</span>
      {ok ? yes : no}
    </span>
  );
}

/** The fields of a grant's canonical JSON the person reads (src/agents/grants.ts canonicalGrant). */
interface SignedGrant {
  gateway?: string;
  agent?: string;
  actions?: string[];
  scopes?: string[];
  partitionKeys?: string[] | null;
  publicKey?: { x?: string; y?: string };
  keyThumbprint?: string;
  expiresAt?: string;
  budget?: { requests?: number | null; requestCharge?: number | null };
}

function readSigned(canonical: string): SignedGrant {
  try {
    const v: unknown = JSON.parse(canonical);
    return v !== null && typeof v === "object" ? (v as SignedGrant) : {};
  } catch {
    return {};
  }
}

function DraftPanel({
  draft,
  sent,
  onConfirmed,
  onDiscard,
}: {
  draft: GrantDraft;
  /** What the person sent in the form; absent for a grant made elsewhere (`cosmosgate agent grant`). */
  sent?: GrantRequest;
  onConfirmed: (g: GrantView) => void;
  onDiscard: () => void;
}) {
  const options = draft.options as PublicKeyCredentialRequestOptionsJSON;
  const [digest, setDigest] = useState<string | null | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const { flash, say, fail } = useFlash();
  const heading = useRef<HTMLHeadingElement>(null);
  const tries = useRef(0);
  useEffect(() => {
    heading.current?.focus();
    let alive = true;
    void sha256url(draft.canonical).then((d) => alive && setDigest(d));
    return () => {
      alive = false;
    };
  }, [draft.canonical]);
  const g = draft.grant;
  // What is shown is read from the very text the tap signs, and its key checked against the one pasted.
  const signed = readSigned(draft.canonical);
  const keyOk =
    sent === undefined ||
    (signed.publicKey?.x === sent.publicKey.x && signed.publicKey?.y === sent.publicKey.y);
  const matches = digest === options.challenge;
  const confirm = async () => {
    setBusy(true);
    say("Touch your key to confirm the grant…");
    try {
      const mismatch = () =>
        new CeremonyError(
          "ERR_CHALLENGE_MISMATCH",
          "The gateway asked your key to sign something other than the grant shown. Nothing was signed; discard it and start again.",
        );
      if (!keyOk || (digest !== null && !matches)) throw mismatch();
      // A second try (the first was cancelled or timed out) asks for fresh options over the same text.
      let opts = options;
      if (tries.current > 0) {
        opts = await server(() =>
          post<PublicKeyCredentialRequestOptionsJSON>(`/api/grants/${seg(g.id)}/options`, {}),
        );
        if (digest !== null && opts.challenge !== digest) throw mismatch();
      }
      tries.current++;
      const response = await authenticate(opts);
      say("Confirming…");
      const confirmed = await server(() => post<GrantView>(`/api/grants/${seg(g.id)}/confirm`, { response }));
      onConfirmed(confirmed);
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" data-testid="grant-draft" data-grant-id={g.id} aria-labelledby="draft-heading">
      <h2 id="draft-heading" ref={heading} tabIndex={-1}>
        Check the grant, then confirm it with your key
      </h2>
      <p>
        The agent <strong>{signed.agent ?? g.agent}</strong> may act for you, within this grant only, until{" "}
        <Time value={signed.expiresAt ?? g.expiresAt} /> ({relative(signed.expiresAt ?? g.expiresAt)}).
      </p>
      <Facts
        items={[
          ["Gateway", signed.gateway ? <code>{signed.gateway}</code> : null],
          ["Actions", list(signed.actions)],
          ["Scopes", <code>{list(signed.scopes)}</code>],
          ["Partition keys", signed.partitionKeys ? <code>{signed.partitionKeys.join(", ")}</code> : "Any"],
          ["Agent's key", <code>{signed.keyThumbprint ?? g.keyThumbprint}</code>],
          [
            "Budget",
            [
              signed.budget?.requests != null ? `${formatNumber(signed.budget.requests)} requests` : null,
              signed.budget?.requestCharge != null ? `${formatNumber(signed.budget.requestCharge)} RU` : null,
            ]
              .filter(Boolean)
              .join(", ") || "No limit",
          ],
        ]}
      />
      {sent === undefined && (
        <p class="notice warn" data-testid="grant-from-cli">
          This grant was made by <code>cosmosgate agent grant</code>: check that the agent's key thumbprint
          above is the one the command printed, and confirm only a grant you asked for.
        </p>
      )}
      <h3>What your key signs</h3>
      <p class="help">
        Your tap signs the SHA-256 of exactly this text (what is listed above is read from it), so the grant
        cannot be changed after you confirm it:
      </p>
      <pre class="code signed" data-testid="grant-canonical">
        <code>{draft.canonical}</code>
      </pre>
      <Facts
        items={[
          ["SHA-256", <code data-testid="grant-challenge">{digest ?? options.challenge}</code>],
          [
            "Key",
            <Verdict
              ok={keyOk}
              testid="grant-key-check"
              yes={
                sent === undefined
                  ? "compare its thumbprint with the one the command printed"
                  : "the agent's key in it is the one you pasted"
              }
              no="the agent's key in it is not the one you pasted: do not confirm"
            />,
          ],
          [
            "Challenge",
            digest === undefined ? (
              "Checking…"
            ) : digest === null ? (
              <span class="verdict pending">
                This browser cannot compute SHA-256 here, so it cannot check
              </span>
            ) : (
              <Verdict
                ok={digest === options.challenge}
                testid="grant-challenge-check"
                yes="the gateway's challenge is the SHA-256 of this text"
                no="the gateway's challenge is not the SHA-256 of this text: do not confirm"
              />
            ),
          ],
        ]}
      />
      <div class="row">
        <button
          type="button"
          class="primary"
          disabled={busy || digest === undefined || !keyOk || (digest !== null && !matches)}
          onClick={confirm}
        >
          Confirm with my key
        </button>
        <button type="button" disabled={busy} onClick={onDiscard}>
          Discard
        </button>
      </div>
      <Messages flash={flash} name="confirm" />
    </section>
  );
}

/** After the tap: how the agent uses its grant. */
function CreatedPanel({ grant, onAnother }: { grant: GrantView; onAnother: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const gateway = location.origin;
  const token = `cosmosgate agent token ${grant.agent} --grant ${grant.id} --gateway ${gateway}`;
  const mcp = `cosmosgate mcp --agent ${grant.agent} --grant ${grant.id} --gateway ${gateway}`;
  return (
    <section
      class="card"
      data-testid="grant-created"
      data-grant-id={grant.id}
      aria-labelledby="created-heading"
    >
      <h2 id="created-heading" ref={heading} tabIndex={-1}>
        The grant for {grant.agent} is active
      </h2>
      <p>
        Until <Time value={grant.expiresAt} />. Give the agent its grant ID:{" "}
        <code data-testid="grant-id">{grant.id}</code>
      </p>
      <h3>A token for a script</h3>
      <pre class="code signed">
        <code>{token}</code>
      </pre>
      <CopyButton text={token} label="Copy the token command" />
      <h3>An MCP server for an AI assistant</h3>
      <pre class="code signed">
        <code>{mcp}</code>
      </pre>
      <CopyButton text={mcp} label="Copy the MCP command" />
      <p>
        <button type="button" onClick={onAnother}>
          Give another grant
        </button>
      </p>
    </section>
  );
}

// --------------------------------------------------------------- list ----

function GrantRow({
  g,
  showPerson,
  onRevoke,
  busy,
}: {
  g: GrantView;
  showPerson: boolean;
  onRevoke: (g: GrantView) => void;
  busy: boolean;
}) {
  const id = `grant-${g.id}`;
  const open = g.status === "active" || g.status === "pending" || g.status === "exhausted";
  return (
    <li
      class="item"
      data-testid="grant-row"
      data-grant-id={g.id}
      data-agent={g.agent}
      data-status={g.status}
      aria-labelledby={id}
    >
      <div class="item-head">
        <h3 id={id}>
          {g.agent}
          {showPerson ? <span class="sub"> for {g.person}</span> : null}
        </h3>
        <Badge tone={statusTone(g.status)}>{STATUS_TEXT[g.status]}</Badge>
      </div>
      <Facts
        items={[
          ...grantFacts(g, showPerson),
          ["Used", <span data-testid="grant-usage">{usage(g)}</span>],
          ["Created", <Time value={g.createdAt} />],
          [g.status === "expired" ? "Expired" : "Expires", <Time value={g.expiresAt} />],
          ["Confirmed", g.confirmedAt ? <Time value={g.confirmedAt} /> : null],
          ["Confirmed by the key", g.confirmedBy ? <code>{g.confirmedBy}</code> : null],
          ["Revoked", g.revokedAt ? <Time value={g.revokedAt} /> : null],
          ["Why", g.revokedReason],
        ]}
      />
      {open && (
        <div class="row">
          <button type="button" class="danger" disabled={busy} onClick={() => onRevoke(g)}>
            Revoke<span class="visually-hidden"> the grant of {g.agent}</span>
          </button>
        </div>
      )}
    </li>
  );
}

const ORDER: Record<GrantView["status"], number> = {
  active: 0,
  pending: 1,
  exhausted: 2,
  expired: 3,
  revoked: 4,
};

// --------------------------------------------------------------- page ----

type Step =
  | { step: "form" }
  | { step: "draft"; draft: GrantDraft; sent?: GrantRequest }
  | { step: "done"; grant: GrantView };

export function AgentsPage({ me }: { me: MeView | undefined }) {
  const admin = me?.admin ?? false;
  const [all, setAll] = useState(false);
  const grants = useResource<{ grants: GrantView[] }>(all ? "/api/grants?all=1" : "/api/grants");
  const [step, setStep] = useState<Step>({ step: "form" });
  const [revoking, setRevoking] = useState<GrantView | null>(null);
  const [busy, setBusy] = useState(false);
  const { flash, say, fail, clear } = useFlash();
  // #/agents?confirm=ID: confirm a pending grant made elsewhere (`cosmosgate agent grant`).
  const confirmId = useRoute().query.get("confirm");
  useEffect(() => {
    if (!confirmId) return;
    let alive = true;
    say("Loading the grant to confirm…");
    (async () => {
      const g = await get<GrantView>(`/api/grants/${seg(confirmId)}`);
      if (g.status !== "pending" || g.canonical === undefined) {
        throw new Error(
          `The grant ${g.id} is ${STATUS_TEXT[g.status].toLowerCase()}: there is nothing to confirm.`,
        );
      }
      const options = await post<unknown>(`/api/grants/${seg(g.id)}/options`, {});
      if (!alive) return;
      clear();
      setStep({ step: "draft", draft: { grant: g, canonical: g.canonical, options } });
    })().catch((err: unknown) => alive && fail(err));
    return () => {
      alive = false;
    };
  }, [confirmId, say, fail, clear]);
  const leaveConfirm = () => {
    if (confirmId) navigate("/agents");
  };

  const revoke = async (g: GrantView, quiet = false) => {
    setBusy(true);
    if (!quiet) say(`Revoking the grant of ${g.agent}…`);
    try {
      await del<GrantView>(`/api/grants/${seg(g.id)}`);
      if (!quiet) say(`Revoked the grant of ${g.agent}: its next request is refused.`);
      grants.reload();
    } catch (err) {
      if (!quiet) fail(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page
      name="agents"
      title="Agents"
      lead="Let an AI agent or a script act for you on a short leash: a part of your own permissions, for its own key, until a time you choose. Your tap confirms exactly what it may do; revoke it at any time."
    >
      <Messages flash={flash} />
      {step.step === "form" && (
        <section class="card">
          <h2 id="grant-heading">Give an agent a grant</h2>
          <GrantForm onDraft={(draft, sent) => setStep({ step: "draft", draft, sent })} />
        </section>
      )}
      {step.step === "draft" && (
        <DraftPanel
          draft={step.draft}
          sent={step.sent}
          onConfirmed={(grant) => {
            setStep({ step: "done", grant });
            leaveConfirm();
            grants.reload();
          }}
          onDiscard={() => {
            leaveConfirm();
            // The pending grant is of no use without its tap: withdraw it.
            void revoke(step.draft.grant, true);
            setStep({ step: "form" });
            say("Discarded the grant: nothing was signed.");
          }}
        />
      )}
      {step.step === "done" && (
        <CreatedPanel grant={step.grant} onAnother={() => setStep({ step: "form" })} />
      )}
      <div class="list-head">
        <h2 id="grants-heading">{all ? "Everyone's grants" : "Your grants"}</h2>
        {admin && (
          <label class="check">
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
            Everyone's grants
          </label>
        )}
      </div>
      <Loaded resource={grants} what="the grants">
        {(data) => {
          const sorted = [...data.grants].sort(
            (a, b) => ORDER[a.status] - ORDER[b.status] || Date.parse(b.createdAt) - Date.parse(a.createdAt),
          );
          return sorted.length === 0 ? (
            <p class="empty" data-testid="grants-empty">
              {all ? "No one has given an agent a grant." : "You have not given an agent a grant."}
            </p>
          ) : (
            <ul class="items" aria-labelledby="grants-heading">
              {sorted.map((g) => (
                <GrantRow key={g.id} g={g} showPerson={all} onRevoke={setRevoking} busy={busy} />
              ))}
            </ul>
          );
        }}
      </Loaded>
      {revoking && (
        <Dialog title={`Revoke the grant of ${revoking.agent}?`} onClose={() => setRevoking(null)}>
          <p>
            The agent <strong>{revoking.agent}</strong> can no longer get tokens with this grant, and its next
            request is refused. To let it work again, give it a new grant.
          </p>
          <Facts
            items={[
              ["Actions", list(revoking.actions)],
              ["Scopes", list(revoking.scopes)],
            ]}
          />
          <div class="row end">
            <button type="button" onClick={() => setRevoking(null)}>
              Cancel
            </button>
            <button
              type="button"
              class="danger solid"
              onClick={() => {
                const g = revoking;
                setRevoking(null);
                void revoke(g);
              }}
            >
              Revoke the grant
            </button>
          </div>
        </Dialog>
      )}
    </Page>
  );
}
