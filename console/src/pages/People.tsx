/**
 * People (administrators): the list with groups, keys and state; invite (link + QR code); disable
 * and enable; edit groups; re-enable a suspended key.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type {
  InviteRequest,
  InviteView,
  KeyView,
  MeView,
  PeopleView,
  PersonView,
} from "../../../src/server/controlPlane/consoleApi";
import { post, put, seg } from "../api";
import { loadQrEncoder, QrCode } from "../components/QrCode";
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
import { formatNumber, list, splitList } from "../format";
import { href } from "../router";

function InviteForm({ onInvited }: { onInvited: () => void }) {
  const [name, setName] = useState("");
  const [groups, setGroups] = useState("");
  const [admin, setAdmin] = useState(false);
  const [invite, setInvite] = useState<InviteView | null>(null);
  const [busy, setBusy] = useState(false);
  const { flash, say, fail } = useFlash();
  const submit = async (e: Event) => {
    e.preventDefault();
    const n = name.trim();
    if (n === "") {
      fail(new Error("Give the person a user name."));
      document.getElementById("invite-name")?.focus();
      return;
    }
    setBusy(true);
    say("Creating the invite…");
    try {
      const body: InviteRequest = { name: n, groups: splitList(groups), ...(admin ? { admin: true } : {}) };
      const result = await post<InviteView>("/api/people/invite", body);
      setInvite(result);
      say(`Invited ${result.name}. Send them the enrollment link below; it is shown only once.`);
      setName("");
      setGroups("");
      setAdmin(false);
      onInvited();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card">
      <h2 id="invite-heading">Invite a person</h2>
      <form class="stack" noValidate onSubmit={submit}>
        <Busy busy={busy}>
          <label for="invite-name">User name</label>
          <input
            id="invite-name"
            type="text"
            maxLength={64}
            autoComplete="off"
            autoCapitalize="none"
            spellcheck={false}
            required
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
          <label for="invite-groups">
            Groups <span class="optional">(optional)</span>
          </label>
          <input
            id="invite-groups"
            type="text"
            autoComplete="off"
            spellcheck={false}
            aria-describedby="invite-groups-help"
            value={groups}
            onInput={(e) => setGroups(e.currentTarget.value)}
          />
          <p id="invite-groups-help" class="help">
            Separated by commas or spaces, e.g. <code>analysts, writers</code>. Policy roles name them as{" "}
            <code>group:NAME</code>.
          </p>
          <label class="check">
            <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.currentTarget.checked)} />
            Administrator (manages people and sees everyone's audit)
          </label>
          <button type="submit" class="primary">
            Create invite
          </button>
        </Busy>
      </form>
      <Messages flash={flash} name="invite" />
      {invite && (
        <div class="invite" data-testid="invite-result">
          <h3>Invite for {invite.name}</h3>
          <div class="invite-grid">
            <div class="stack wide">
              <label for="invite-url">Enrollment link</label>
              <input id="invite-url" type="text" readOnly class="mono" value={invite.url} />
              <CopyButton text={invite.url} label="Copy the link" />
              <p class="help">
                Valid until <Time value={invite.expiresAt} />, for one enrollment. Only its hash is kept: it
                cannot be shown again.
              </p>
            </div>
            <QrCode value={invite.url} label={`QR code of the invite for ${invite.name}`} />
          </div>
        </div>
      )}
    </section>
  );
}

function GroupsEditor({
  person,
  onSave,
  onDone,
}: {
  person: PersonView;
  onSave: (groups: string[]) => Promise<boolean>;
  onDone: () => void;
}) {
  const [value, setValue] = useState(person.groups.join(", "));
  const input = useRef<HTMLInputElement>(null);
  // The editor opens on request: focus goes to its field.
  useEffect(() => input.current?.focus(), []);
  const id = `groups-${person.name}`;
  return (
    <form
      class="row"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        if (await onSave(splitList(value))) onDone();
      }}
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          e.preventDefault();
          onDone();
        }
      }}
    >
      <label for={id}>Groups of {person.name}</label>
      <input
        id={id}
        type="text"
        autoComplete="off"
        spellcheck={false}
        ref={input}
        value={value}
        onInput={(e) => setValue(e.currentTarget.value)}
      />
      <button type="submit" class="primary">
        Save groups
      </button>
      <button type="button" onClick={onDone}>
        Cancel
      </button>
    </form>
  );
}

function PersonKey({
  person,
  k,
  busy,
  onReenable,
}: {
  person: PersonView;
  k: KeyView;
  busy: boolean;
  onReenable: (person: PersonView, k: KeyView) => void;
}) {
  return (
    <li class="subitem" data-testid="person-key-row" data-key-id={k.id}>
      <div class="item-head">
        <strong>{k.nickname}</strong>
        <Badge>{k.type === "hardware-bound" ? "Hardware-bound" : "Synced passkey"}</Badge>
        {k.suspended && <Badge tone="danger">Suspended</Badge>}
      </div>
      <p class="help">
        {k.authenticator ?? "Unknown model"} · added <Time value={k.createdAt} /> · last used{" "}
        <Time value={k.lastUsedAt} /> · {formatNumber(k.useCount)} uses
        {k.suspended && k.suspendedReason ? ` · suspended: ${k.suspendedReason}` : ""}
      </p>
      <div class="row">
        {k.suspended && (
          <button type="button" disabled={busy} onClick={() => onReenable(person, k)}>
            Re-enable
            <span class="visually-hidden">
              {" "}
              the key {k.nickname} of {person.name}
            </span>
          </button>
        )}
        <a href={href("/audit", { key: k.id })}>
          Activity<span class="visually-hidden"> of the key {k.nickname}</span>
        </a>
      </div>
    </li>
  );
}

function PersonRow({
  person,
  me,
  busy,
  act,
  askDisable,
}: {
  person: PersonView;
  me: MeView | undefined;
  busy: boolean;
  act: (
    person: PersonView,
    path: string,
    body: unknown,
    done: string,
    method?: "POST" | "PUT",
  ) => Promise<boolean>;
  askDisable: (person: PersonView) => void;
}) {
  const [editing, setEditing] = useState(false);
  const editButton = useRef<HTMLButtonElement>(null);
  const headingId = `person-${person.name}`;
  const stopEditing = () => {
    setEditing(false);
    setTimeout(() => editButton.current?.focus(), 0);
  };
  return (
    <li
      class="item"
      data-testid="person-row"
      data-person={person.name}
      aria-labelledby={headingId}
      data-disabled={person.disabled ? "true" : "false"}
    >
      <div class="item-head">
        <h3 id={headingId}>{person.name}</h3>
        {me?.name === person.name && <Badge tone="accent">You</Badge>}
        {person.admin && <Badge tone="accent">Administrator</Badge>}
        {person.disabled ? <Badge tone="danger">Disabled</Badge> : <Badge tone="ok">Active</Badge>}
        {person.pendingInvite && <Badge tone="warn">Invite pending</Badge>}
      </div>
      <Facts
        items={[
          ["Groups", list(person.groups)],
          ["Added", <Time value={person.createdAt} />],
          ["Last seen", <Time value={person.lastSeenAt} />],
          [
            "Invite",
            person.pendingInvite ? (
              <>
                not used yet, valid until <Time value={person.pendingInvite.expiresAt} />
              </>
            ) : null,
          ],
        ]}
      />
      {editing ? (
        <GroupsEditor
          person={person}
          onDone={stopEditing}
          onSave={(groups) =>
            act(
              person,
              `/api/people/${seg(person.name)}/groups`,
              { groups },
              `Saved the groups of ${person.name}.`,
              "PUT",
            )
          }
        />
      ) : (
        <div class="row">
          <button type="button" ref={editButton} disabled={busy} onClick={() => setEditing(true)}>
            Edit groups<span class="visually-hidden"> of {person.name}</span>
          </button>
          {person.disabled ? (
            <button
              type="button"
              disabled={busy}
              onClick={() =>
                act(person, `/api/people/${seg(person.name)}/enable`, {}, `Enabled ${person.name}.`)
              }
            >
              Enable<span class="visually-hidden"> {person.name}</span>
            </button>
          ) : (
            <button type="button" class="danger" disabled={busy} onClick={() => askDisable(person)}>
              Disable<span class="visually-hidden"> {person.name}</span>
            </button>
          )}
          <a href={href("/audit", { actor: person.name })}>
            Activity<span class="visually-hidden"> of {person.name}</span>
          </a>
        </div>
      )}
      <h4 class="subhead">
        Keys <span class="count">({person.keys.length})</span>
      </h4>
      {person.keys.length === 0 ? (
        <p class="help">No key enrolled yet.</p>
      ) : (
        <ul class="subitems" aria-label={`Keys of ${person.name}`}>
          {person.keys.map((k) => (
            <PersonKey
              key={k.id}
              person={person}
              k={k}
              busy={busy}
              onReenable={(p, key) =>
                act(
                  p,
                  `/api/people/${seg(p.name)}/keys/${seg(key.id)}/reenable`,
                  {},
                  `Re-enabled the key “${key.nickname}” of ${p.name}.`,
                )
              }
            />
          ))}
        </ul>
      )}
    </li>
  );
}

export function PeoplePage({ me }: { me: MeView | undefined }) {
  const people = useResource<PeopleView>("/api/people");
  // The QR encoder is a chunk of its own: fetch it now, so an invite's code draws at once.
  useEffect(() => {
    if (me?.admin) void loadQrEncoder().catch(() => undefined);
  }, [me?.admin]);
  const { flash, say, fail } = useFlash();
  const [busy, setBusy] = useState(false);
  const [filter, setFilter] = useState("");
  const [disabling, setDisabling] = useState<PersonView | null>(null);

  const act = async (
    person: PersonView,
    path: string,
    body: unknown,
    done: string,
    method: "POST" | "PUT" = "POST",
  ): Promise<boolean> => {
    setBusy(true);
    say("Saving…");
    try {
      const updated = await (method === "PUT" ? put<PersonView>(path, body) : post<PersonView>(path, body));
      if (people.data && updated && typeof updated === "object" && "name" in updated) {
        people.setData({ people: people.data.people.map((p) => (p.name === person.name ? updated : p)) });
      } else {
        people.reload();
      }
      say(done);
      return true;
    } catch (err) {
      fail(err);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const q = filter.trim().toLowerCase();
  return (
    <Page
      name="people"
      title="People"
      lead="Who can sign in, their groups and keys. Only administrators see this page."
    >
      <Messages flash={flash} />
      <Loaded resource={people} what="people">
        {(data) => {
          const shown = data.people.filter(
            (p) =>
              q === "" ||
              p.name.toLowerCase().includes(q) ||
              p.groups.some((g) => g.toLowerCase().includes(q)),
          );
          return (
            <>
              <InviteForm onInvited={people.reload} />
              <div class="list-head">
                <h2 id="people-heading">
                  Everyone <span class="count">({data.people.length})</span>
                </h2>
                <div class="inline-field">
                  <label for="people-filter">Find a person</label>
                  <input
                    id="people-filter"
                    type="search"
                    autoComplete="off"
                    value={filter}
                    onInput={(e) => setFilter(e.currentTarget.value)}
                  />
                </div>
              </div>
              {shown.length === 0 && <p>No one matches “{filter}”.</p>}
              <ul class="items" aria-labelledby="people-heading">
                {shown.map((p) => (
                  <PersonRow
                    key={p.name}
                    person={p}
                    me={me}
                    busy={busy}
                    act={act}
                    askDisable={setDisabling}
                  />
                ))}
              </ul>
            </>
          );
        }}
      </Loaded>
      {disabling && (
        <Dialog title={`Disable ${disabling.name}?`} onClose={() => setDisabling(null)}>
          <p>
            {disabling.name} is signed out everywhere at once, and cannot sign in or use the gateway until an
            administrator enables them again. Their keys and audit trail are kept.
          </p>
          <div class="row end">
            <button type="button" onClick={() => setDisabling(null)}>
              Cancel
            </button>
            <button
              type="button"
              class="danger solid"
              onClick={async () => {
                const p = disabling;
                setDisabling(null);
                await act(
                  p,
                  `/api/people/${seg(p.name)}/disable`,
                  {},
                  `Disabled ${p.name}; they are signed out.`,
                );
              }}
            >
              Disable {disabling.name}
            </button>
          </div>
        </Dialog>
      )}
    </Page>
  );
}
