/**
 * Policy: the loaded roles with their rules, members (administrators) and native Cosmos DB RBAC
 * mapping; and the explainer "can PERSON do ACTION on RESOURCE?".
 */
import { useState } from "preact/hooks";
import type { ExplainResult, ExplainRule } from "../../../src/policy/explain";
import type {
  ExplainRequest,
  MeView,
  PolicyView,
  RoleView,
} from "../../../src/server/controlPlane/consoleApi";
import { post } from "../api";
import {
  Badge,
  Busy,
  CopyButton,
  Facts,
  Loaded,
  Messages,
  Page,
  Time,
  useFlash,
  useResource,
} from "../components/ui";
import { list, splitList } from "../format";
import { ACTIONS } from "../vocabulary";

function ruleText(r: ExplainRule): string {
  return `${r.role}#${r.rule}: allow ${r.allow.join(", ")} on ${r.on.join(", ")}`;
}

function RoleCard({ role, admin }: { role: RoleView; admin: boolean }) {
  const id = `role-${role.name}`;
  const native = role.native;
  const definitions = native.definitions ?? (native.definition ? [native.definition] : []);
  return (
    <li class="item" data-testid="role-row" data-role={role.name} aria-labelledby={id}>
      <div class="item-head">
        <h3 id={id}>{role.name}</h3>
        {role.builtIn && <Badge>Built-in role</Badge>}
        {native.builtIn && <Badge tone="accent">Native: {native.builtIn.name}</Badge>}
        {native.notExpressible.length > 0 && <Badge tone="warn">Partly not expressible natively</Badge>}
      </div>
      <div class="table-wrap">
        <table class="compact">
          <caption class="visually-hidden">Rules of {role.name}</caption>
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">Allows</th>
              <th scope="col">On</th>
            </tr>
          </thead>
          <tbody>
            {role.rules.map((r, i) => (
              <tr key={`${i}-${r.on}`}>
                <th scope="row">#{r.rule ?? i}</th>
                <td>{r.allow.join(", ")}</td>
                <td class="mono wrap">{r.on}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {admin && <Facts items={[["Members", list(role.members, "No members")]]} />}
      <details class="native">
        <summary>Native Cosmos DB RBAC</summary>
        {native.builtIn && (
          <p>
            Equals the built-in role <strong>{native.builtIn.name}</strong> (ID{" "}
            <code>{native.builtIn.id}</code>).
          </p>
        )}
        {native.notExpressible.length > 0 && (
          <>
            <p>Not expressible in native RBAC:</p>
            <ul>
              {native.notExpressible.map((n) => (
                <li key={n}>{n}</li>
              ))}
            </ul>
          </>
        )}
        {definitions.length > 0 ? (
          <>
            <p>
              {definitions.length === 1 ? "Role definition" : `${definitions.length} role definitions`} for{" "}
              <code>az cosmosdb sql role definition create --body</code>:
            </p>
            {definitions.map((d) => {
              const json = JSON.stringify(d, null, 2);
              return (
                <div key={d.RoleName} class="definition">
                  <pre class="code" data-testid="native-definition">
                    <code>{json}</code>
                  </pre>
                  <CopyButton text={json} label={`Copy the definition ${d.RoleName}`} />
                </div>
              );
            })}
          </>
        ) : (
          !native.builtIn && <p>No native role definition: nothing of this role can be granted natively.</p>
        )}
        {native.assignAt && native.assignAt.length > 0 && (
          <p>
            Assign at: <code>{native.assignAt.join(", ")}</code>
          </p>
        )}
        {native.notes && native.notes.length > 0 && (
          <ul class="help">
            {native.notes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
        )}
      </details>
    </li>
  );
}

function Explainer({ me }: { me: MeView | undefined }) {
  const admin = me?.admin ?? false;
  const [person, setPerson] = useState("");
  const [sub, setSub] = useState("");
  const [groups, setGroups] = useState("");
  const [action, setAction] = useState("read");
  const [resource, setResource] = useState("");
  const [result, setResult] = useState<ExplainResult | null>(null);
  const [busy, setBusy] = useState(false);
  const { flash, say, fail } = useFlash();
  const submit = async (e: Event) => {
    e.preventDefault();
    if (resource.trim() === "") {
      fail(new Error("Give a resource path, e.g. /dbs/shop/colls/orders/docs/a1."));
      document.getElementById("explain-resource")?.focus();
      return;
    }
    const body: ExplainRequest = { action, resource: resource.trim() };
    if (admin && person.trim()) body.person = person.trim();
    else if (admin && sub.trim()) {
      body.sub = sub.trim();
      body.groups = splitList(groups);
    }
    setBusy(true);
    say("Asking the policy…");
    try {
      const r = await post<ExplainResult>("/api/policy/explain", body);
      setResult(r);
      const allowed = r.decision.effect === "allow";
      say(
        `${allowed ? "Allowed" : "Denied"}: ${r.principal.sub} ${allowed ? "may" : "may not"} ${r.action} ${r.resource}.`,
      );
    } catch (err) {
      setResult(null);
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card">
      <h2 id="explain-heading">Explain a decision</h2>
      <p>
        Can this person do this action on this resource? Ask the loaded policy: the decision is exactly what
        the gateway would decide, with the rule and roles behind it.
      </p>
      <form class="filters" noValidate onSubmit={submit}>
        <Busy busy={busy}>
          {admin ? (
            <div class="field">
              <label for="explain-person">Person</label>
              <input
                id="explain-person"
                type="text"
                autoComplete="off"
                spellcheck={false}
                placeholder={me?.name ?? "user name"}
                aria-describedby="explain-person-help"
                value={person}
                onInput={(e) => setPerson(e.currentTarget.value)}
              />
              <p id="explain-person-help" class="help">
                A user name; empty for yourself.
              </p>
            </div>
          ) : (
            <p class="field">
              For you, <strong>{me?.name}</strong>.
            </p>
          )}
          <div class="field">
            <label for="explain-action">Action</label>
            <select id="explain-action" value={action} onChange={(e) => setAction(e.currentTarget.value)}>
              {ACTIONS.map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
            </select>
          </div>
          <div class="field grow">
            <label for="explain-resource">Resource</label>
            <input
              id="explain-resource"
              type="text"
              autoComplete="off"
              spellcheck={false}
              placeholder="/dbs/shop/colls/orders/docs/a1"
              value={resource}
              onInput={(e) => setResource(e.currentTarget.value)}
            />
          </div>
          {admin && (
            <details class="field full">
              <summary>Or a federated subject</summary>
              <div class="row">
                <div class="field">
                  <label for="explain-sub">Subject</label>
                  <input
                    id="explain-sub"
                    type="text"
                    autoComplete="off"
                    spellcheck={false}
                    value={sub}
                    onInput={(e) => setSub(e.currentTarget.value)}
                  />
                </div>
                <div class="field">
                  <label for="explain-groups">Groups</label>
                  <input
                    id="explain-groups"
                    type="text"
                    autoComplete="off"
                    spellcheck={false}
                    value={groups}
                    onInput={(e) => setGroups(e.currentTarget.value)}
                  />
                </div>
              </div>
            </details>
          )}
          <div class="field buttons">
            <button type="submit" class="primary">
              Explain
            </button>
          </div>
        </Busy>
      </form>
      <Messages flash={flash} name="explain" />
      {result && (
        <div class="explain" data-testid="explain-result" data-decision={result.decision.effect}>
          <p class="decision">
            {result.decision.effect === "allow" ? (
              <Badge tone="ok">Allowed</Badge>
            ) : (
              <Badge tone="danger">Denied</Badge>
            )}{" "}
            <strong>{result.principal.sub}</strong> {result.decision.effect === "allow" ? "may" : "may not"}{" "}
            <strong>{result.action}</strong> <code>{result.resource}</code>
          </p>
          <Facts
            items={[
              ["Reason", result.decision.reason],
              [
                "Rule",
                result.matched ? (
                  <>
                    {ruleText(result.matched)}
                    {result.via === "metadata-ancestor" ? " (metadata of a parent of a granted scope)" : ""}
                  </>
                ) : (
                  "No rule allows it"
                ),
              ],
              [
                "Roles held",
                result.roles.length
                  ? result.roles.map((r) => `${r.name} (via ${r.via.join(", ")})`).join("; ")
                  : "None",
              ],
              ["Groups", list(result.principal.groups)],
              ["Policy version", result.policyVersion],
            ]}
          />
          {result.close.length > 0 && (
            <>
              <h3>Close, but not matching</h3>
              <ul>
                {result.close.map((c) => (
                  <li key={`${c.role}-${c.rule}`}>
                    {ruleText(c)} — {c.why}
                  </li>
                ))}
              </ul>
            </>
          )}
          {result.wouldAllow.length > 0 && (
            <>
              <h3>Roles that would allow it</h3>
              <ul>
                {result.wouldAllow.map((w) => (
                  <li key={`${w.role}-${w.rule}`}>
                    {ruleText(w)}
                    {w.members.length > 0 ? ` — members: ${w.members.join(", ")}` : ""}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </section>
  );
}

export function PolicyPage({ me }: { me: MeView | undefined }) {
  const policy = useResource<PolicyView>("/api/policy");
  const admin = me?.admin ?? false;
  return (
    <Page
      name="policy"
      title="Policy"
      lead="Who may do what on which resources, and what it becomes in Cosmos DB's own RBAC."
    >
      <Explainer me={me} />
      <Loaded resource={policy} what="the policy">
        {(p) => (
          <>
            <Facts
              class="summary"
              items={[
                ["File", <code>{p.file}</code>],
                ["Version", <code>{p.version}</code>],
                ["Loaded", <Time value={p.loadedAt} seconds />],
              ]}
            />
            <h2 id="roles-heading">
              Roles <span class="count">({p.roles.length})</span>
            </h2>
            {!admin && <p class="help">Members are shown to administrators only.</p>}
            <ul class="items" aria-labelledby="roles-heading">
              {p.roles.map((r) => (
                <RoleCard key={r.name} role={r} admin={admin} />
              ))}
            </ul>
          </>
        )}
      </Loaded>
    </Page>
  );
}
