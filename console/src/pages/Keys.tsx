/**
 * My keys: each key's facts, rename in place, add another key, remove with a tap, the single-key
 * warning, and an access token for scripts.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type {
  KeysView,
  KeyView,
  MeView,
  SessionTokenView,
} from "../../../src/server/controlPlane/consoleApi";
import { forgetSession, patch, post, seg } from "../api";
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
import { formatNumber } from "../format";
import { setNotice } from "../notice";
import { navigate } from "../router";
import { addKey, CeremonyError, removeKey, signIn } from "../webauthn";

type Say = (text: string) => void;

/**
 * Runs `action`; when the server wants a recent tap first (403 `reauthentication_required`),
 * confirms with one of the person's keys (a fresh sign-in), then runs it again.
 */
async function withReauth<T>(
  me: MeView | undefined,
  refreshMe: () => Promise<MeView | undefined>,
  say: Say,
  action: () => Promise<T>,
): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof CeremonyError) || err.code !== "reauthentication_required" || !me) throw err;
    say("First confirm it is you: touch one of your enrolled keys…");
    await signIn(me.name, () => undefined);
    await refreshMe();
    return action();
  }
}

function KeyRow({
  k,
  index,
  onRename,
  onRemove,
  busy,
}: {
  k: KeyView;
  index: number;
  onRename: (k: KeyView, nickname: string) => Promise<boolean>;
  onRemove: (k: KeyView) => void;
  busy: boolean;
}) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(k.nickname);
  const input = useRef<HTMLInputElement>(null);
  const renameButton = useRef<HTMLButtonElement>(null);
  const headingId = `key-${index}-name`;
  useEffect(() => {
    if (editing) input.current?.select();
  }, [editing]);
  const stop = () => {
    setEditing(false);
    setName(k.nickname);
    setTimeout(() => renameButton.current?.focus(), 0);
  };
  return (
    <li class="item" data-testid="key-row" data-key-id={k.id} aria-labelledby={headingId}>
      <div class="item-head">
        <h3 id={headingId}>{k.nickname}</h3>
        {k.current && <Badge tone="ok">This sign-in</Badge>}
        {k.suspended && <Badge tone="danger">Suspended</Badge>}
        <Badge>{k.type === "hardware-bound" ? "Hardware-bound" : "Synced passkey"}</Badge>
      </div>
      <Facts
        items={[
          ["Type", k.type === "hardware-bound" ? "Hardware-bound key (cannot be copied)" : "Synced passkey"],
          ["Authenticator", k.authenticator ?? "Unknown model"],
          ["Added", <Time value={k.createdAt} />],
          ["Last used", <Time value={k.lastUsedAt} />],
          ["Uses", formatNumber(k.useCount)],
          ["Suspended because", k.suspended ? (k.suspendedReason ?? "no reason recorded") : null],
        ]}
      />
      {editing ? (
        <form
          class="row"
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            if (await onRename(k, name.trim())) stop();
          }}
          onKeyDown={(e) => {
            if (e.key === "Escape") {
              e.preventDefault();
              stop();
            }
          }}
        >
          <label for={`rename-${index}`} class="visually-hidden">
            New name for {k.nickname}
          </label>
          <input
            id={`rename-${index}`}
            ref={input}
            type="text"
            maxLength={64}
            required
            autoComplete="off"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
          <button type="submit" class="primary" disabled={busy}>
            Save
          </button>
          <button type="button" onClick={stop}>
            Cancel
          </button>
        </form>
      ) : (
        <div class="row">
          <button type="button" ref={renameButton} disabled={busy} onClick={() => setEditing(true)}>
            Rename<span class="visually-hidden"> {k.nickname}</span>
          </button>
          <button type="button" class="danger" disabled={busy} onClick={() => onRemove(k)}>
            Remove<span class="visually-hidden"> {k.nickname}</span>
          </button>
          <a href={`#/audit?key=${encodeURIComponent(k.id)}`}>
            Activity<span class="visually-hidden"> of {k.nickname}</span>
          </a>
        </div>
      )}
    </li>
  );
}

