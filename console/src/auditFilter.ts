/**
 * The audit explorer's filter, kept in the address (`#/audit?key=ID&range=24h`) so a filter can be
 * shared, reloaded and navigated back to; and the API's {@link AuditQuery} it means.
 */
import type { AuditQuery } from "../../src/server/controlPlane/consoleApi";

export const RANGES = [
  { value: "15m", label: "Last 15 minutes" },
  { value: "1h", label: "Last hour" },
  { value: "24h", label: "Last 24 hours" },
  { value: "7d", label: "Last 7 days" },
  { value: "30d", label: "Last 30 days" },
  { value: "all", label: "All time" },
  { value: "custom", label: "Custom range" },
] as const;

export type RangeValue = (typeof RANGES)[number]["value"];

export const DEFAULT_RANGE: RangeValue = "24h";

/** The filter as the form edits it (every field a string; "" is "any"). */
export interface FilterState {
  actor: string;
  key: string;
  action: string;
  resource: string;
  decision: string;
  type: string;
  range: RangeValue;
  /** Custom range, as `<input type="datetime-local">` values (local time). */
  from: string;
  to: string;
}

const FIELDS = ["actor", "key", "action", "resource", "decision", "type", "from", "to"] as const;

export function filterFromQuery(q: URLSearchParams): FilterState {
  const range = (q.get("range") ?? DEFAULT_RANGE) as RangeValue;
  const state: FilterState = {
    actor: "",
    key: "",
    action: "",
    resource: "",
    decision: "",
    type: "",
    range: RANGES.some((r) => r.value === range) ? range : DEFAULT_RANGE,
    from: "",
    to: "",
  };
  for (const f of FIELDS) state[f] = q.get(f) ?? "";
  return state;
}

/** The address query of a filter (defaults and empty fields left out). */
export function filterToQuery(f: FilterState): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const k of FIELDS) {
    if ((k === "from" || k === "to") && f.range !== "custom") continue;
    const v = f[k].trim();
    if (v !== "") out[k] = v;
  }
  if (f.range !== DEFAULT_RANGE) out.range = f.range;
  return out;
}

/** A datetime-local value (local time) as ISO 8601 UTC, or undefined when empty or invalid. */
function localToIso(v: string): string | undefined {
  if (v === "") return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** The API query of a filter. */
export function toAuditQuery(f: FilterState): AuditQuery {
  const q: AuditQuery = {};
  if (f.actor.trim()) q.actor = f.actor.trim();
  if (f.key.trim()) q.key = f.key.trim();
  if (f.action) q.action = f.action;
  if (f.resource.trim()) q.resource = f.resource.trim();
  if (f.decision === "allow" || f.decision === "deny" || f.decision === "error") q.decision = f.decision;
  if (f.type.trim()) q.type = f.type.trim();
  if (f.range === "custom") {
    const from = localToIso(f.from);
    const to = localToIso(f.to);
    if (from) q.from = from;
    if (to) q.to = to;
  } else if (f.range !== "all") {
    q.from = f.range;
  }
  return q;
}

/** "key ab12…, denied, last 24 hours" — what the filter shows, for headings and announcements. */
export function describeFilter(f: FilterState): string {
  const parts: string[] = [];
  if (f.actor) parts.push(`person ${f.actor}`);
  if (f.key) parts.push(`key ${f.key.length > 12 ? `${f.key.slice(0, 12)}…` : f.key}`);
  if (f.action) parts.push(`action ${f.action}`);
  if (f.resource) parts.push(`resource ${f.resource}`);
  if (f.decision)
    parts.push(f.decision === "allow" ? "allowed" : f.decision === "deny" ? "denied" : "errors");
  if (f.type) parts.push(`type ${f.type}`);
  parts.push((RANGES.find((r) => r.value === f.range)?.label ?? f.range).toLowerCase());
  return parts.join(", ");
}
