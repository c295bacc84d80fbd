/** Small building blocks shared by the pages: data loading, messages, badges, facts, copy, dialogs. */
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiError, get } from "../api";
import { messageOf } from "../webauthn";

// ------------------------------------------------------------ loading ----

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (data: T) => void;
}

/** GETs `path` (null: nothing yet) when it changes; `reload()` fetches again, keeping the old data meanwhile. */
export function useResource<T>(path: string | null): Resource<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({
    loading: path !== null,
  });
  const [tick, setTick] = useState(0);
  // A layout effect, so the request starts right after the render (an effect waits for a paint).
  useLayoutEffect(() => {
    if (path === null) return;
    let alive = true;
    setState((s) => ({ ...s, loading: true }));
    get<T>(path).then(
      (data) => alive && setState({ data, loading: false }),
      (error) => alive && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      alive = false;
    };
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const setData = useCallback((data: T) => setState({ data, loading: false }), []);
  return { data: state.data, error: state.error, loading: state.loading, reload, setData };
}

// ----------------------------------------------------------- messages ----

export interface Flash {
  kind: "status" | "error";
  text: string;
  code?: string;
}

/**
 * A status (polite) and an error (assertive) live region; both always present so updates are
 * announced. Test ids: `status` / `error` for the page's own, `NAME-status` / `NAME-error` for a
 * section's (`name`); the error carries the server's or the browser's code in `data-code`.
 */
export function Messages({ flash, name }: { flash: Flash | null; name?: string }) {
  const prefix = name ? `${name}-` : "";
  return (
    <div class="messages">
      <p role="status" class="status" data-testid={`${prefix}status`}>
        {flash?.kind === "status" ? flash.text : ""}
      </p>
      <p
        role="alert"
        class="error"
        data-testid={`${prefix}error`}
        data-code={flash?.kind === "error" ? flash.code : undefined}
      >
        {flash?.kind === "error" ? flash.text : ""}
      </p>
    </div>
  );
}

/** Local status/error state for a form: `say`, `fail(err)`, `clear`. */
export function useFlash() {
  const [flash, setFlash] = useState<Flash | null>(null);
  const say = useCallback((text: string) => setFlash({ kind: "status", text }), []);
  const fail = useCallback((err: unknown) => {
    const { code, message } = messageOf(err);
    setFlash({ kind: "error", text: message, code });
  }, []);
  const clear = useCallback(() => setFlash(null), []);
  return { flash, say, fail, clear };
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** Why a page could not load: "administrators only" for a 403, else the server's message and a retry. */
export function LoadError({ error, retry }: { error: unknown; retry?: () => void }) {
  if (error instanceof ApiError && error.status === 401) {
    return <p role="status">Your session ended. Opening the sign-in page…</p>;
  }
  if (error instanceof ApiError && error.status === 403) {
    return (
      <div class="notice danger" role="alert" data-testid="forbidden">
        <h2>Administrators only</h2>
        <p>
          This page is for the gateway's administrators. You can see your own keys, your own activity and the
          policy.
        </p>
        <p>
          <a href="#/keys">Go to my keys</a>
        </p>
      </div>
    );
  }
  const { message } = messageOf(error);
  return (
    <div class="notice danger" role="alert">
      <p>{message}</p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Renders `children(data)` once loaded; the loading text or the error otherwise. */
export function Loaded<T>({
  resource,
  what,
  children,
}: {
  resource: Resource<T>;
  what: string;
  children: (data: T) => ComponentChildren;
}) {
  if (resource.data !== undefined) return <>{children(resource.data)}</>;
  if (resource.error !== undefined) return <LoadError error={resource.error} retry={resource.reload} />;
  return <Loading what={what} />;
}

// -------------------------------------------------------------- pieces ----

export function Badge({
  tone = "neutral",
  children,
}: {
  tone?: "neutral" | "ok" | "danger" | "warn" | "accent";
  children: ComponentChildren;
}) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

const TIME_FULL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const TIME_SECONDS = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const TIME_OF_DAY = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const TIME_SHORT_DATE = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/**
 * A time: `<time datetime title>` with the exact ISO time, shown in local time. `compact`: the time
 * of day for today, else a short date (for table cells).
 */
export function Time({
  value,
  seconds,
  compact,
}: {
  value: string | number | null | undefined;
  seconds?: boolean;
  compact?: boolean;
}) {
  if (value === null || value === undefined || value === "") return <>Never</>;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return <>{String(value)}</>;
  const iso = d.toISOString();
  let text: string;
  if (compact) {
    text = (d.toDateString() === new Date().toDateString() ? TIME_OF_DAY : TIME_SHORT_DATE).format(d);
  } else {
    text = (seconds ? TIME_SECONDS : TIME_FULL).format(d);
  }
  return (
    <time dateTime={iso} title={iso}>
      {text}
    </time>
  );
}

/** A definition list of facts: [term, value] pairs (null values skipped). */
export function Facts({ items, class: cls }: { items: [string, ComponentChildren][]; class?: string }) {
  return (
    <dl class={`facts ${cls ?? ""}`}>
      {items
        .filter(([, v]) => v !== null && v !== undefined && v !== false)
        .map(([k, v]) => (
          <div class="fact" key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
    </dl>
  );
}

/** Copies `text`; announces the result in its own live region. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone("Copied.");
    } catch {
      setDone("Copying failed: select the text and copy it yourself.");
    }
    setTimeout(() => setDone(""), 4000);
  };
  return (
    <span class="copy">
      <button type="button" onClick={copy}>
        {label}
      </button>
      <span role="status" class="copy-status">
        {done}
      </span>
    </span>
  );
}

/**
 * A modal dialog on the native <dialog> (focus is kept inside, Escape closes, focus returns to the
 * opener). Open while mounted; `onClose` when it closes by Escape or a close button.
 */
export function Dialog({
  title,
  onClose,
  children,
  wide,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement as HTMLElement | null;
    if (!dialog.open) dialog.showModal();
    const onCancel = (e: Event) => {
      e.preventDefault();
      closeRef.current();
    };
    dialog.addEventListener("cancel", onCancel);
    return () => {
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      opener?.focus?.();
    };
  }, []);
  const onClick = (e: JSX.TargetedMouseEvent<HTMLDialogElement>) => {
    // A click on the backdrop (the dialog element itself, outside its content) closes it.
    if (e.target === ref.current) closeRef.current();
  };
  return (
    // biome-ignore lint/a11y/useKeyWithClickEvents: a backdrop click is a mouse shortcut; keyboards close with Escape or the Close button
    <dialog ref={ref} class={wide ? "wide" : ""} aria-labelledby="dialog-title" onClick={onClick}>
      <div class="dialog-body">
        <div class="dialog-head">
          <h2 id="dialog-title">{title}</h2>
          <button type="button" class="icon" onClick={() => closeRef.current()} aria-label="Close">
            ×
          </button>
        </div>
        {children}
      </div>
    </dialog>
  );
}

/** A page's root: `data-page`, the h1 (focused after navigation), an optional lead paragraph. */
export function Page({
  name,
  title,
  lead,
  actions,
  children,
}: {
  name: string;
  title: string;
  lead?: ComponentChildren;
  actions?: ComponentChildren;
  children: ComponentChildren;
}) {
  useEffect(() => {
    document.title = `${title} — cosmosgate console`;
  }, [title]);
  return (
    <div class="page" data-page={name}>
      <div class="page-head">
        <h1 tabIndex={-1} id="page-title">
          {title}
        </h1>
        {actions}
      </div>
      {lead && <p class="lead">{lead}</p>}
      {children}
    </div>
  );
}

/** Disables a form's controls and marks it busy while `busy`. */
export function Busy({ busy, children }: { busy: boolean; children: ComponentChildren }) {
  return (
    <fieldset class="plain" disabled={busy} aria-busy={busy}>
      {children}
    </fieldset>
  );
}
