/**
 * The page frame: skip link, header with the main navigation (a disclosure menu on narrow screens),
 * the account controls and theme toggle, and the <main> landmark.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { MeView } from "../../../src/server/controlPlane/consoleApi";
import { chooseTheme, effectiveTheme, type Theme, watchSystemTheme } from "../theme";

interface NavItem {
  path: string;
  label: string;
  admin?: boolean;
}

const NAV: NavItem[] = [
  { path: "/keys", label: "My keys" },
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
      aria-pressed={dark}
      onClick={() => {
        const next: Theme = dark ? "light" : "dark";
        chooseTheme(next);
        setTheme(next);
      }}
    >
      <span aria-hidden="true">{dark ? "☾" : "☀"}</span> Dark theme
    </button>
  );
}

export function Shell({
  me,
  path,
  onSignOut,
  children,
}: {
  me: MeView | undefined;
  path: string;
  onSignOut: () => void;
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
          </button>
          <div id="site-nav" class={`site-nav${open ? " open" : ""}`}>
            {items.length > 0 && (
              <nav aria-label="Main">
                <ul>
                  {items.map((i) => (
                    <li key={i.path}>
                      <a href={`#${i.path}`} aria-current={section === i.path ? "page" : undefined}>
                        {i.label}
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
      <main id="main" ref={main} tabIndex={-1}>
        {children}
      </main>
      <footer class="foot">
        <p>cosmosgate console · identity-aware gateway for Azure Cosmos DB</p>
      </footer>
    </>
  );
}
