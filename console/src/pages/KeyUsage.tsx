/**
 * Key usage: for each key, who owns it, what it is, and what was done with it in a time window
 * (`GET /api/audit/keys`, the same report as `cosmosgate audit keys`). Administrators see every
 * key; others their own.
 */
import type { KeysReport, KeyUsage } from "../../../src/audit/keysReport";
import type { MeView } from "../../../src/server/controlPlane/consoleApi";
import { RANGES } from "../auditFilter";
import { Timeline } from "../components/Timeline";
import { Badge, Loaded, Page, Time, useResource } from "../components/ui";
import { formatNumber, short } from "../format";
import { href, navigate } from "../router";
import { AuditTabs } from "./Audit";

const WINDOWS = RANGES.filter((r) => r.value !== "custom" && r.value !== "15m");

function StatusBadge({ k }: { k: KeyUsage }) {
  switch (k.status) {
    case "active":
      return <Badge tone="ok">Active</Badge>;
    case "suspended":
      return <Badge tone="danger">Suspended</Badge>;
    case "removed":
      return <Badge>Removed</Badge>;
    default:
      return <Badge tone="warn">Unknown</Badge>;
  }
}

function UsageRow({ k, range }: { k: KeyUsage; range: string }) {
  const actions = Object.entries(k.byAction)
    .sort((a, b) => b[1].allowed + b[1].denied + b[1].errors - (a[1].allowed + a[1].denied + a[1].errors))
    .slice(0, 4)
    .map(([name, c]) => `${name} ${c.allowed + c.denied + c.errors}`)
    .join(", ");
  return (
    <tr data-testid="key-usage-row" data-key-id={k.credential}>
      <th scope="row" data-label="Key">
        <span title={k.credential}>{k.nickname ?? short(k.credential)}</span>
        <span class="sub">{k.owner ? ` ${k.owner}` : ""}</span>
      </th>
      <td data-label="Model">
        {k.authenticator ?? "Unknown model"}
        <span class="sub">
          {k.kind === "device-bound" ? " hardware-bound" : k.kind === "synced" ? " synced" : ""}
        </span>
      </td>
      <td data-label="State">
        <StatusBadge k={k} />
      </td>
      <td data-label="Uses">{formatNumber(k.uses)}</td>
      <td data-label="Allowed">{formatNumber(k.allowed)}</td>
      <td data-label="Denied">{formatNumber(k.denied)}</td>
      <td data-label="Errors">{formatNumber(k.errors)}</td>
      <td data-label="Sign-ins">
        {formatNumber(k.signIns)}
        {k.failedSignIns > 0 ? <span class="sub"> ({k.failedSignIns} failed)</span> : null}
      </td>
      <td data-label="Last use">{k.lastUse !== undefined ? <Time value={k.lastUse} /> : "—"}</td>
      <td data-label="Top actions">{actions || "—"}</td>
      <td data-label="Records">
        <a href={href("/audit", { key: k.credential, range: range === "24h" ? undefined : range })}>
          Records<span class="visually-hidden"> of {k.nickname ?? k.credential}</span>
        </a>
      </td>
    </tr>
  );
}

export function KeyUsagePage({ me, query }: { me: MeView | undefined; query: URLSearchParams }) {
  const range = query.get("range") ?? "7d";
  const from = range === "all" ? "" : `from=${encodeURIComponent(range)}`;
  const report = useResource<KeysReport>(`/api/audit/keys?${from}`);
  return (
    <Page
      name="audit-keys"
      title={me?.admin === false ? "My activity" : "Audit"}
      lead="Each key: its owner and model, and what was done with it in the time window."
    >
      <AuditTabs current="keys" />
      <form
        class="filters"
        aria-label="Key usage window"
        onSubmit={(e) => {
          e.preventDefault();
        }}
      >
        <div class="field">
          <label for="usage-range">Time</label>
          <select
            id="usage-range"
            value={range}
            onChange={(e) => navigate("/audit/keys", { range: e.currentTarget.value })}
          >
            {WINDOWS.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
      </form>
      <Loaded resource={report} what="key usage">
        {(r) => (
          <>
            <div class="card">
              <Timeline
                id="usage-timeline"
                title="All records"
                bucketMs={r.bucketMs}
                points={r.overall.map((b, i) => ({
                  start: r.bucketStart + i * r.bucketMs,
                  allow: b.allowed,
                  deny: b.denied,
                }))}
              />
              <p class="help">
                {formatNumber(r.totals.records)} records, {formatNumber(r.totals.withKey)} made with a key;{" "}
                {formatNumber(r.totals.refused)} refused. Generated <Time value={r.generatedAt} seconds />.
              </p>
            </div>
            <h2 id="usage-heading">
              Keys <span class="count">({r.keys.length})</span>
            </h2>
            {r.keys.length === 0 ? (
              <p class="empty">No key was used in this window.</p>
            ) : (
              <div class="table-wrap">
                <table class="records usage" aria-labelledby="usage-heading">
                  <thead>
                    <tr>
                      <th scope="col">Key</th>
                      <th scope="col">Model</th>
                      <th scope="col">State</th>
                      <th scope="col">Uses</th>
                      <th scope="col">Allowed</th>
                      <th scope="col">Denied</th>
                      <th scope="col">Errors</th>
                      <th scope="col">Sign-ins</th>
                      <th scope="col">Last use</th>
                      <th scope="col">Top actions</th>
                      <th scope="col">Records</th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.keys.map((k) => (
                      <UsageRow key={k.credential} k={k} range={range} />
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </>
        )}
      </Loaded>
    </Page>
  );
}
