/**
 * The page frame: skip link, header with the main navigation (a disclosure menu on narrow screens;
 * the count of approvals waiting for this person next to "Approvals"), the account controls and
 * theme toggle, the announcement of new approval requests, and the <main> landmark.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { MeView } from "../../../src/server/controlPlane/consoleApi";
import type { ApprovalFeed } from "../approvals";
import { href } from "../router";
import { chooseTheme, effectiveTheme, type Theme, watchSystemTheme } from "../theme";

interface NavItem {
  path: string;
  label: string;
  admin?: boolean;
}

const NAV: NavItem[] = [
  { path: "/keys", label: "My keys" },
  { path: "/agents", label: "Agents" },
  { path: "/approvals", label: "Approvals" },
  { path: "/people", label: "People", admin: true },
  { path: "/audit", label: "Audit" },
  { path: "/policy", label: "Policy" },
  { path: "/status", label: "Status", admin: true },
];

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(effectiveTheme);
  useEffect(() => watchSystemTheme(() => setTheme(effectiveTheme())), []);
  const dark = theme === "dark";
  return (
    <button
      type="button"
      class="theme-toggle"
      title="Dark theme"
      aria-pressed={dark}
      onClick={() => {
        const next: Theme = dark ? "light" : "dark";
        chooseTheme(next);
        setTheme(next);
      }}
    >
      <span aria-hidden="true">{dark ? "☾" : "☀"}</span> <span class="theme-label">Dark theme</span>
    </button>
  );
}

/** The count of approvals waiting next to "Approvals" (its text is part of the link's name). */
function WaitingCount({ n }: { n: number }) {
  if (n === 0) return null;
  return (
    <span class="nav-count" data-testid="approvals-badge">
      <span aria-hidden="true">{n}</span>
      <span class="visually-hidden">, {n} waiting for you</span>
    </span>
  );
}

/**
 * New approval requests, announced politely wherever the person is (the region is always there so
 * that screen readers announce its changes), with a link to the request.
 */
function Announcer({ feed, path }: { feed: ApprovalFeed | undefined; path: string }) {
  const news = feed?.news ?? null;
  const dismiss = feed?.dismiss;
  const target = news?.id ? `/approvals/${news.id}` : "/approvals";
  // A notice, not a to-do (the navigation's count is): gone once the person moves to another page.
  const latest = useRef(dismiss);
  latest.current = dismiss;
  useEffect(() => {
    if (path) latest.current?.();
  }, [path]);
  return (
    <div class={`announcer${news ? " shown" : ""}`}>
      <p role="status" data-testid="approvals-live">
        {news && (
          <>
            {news.text} <a href={href(target)}>{news.id ? "Review it" : "Review them"}</a>
          </>
        )}
      </p>
      {news && (
        <button type="button" class="link" onClick={dismiss}>
          Dismiss<span class="visually-hidden"> the announcement</span>
        </button>
      )}
    </div>
  );
}

export function Shell({
  me,
  path,
  onSignOut,
  approvals,
  children,
}: {
  me: MeView | undefined;
  path: string;
  onSignOut: () => void;
  approvals?: ApprovalFeed;
  children: ComponentChildren;
}) {
  const [open, setOpen] = useState(false);
  const toggle = useRef<HTMLButtonElement>(null);
  const main = useRef<HTMLElement>(null);
  // Following a link closes the menu.
  useEffect(() => setOpen(false), [path]);
  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        setOpen(false);
        toggle.current?.focus();
      }
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, [open]);
  const items = me ? NAV.filter((i) => !i.admin || me.admin) : [];
  const section = `/${path.split("/")[1] ?? ""}`;
  return (
    <>
      {/* biome-ignore lint/a11y/useValidAnchor: a skip link is a link by convention; with hash routing it moves focus itself */}
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          // Hash routing: a plain #main link would change the route.
          e.preventDefault();
          main.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <div class="top-inner">
          <a class="brand" href={me ? "#/keys" : "#/signin"}>
            <span class="logo" aria-hidden="true" />
            cosmosgate <span class="brand-sub">console</span>
          </a>
          <button
            type="button"
            class="menu-toggle"
            ref={toggle}
            aria-expanded={open}
            aria-controls="site-nav"
            onClick={() => setOpen(!open)}
          >
            <span aria-hidden="true">☰</span> Menu
            {(approvals?.waiting ?? 0) > 0 && (
              <span class="nav-count">
                <span aria-hidden="true">{approvals?.waiting}</span>
                <span class="visually-hidden">, {approvals?.waiting} approvals waiting for you</span>
              </span>
            )}
          </button>
          <div id="site-nav" class={`site-nav${open ? " open" : ""}`}>
            {items.length > 0 && (
              <nav aria-label="Main">
                <ul>
                  {items.map((i) => (
                    <li key={i.path}>
                      <a href={`#${i.path}`} aria-current={section === i.path ? "page" : undefined}>
                        {i.label}
                        {i.path === "/approvals" && <WaitingCount n={approvals?.waiting ?? 0} />}
                      </a>
                    </li>
                  ))}
                </ul>
              </nav>
            )}
            <div class="account">
              {me && (
                <span class="who" data-testid="who">
                  {me.name}
                  {me.admin ? " · administrator" : ""}
                </span>
              )}
              <ThemeToggle />
              {me && (
                <button type="button" class="link" onClick={onSignOut}>
                  Sign out
                </button>
              )}
            </div>
          </div>
        </div>
      </header>
      {me && <Announcer feed={approvals} path={path} />}
      <main id="main" ref={main} tabIndex={-1}>
        {children}
      </main>
      <footer class="foot">
        <p>cosmosgate console · identity-aware gateway for Azure Cosmos DB</p>
      </footer>
    </>
  );
}
