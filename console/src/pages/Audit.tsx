/**
 * The audit explorer: filters (kept in the address), a timeline of allowed vs denied, the records
 * newest first with "load more", a record's detail with its chain verification, export of the
 * filter, and a live tail over server-sent events.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useMemo, useState } from "preact/hooks";
import type { AuditRecord } from "../../../src/audit/types";
import type {
  AuditPage as AuditPageView,
  AuditRecordDetail,
  MeView,
  TimelineView,
} from "../../../src/server/controlPlane/consoleApi";
import { auditQueryString, get, loadMe } from "../api";
import {
  describeFilter,
  type FilterState,
  filterFromQuery,
  filterToQuery,
  RANGES,
  type RangeValue,
  toAuditQuery,
} from "../auditFilter";
import { Timeline } from "../components/Timeline";
import { Badge, Dialog, Facts, LoadError, Loaded, Page, Time, useResource } from "../components/ui";
import { formatNumber, short } from "../format";
import { href, navigate } from "../router";
import { ACTIONS, EVENT_TYPES } from "../vocabulary";

const PAGE_SIZE = 50;

export function AuditTabs({ current }: { current: "records" | "keys" }) {
  return (
    <nav class="tabs" aria-label="Audit views">
      <a href="#/audit" aria-current={current === "records" ? "page" : undefined}>
        Records
      </a>
      <a href="#/audit/keys" aria-current={current === "keys" ? "page" : undefined}>
        Key usage
      </a>
    </nav>
  );
}

function DecisionBadge({ decision }: { decision: AuditRecord["decision"] }) {
  return decision === "allow" ? (
    <Badge tone="ok">Allowed</Badge>
  ) : decision === "deny" ? (
    <Badge tone="danger">Denied</Badge>
  ) : (
    <Badge tone="warn">Error</Badge>
  );
}

function Filters({ admin, initial }: { admin: boolean; initial: FilterState }) {
  const [f, setF] = useState(initial);
  // On narrow screens the form is behind a disclosure button (always shown on wide ones).
  const [open, setOpen] = useState(false);
  useEffect(() => setF(initial), [initial]);
  const set = (k: keyof FilterState) => (e: { currentTarget: { value: string } }) =>
    setF({ ...f, [k]: e.currentTarget.value });
  const active = Object.keys(filterToQuery(initial)).filter((k) => k !== "from" && k !== "to").length;
  return (
    <>
      <button
        type="button"
        class="filters-toggle"
        aria-expanded={open}
        aria-controls="audit-filters"
        onClick={() => setOpen(!open)}
      >
        Filters{active > 0 ? ` (${active} set)` : ""}
      </button>
      <form
        id="audit-filters"
        class={`filters collapsible${open ? " open" : ""}`}
        aria-label="Audit filters"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          navigate("/audit", filterToQuery(f));
        }}
      >
        {admin && (
          <div class="field">
            <label for="f-actor">Person</label>
            <input
              id="f-actor"
              type="text"
              autoComplete="off"
              spellcheck={false}
              placeholder="user name or subject"
              value={f.actor}
              onInput={set("actor")}
            />
          </div>
        )}
        <div class="field">
          <label for="f-key">Key</label>
          <input
            id="f-key"
            type="text"
            autoComplete="off"
            spellcheck={false}
            placeholder="credential ID"
            value={f.key}
            onInput={set("key")}
          />
        </div>
        <div class="field">
          <label for="f-action">Action</label>
          <select id="f-action" value={f.action} onChange={set("action")}>
            <option value="">Any action</option>
            {ACTIONS.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-resource">Resource</label>
          <input
            id="f-resource"
            type="text"
            autoComplete="off"
            spellcheck={false}
            placeholder="/dbs/shop/colls/orders"
            value={f.resource}
            onInput={set("resource")}
          />
        </div>
        <div class="field">
          <label for="f-decision">Decision</label>
          <select id="f-decision" value={f.decision} onChange={set("decision")}>
            <option value="">Any decision</option>
            <option value="allow">Allowed</option>
            <option value="deny">Denied</option>
            <option value="error">Error</option>
          </select>
        </div>
        <div class="field">
          <label for="f-type">Event type</label>
          <input
            id="f-type"
            type="text"
            list="event-types"
            autoComplete="off"
            spellcheck={false}
            placeholder="any"
            value={f.type}
            onInput={set("type")}
          />
          <datalist id="event-types">
            {EVENT_TYPES.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </div>
        <div class="field">
          <label for="f-range">Time</label>
          <select
            id="f-range"
            value={f.range}
            onChange={(e) => setF({ ...f, range: e.currentTarget.value as RangeValue })}
          >
            {RANGES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
        {f.range === "custom" && (
          <>
            <div class="field">
              <label for="f-from">From</label>
              <input id="f-from" type="datetime-local" step={1} value={f.from} onInput={set("from")} />
            </div>
            <div class="field">
              <label for="f-to">To</label>
              <input id="f-to" type="datetime-local" step={1} value={f.to} onInput={set("to")} />
            </div>
          </>
        )}
        <div class="field buttons">
          <button type="submit" class="primary">
            Apply filters
          </button>
          <button
            type="button"
            onClick={() => {
              navigate("/audit");
            }}
          >
            Clear
          </button>
        </div>
      </form>
    </>
  );
}

function Verified({ ok, yes, no }: { ok: boolean; yes: string; no: string }) {
  return ok ? (
    <span class="verdict ok">
      <span aria-hidden="true">✓ </span>
      {yes}
    </span>
  ) : (
    <span class="verdict bad">
      <span aria-hidden="true">✗ </span>
      {no}
    </span>
  );
}

function fieldValue(v: unknown): ComponentChildren {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.length ? v.join(", ") : "—";
  if (v !== null && typeof v === "object") return <code>{JSON.stringify(v)}</code>;
  return String(v);
}

const SKIP_FIELDS = new Set(["seq", "hash", "prevHash", "details", "time", "decision"]);
/** The fields of a record in reading order; any other field follows. */
const FIELD_ORDER = [
  "type",
  "subject",
  "subjectKind",
  "subjectName",
  "issuer",
  "tokenIssuer",
  "actions",
  "operation",
  "method",
  "resource",
  "partitionKey",
  "rule",
  "reason",
  "status",
  "substatus",
  "requestCharge",
  "durationMs",
  "credential",
  "credentialName",
  "aaguid",
  "deviceBound",
  "session",
  "jti",
  "clientAddress",
  "userAgent",
  "activityId",
  "instance",
];
const rank = (k: string) => {
  const i = FIELD_ORDER.indexOf(k);
  return i === -1 ? FIELD_ORDER.length : i;
};

