/**
 * Gateway status (administrators): upstream health, signing keys and the next rotation, the audit
 * writer's durability, state and queue, trusted issuers, version.
 */
import type { StatusView } from "../../../src/server/controlPlane/consoleApi";
import { Badge, Facts, Loaded, Page, Time, useResource } from "../components/ui";
import { duration, formatNumber, relative } from "../format";

function auditTone(state: StatusView["audit"]["state"]): "ok" | "warn" | "danger" {
  return state === "ok" ? "ok" : state === "retrying" || state === "overloaded" ? "warn" : "danger";
}

export function StatusPage() {
  const status = useResource<StatusView>("/api/status");
  return (
    <Page
      name="status"
      title="Gateway status"
      actions={
        <button type="button" onClick={status.reload} disabled={status.loading}>
          Refresh
        </button>
      }
    >
      <Loaded resource={status} what="the gateway's status">
        {(s) => (
          <div class="grid" aria-live="polite">
            <section class="card" data-testid="status-upstream">
              <h2 id="upstream-heading">
                Upstream{" "}
                {s.upstream.healthy ? (
                  <Badge tone="ok">Healthy</Badge>
                ) : (
                  <Badge tone="danger">Unhealthy</Badge>
                )}
              </h2>
              <Facts
                items={[
                  ["Type", s.upstream.type === "embedded" ? "Embedded store" : "Azure Cosmos DB account"],
                  ["Endpoint", <code>{s.upstream.endpoint}</code>],
                  [
                    "Latency",
                    s.upstream.latencyMs !== null ? `${formatNumber(s.upstream.latencyMs)} ms` : "—",
                  ],
                  ["Problem", s.upstream.problem ?? null],
                ]}
              />
            </section>
            <section class="card" data-testid="status-audit">
              <h2 id="audit-heading">
                Audit <Badge tone={auditTone(s.audit.state)}>{s.audit.state}</Badge>
              </h2>
              <Facts
                items={[
                  [
                    "Durability",
                    s.audit.durability === "strict"
                      ? "strict (a request completes once its record is on disk)"
                      : "buffered (records are written in batches)",
                  ],
                  [
                    "On failure",
                    s.audit.onFailure === "closed"
                      ? "closed (requests are refused when records cannot be written)"
                      : "open (requests go on)",
                  ],
                  ["Accepting", s.audit.accepting ? "yes" : "no — requests are refused"],
                  ["Queue", `${formatNumber(s.audit.queueDepth)} of ${formatNumber(s.audit.maxQueue)}`],
                  ["Records", formatNumber(s.audit.records)],
                  [
                    "Last checkpoint",
                    s.audit.lastCheckpoint ? (
                      <>
                        #{formatNumber(s.audit.lastCheckpoint.seq)},{" "}
                        <Time value={s.audit.lastCheckpoint.time} seconds />
                      </>
                    ) : (
                      "none yet"
                    ),
                  ],
                ]}
              />
            </section>
            <section class="card span" data-testid="status-signing-keys">
              <h2 id="keys-heading">Signing keys</h2>
              <p>
                Next rotation:{" "}
                {s.nextRotation ? (
                  <>
                    <Time value={s.nextRotation} /> ({relative(s.nextRotation)})
                  </>
                ) : (
                  "not scheduled"
                )}
              </p>
              <div class="table-wrap">
                <table class="records">
                  <caption class="visually-hidden">Token signing keys</caption>
                  <thead>
                    <tr>
                      <th scope="col">Key ID</th>
                      <th scope="col">State</th>
                      <th scope="col">Created</th>
                      <th scope="col">Current from</th>
                      <th scope="col">Retires</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.signingKeys.map((k) => (
                      <tr key={k.kid} data-state={k.state}>
                        <th scope="row" data-label="Key ID">
                          <code>{k.kid}</code>
                        </th>
                        <td data-label="State">
                          <Badge
                            tone={k.state === "current" ? "ok" : k.state === "next" ? "accent" : "neutral"}
                          >
                            {k.state}
                          </Badge>
                        </td>
                        <td data-label="Created">
                          <Time value={k.createdAt} />
                        </td>
                        <td data-label="Current from">
                          <Time value={k.activatesAt} />
                        </td>
                        <td data-label="Retires">
                          <Time value={k.retiresAt} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </section>
            <section class="card">
              <h2 id="issuers-heading">Trusted issuers</h2>
              {s.issuers.length === 0 ? (
                <p>Only this gateway's own tokens.</p>
              ) : (
                <ul>
                  {s.issuers.map((i) => (
                    <li key={i.issuer}>
                      <strong>{i.name}</strong> <code>{i.issuer}</code>
                    </li>
                  ))}
                </ul>
              )}
            </section>
            <section class="card">
              <h2 id="version-heading">Gateway</h2>
              <Facts
                items={[
                  ["Version", <code data-testid="status-version">{s.version}</code>],
                  ["Started", <Time value={s.startedAt} seconds />],
                  ["Up for", duration(Date.now() - Date.parse(s.startedAt))],
                ]}
              />
            </section>
          </div>
        )}
      </Loaded>
    </Page>
  );
}