function TokenPanel() {
  const [token, setToken] = useState<SessionTokenView | null>(null);
  const [issuedAt, setIssuedAt] = useState(0);
  const { flash, say, fail, clear } = useFlash();
  const [busy, setBusy] = useState(false);
  const get = async () => {
    setBusy(true);
    say("Getting a token…");
    try {
      const t = await post<SessionTokenView>("/api/me/token", {});
      setToken(t);
      setIssuedAt(Date.now());
      say(`Here is your access token. It expires in ${Math.round(t.expires_in / 60)} minutes.`);
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };
  const expires = issuedAt + (token?.expires_in ?? 0) * 1000;
  const snippet = token
    ? `// npm install @azure/cosmos
import { CosmosClient } from "@azure/cosmos";

// The access token from the console (it expires ${new Date(expires).toISOString()}).
const token = process.env.COSMOSGATE_TOKEN;
const client = new CosmosClient({
  endpoint: ${JSON.stringify(token.endpoint)},
  aadCredentials: {
    getToken: async () => ({ token, expiresOnTimestamp: ${expires} }),
  },
});`
    : "";
  const shell = token ? `export COSMOSGATE_TOKEN='${token.access_token}'` : "";
  return (
    <section class="card" data-testid="token-panel">
      <h2 id="token-heading">Get an access token</h2>
      <p>
        For a script or a quick test with the Cosmos DB SDK: a token for this session that works with the
        gateway's data plane. For programs that run for long, use <code>cosmosgate login</code> and{" "}
        <code>GatewayCredential</code> instead: they refresh the token.
      </p>
      <div class="row">
        <button type="button" class="primary" disabled={busy} onClick={get}>
          {token ? "Get a new token" : "Get an access token"}
        </button>
        {token && (
          <button
            type="button"
            onClick={() => {
              setToken(null);
              clear();
            }}
          >
            Hide the token
          </button>
        )}
      </div>
      <Messages flash={flash} name="token" />
      {token && (
        <div class="stack wide">
          <label for="access-token">Access token</label>
          <textarea
            id="access-token"
            class="mono"
            readOnly
            rows={4}
            spellcheck={false}
            data-testid="access-token"
            value={token.access_token}
          />
          <div class="row">
            <CopyButton text={token.access_token} label="Copy the token" />
            <span class="help">
              Expires <Time value={expires} /> · endpoint{" "}
              <code data-testid="token-endpoint">{token.endpoint}</code>
            </span>
          </div>
          <h3>In a shell</h3>
          <pre class="code">
            <code>{`export COSMOSGATE_TOKEN='…'`}</code>
          </pre>
          <CopyButton text={shell} label="Copy the shell line" />
          <h3>With the Cosmos DB SDK (Node.js)</h3>
          <pre class="code" data-testid="sdk-snippet">
            <code>{snippet}</code>
          </pre>
          <CopyButton text={snippet} label="Copy the SDK snippet" />
        </div>
      )}
    </section>
  );
}

export function KeysPage({
  me,
  refreshMe,
}: {
  me: MeView | undefined;
  refreshMe: () => Promise<MeView | undefined>;
}) {
  const keys = useResource<KeysView>("/api/me/keys");
  const { flash, say, fail } = useFlash();
  const [busy, setBusy] = useState(false);
  const [nickname, setNickname] = useState("");

  const rename = async (k: KeyView, name: string): Promise<boolean> => {
    if (name === "" || name.length > 64) {
      fail(new Error("Give the key a name of 1 to 64 characters."));
      return false;
    }
    if (name === k.nickname) return true;
    setBusy(true);
    say("Renaming…");
    try {
      await patch<KeyView>(`/api/me/keys/${seg(k.id)}`, { nickname: name });
      say(`Renamed “${k.nickname}” to “${name}”.`);
      keys.reload();
      return true;
    } catch (err) {
      fail(err);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const remove = async (k: KeyView) => {
    setBusy(true);
    say(`To remove “${k.nickname}”, touch one of your keys to confirm…`);
    try {
      const result = await withReauth(me, refreshMe, say, () =>
        removeKey(k.id, () => say(`Touch one of your keys to confirm removing “${k.nickname}”…`)),
      );
      if (result.signedOut) {
        forgetSession();
        setNotice(`Removed the key “${k.nickname}”. It was the key of this sign-in, so you are signed out.`);
        navigate("/signin");
        location.reload();
        return;
      }
      say(`Removed the key “${k.nickname}”.`);
      keys.reload();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  const adding = useFlash();
  const add = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    adding.say("Preparing…");
    try {
      const key = await withReauth(me, refreshMe, adding.say, () =>
        addKey(nickname.trim(), () =>
          adding.say("Touch the new security key, or confirm with the new passkey…"),
        ),
      );
      adding.say(`Added the key “${key.nickname}”.`);
      setNickname("");
      keys.reload();
    } catch (err) {
      adding.fail(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page
      name="keys"
      title="My keys"
      lead={
        me ? (
          <>
            Signed in as <strong>{me.name}</strong>
            {me.admin ? " (administrator)" : ""}
            {me.groups.length > 0 ? `, member of ${me.groups.join(", ")}` : ""}.
          </>
        ) : undefined
      }
    >
      <Messages flash={flash} />
      <Loaded resource={keys} what="your keys">
        {(data) => {
          const usable = data.keys.filter((k) => !k.suspended).length;
          return (
            <>
              {usable <= 1 && (
                <div class="notice warn" data-testid="single-key-warning">
                  <strong>You have only one {usable === 0 ? "usable " : ""}key.</strong> If you lose it or it
                  breaks, you cannot sign in. Add a second key below and keep it somewhere safe.
                </div>
              )}
              <h2 id="keys-heading">
                Your keys <span class="count">({data.keys.length})</span>
              </h2>
              <ul class="items" aria-labelledby="keys-heading">
                {data.keys.map((k, i) => (
                  <KeyRow key={k.id} k={k} index={i} onRename={rename} onRemove={remove} busy={busy} />
                ))}
              </ul>
            </>
          );
        }}
      </Loaded>
      <section class="card">
        <h2 id="add-heading">Add another key</h2>
        <form class="stack" noValidate onSubmit={add}>
          <Busy busy={busy}>
            <label for="new-nickname">
              Name of the new key <span class="optional">(optional)</span>
            </label>
            <input
              id="new-nickname"
              type="text"
              maxLength={64}
              autoComplete="off"
              placeholder="e.g. Backup key"
              value={nickname}
              onInput={(e) => setNickname(e.currentTarget.value)}
            />
            <button type="submit" class="primary">
              Add key
            </button>
          </Busy>
        </form>
        <Messages flash={adding.flash} name="add-key" />
      </section>
      <TokenPanel />
    </Page>
  );
}