function RecordDetail({ seq, onClose }: { seq: number; onClose: () => void }) {
  const detail = useResource<AuditRecordDetail>(`/api/audit/records/${seq}`);
  return (
    <Dialog title={`Audit record #${seq}`} onClose={onClose} wide>
      <div data-testid="audit-detail">
        <Loaded resource={detail} what="the record">
          {({ record, chain, checkpoint }) => (
            <>
              <section>
                <h3 id="chain-heading">Verification</h3>
                <Facts
                  items={[
                    ["Chain position", `record ${formatNumber(chain.seq)} of ${formatNumber(chain.length)}`],
                    [
                      "Content",
                      <Verified
                        ok={chain.hashOk}
                        yes="hash verifies (unchanged since written)"
                        no="hash does not match: the record was changed"
                      />,
                    ],
                    [
                      "Link",
                      <Verified
                        ok={chain.linkOk}
                        yes="linked to the previous record"
                        no="does not link to the previous record: the chain is broken here"
                      />,
                    ],
                    [
                      "Checkpoint",
                      checkpoint === null ? (
                        <span class="verdict pending">not yet covered by a signed checkpoint</span>
                      ) : (
                        <>
                          <Verified
                            ok={checkpoint.signatureOk && checkpoint.coversRecord}
                            yes={`signed checkpoint #${checkpoint.seq} covers it`}
                            no={
                              !checkpoint.signatureOk
                                ? `checkpoint #${checkpoint.seq}'s signature does not verify`
                                : `checkpoint #${checkpoint.seq} does not cover this record's hash`
                            }
                          />{" "}
                          (<Time value={checkpoint.time} seconds />, key <code>{checkpoint.kid}</code>)
                        </>
                      ),
                    ],
                    ["Hash", <code class="hash">{chain.hash}</code>],
                    ["Previous hash", <code class="hash">{chain.prevHash || "(first record)"}</code>],
                  ]}
                />
              </section>
              <section>
                <h3 id="fields-heading">Fields</h3>
                <Facts
                  items={[
                    ["Time", <Time value={record.time} seconds />],
                    ["Decision", <DecisionBadge decision={record.decision} />],
                    ...Object.entries(record)
                      .filter(([k]) => !SKIP_FIELDS.has(k))
                      .sort(([a], [b]) => rank(a) - rank(b))
                      .map(([k, v]): [string, ComponentChildren] => [k, fieldValue(v)]),
                  ]}
                />
                {record.details && Object.keys(record.details).length > 0 && (
                  <>
                    <h4>Details</h4>
                    <Facts
                      items={Object.entries(record.details).map(([k, v]): [string, ComponentChildren] => [
                        k,
                        fieldValue(v),
                      ])}
                    />
                  </>
                )}
              </section>
              <p class="row">
                {record.subject && (
                  <a href={href("/audit", { actor: record.subject })} onClick={onClose}>
                    Records of {record.subject}
                  </a>
                )}
                {record.credential && (
                  <a href={href("/audit", { key: record.credential })} onClick={onClose}>
                    Records of this key
                  </a>
                )}
              </p>
            </>
          )}
        </Loaded>
      </div>
    </Dialog>
  );
}

function RecordRow({ r, fresh, onOpen }: { r: AuditRecord; fresh: boolean; onOpen: (seq: number) => void }) {
  return (
    <tr
      data-testid="audit-row"
      data-seq={r.seq}
      data-decision={r.decision}
      class={fresh ? "fresh" : undefined}
    >
      <td data-label="Record">
        <button
          type="button"
          class="link"
          onClick={() => onOpen(r.seq)}
          aria-label={`Details of record ${r.seq}`}
        >
          #{r.seq}
        </button>
      </td>
      <td data-label="Time" class="time">
        <Time value={r.time} compact />
      </td>
      <td data-label="Decision">
        <DecisionBadge decision={r.decision} />
      </td>
      <td data-label="Event">
        {r.type}
        {r.operation ? <span class="sub"> {r.operation}</span> : null}
      </td>
      <td data-label="Person">{r.subject || "—"}</td>
      <td data-label="Action" class={r.actions.length ? undefined : "na"}>
        {r.actions.length ? r.actions.join(", ") : "—"}
      </td>
      <td data-label="Resource" class="mono wrap">
        {r.resource || "—"}
      </td>
      <td data-label="Key">
        {r.credential ? <span title={r.credential}>{r.credentialName ?? short(r.credential)}</span> : "—"}
      </td>
      <td data-label="Status" class={r.status ? undefined : "na"}>
        {r.status ? r.status : "—"}
      </td>
    </tr>
  );
}

interface ListState {
  /** The query these records answer (records of a previous filter are never shown with a new one). */
  for: string;
  records: AuditRecord[];
  next: number | null;
  loading: boolean;
  error?: unknown;
}

export function AuditPage({ me, query }: { me: MeView | undefined; query: URLSearchParams }) {
  const qs = query.toString();
  const filter = useMemo(() => filterFromQuery(new URLSearchParams(qs)), [qs]);
  const apiQuery = useMemo(() => toAuditQuery(filter), [filter]);
  const base = auditQueryString(apiQuery);
  const admin = me?.admin ?? false;

  const timeline = useResource<TimelineView>(
    `/api/audit/timeline?${auditQueryString(apiQuery, { buckets: 48 })}`,
  );
  const [state, setList] = useState<ListState>({ for: "", records: [], next: null, loading: true });
  const list: ListState = state.for === base ? state : { for: base, records: [], next: null, loading: true };
  const [open, setOpen] = useState<number | null>(null);
  const [live, setLive] = useState(false);
  const [liveNote, setLiveNote] = useState("");
  const [fresh, setFresh] = useState<Set<number>>(new Set());

  useLayoutEffect(() => {
    let alive = true;
    const key = auditQueryString(apiQuery);
    setList({ for: key, records: [], next: null, loading: true });
    setFresh(new Set());
    get<AuditPageView>(`/api/audit/records?${auditQueryString(apiQuery, { limit: PAGE_SIZE })}`).then(
      (page) => alive && setList({ for: key, records: page.records, next: page.next, loading: false }),
      (error) => alive && setList({ for: key, records: [], next: null, loading: false, error }),
    );
    return () => {
      alive = false;
    };
  }, [apiQuery]);

  const loadMore = async () => {
    if (list.next === null) return;
    setList({ ...list, loading: true });
    try {
      const page = await get<AuditPageView>(
        `/api/audit/records?${auditQueryString(apiQuery, { limit: PAGE_SIZE, before: list.next })}`,
      );
      setList((l) => ({ ...l, records: [...l.records, ...page.records], next: page.next, loading: false }));
    } catch (error) {
      setList((l) => ({ ...l, loading: false, error }));
    }
  };

  // Live tail: new matching records arrive as `record` events and go on top.
  useEffect(() => {
    if (!live) return;
    const source = new EventSource(`/api/audit/stream?${base}`);
    let added = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    source.addEventListener("open", () => setLiveNote("Live tail on: new records appear at the top."));
    let checking = false;
    source.addEventListener("error", () => {
      setLiveNote("Live tail interrupted; reconnecting…");
      // An event stream does not tell why it failed: a signed-out session shows on /api/me (401 → sign-in).
      if (!checking) {
        checking = true;
        loadMe()
          .catch(() => undefined)
          .finally(() => {
            checking = false;
          });
      }
    });
    source.addEventListener("record", (e) => {
      let record: AuditRecord;
      try {
        record = JSON.parse((e as MessageEvent<string>).data) as AuditRecord;
      } catch {
        return;
      }
      setList((l) =>
        l.records.some((r) => r.seq === record.seq) ? l : { ...l, records: [record, ...l.records] },
      );
      setFresh((s) => new Set(s).add(record.seq));
      added++;
      // One announcement per second at most.
      if (timer === undefined) {
        timer = setTimeout(() => {
          setLiveNote(`${added} new ${added === 1 ? "record" : "records"}.`);
          added = 0;
          timer = undefined;
        }, 1000);
      }
    });
    return () => {
      source.close();
      if (timer !== undefined) clearTimeout(timer);
      setLiveNote("");
    };
  }, [live, base]);

  const exportHref = (format: "csv" | "jsonl") =>
    `/api/audit/export?${auditQueryString(apiQuery, { format })}`;

  return (
    <Page
      name="audit"
      title={admin ? "Audit" : "My activity"}
      lead={
        admin
          ? "Every request and identity event the gateway recorded, in a tamper-evident chain."
          : "What you did through the gateway: your requests and sign-ins. Administrators see everyone's."
      }
    >
      <AuditTabs current="records" />
      <Filters admin={admin} initial={filter} />
      <div class="card">
        <Loaded resource={timeline} what="the timeline">
          {(t) => (
            <Timeline
              id="audit-timeline"
              title="Allowed and denied"
              bucketMs={t.bucketMs}
              points={t.buckets.map((b) => ({ start: Date.parse(b.start), allow: b.allow, deny: b.deny }))}
            />
          )}
        </Loaded>
      </div>
      <div class="toolbar">
        <p class="count" aria-live="polite" data-testid="audit-count">
          {list.loading && list.records.length === 0
            ? "Loading records…"
            : `Showing ${formatNumber(list.records.length)} ${list.records.length === 1 ? "record" : "records"}${
                list.next !== null ? " (more below)" : ""
              }: ${describeFilter(filter)}.`}
        </p>
        <div class="row">
          <a class="button" href={exportHref("csv")} download>
            Export CSV
          </a>
          <a class="button" href={exportHref("jsonl")} download>
            Export JSONL
          </a>
          <label class="check switch">
            <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} />
            Live tail
          </label>
        </div>
      </div>
      <p role="status" class="live-note">
        {liveNote}
      </p>
      {list.error !== undefined && <LoadError error={list.error} />}
      {!list.loading && list.records.length === 0 && list.error === undefined && (
        <p class="empty">No records match these filters. Widen the time range or clear a filter.</p>
      )}
      {list.records.length > 0 && (
        <div class="table-wrap">
          <table class="records" aria-describedby="audit-caption">
            <caption id="audit-caption" class="visually-hidden">
              Audit records, newest first
            </caption>
            <thead>
              <tr>
                <th scope="col">Record</th>
                <th scope="col">Time</th>
                <th scope="col">Decision</th>
                <th scope="col">Event</th>
                <th scope="col">Person</th>
                <th scope="col">Action</th>
                <th scope="col">Resource</th>
                <th scope="col">Key</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {list.records.map((r) => (
                <RecordRow key={r.seq} r={r} fresh={fresh.has(r.seq)} onOpen={setOpen} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.next !== null && (
        <p>
          <button type="button" disabled={list.loading} onClick={loadMore}>
            {list.loading ? "Loading…" : "Load more"}
          </button>
        </p>
      )}
      {open !== null && <RecordDetail seq={open} onClose={() => setOpen(null)} />}
    </Page>
  );
}
