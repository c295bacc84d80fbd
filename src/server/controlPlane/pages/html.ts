/** Markup that is already safe: produced by {@link html}, never from untrusted text. */
export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
};

/**
 * Escapes text for HTML element content and double- or single-quoted attribute values.
 *
 * @example
 * ```ts
 * escapeHtml('<b title="x">'); // "&lt;b title=&quot;x&quot;&gt;"
 * ```
 */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === undefined || value === null || value === false) return "";
  return escapeHtml(String(value));
}

/**
 * A tagged template that escapes every interpolated value (text, numbers, arrays of either) unless
 * it is {@link Html} itself — so a page cannot forget to escape. `undefined`, `null` and `false`
 * render as nothing, for conditional parts.
 *
 * @example
 * ```ts
 * html`<p>Signed in as <strong>${user.name}</strong></p>${admin && html`<p>Administrator</p>`}`;
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** The Content-Security-Policy of every page: same-origin scripts and styles only, no framing. */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Options of {@link layout}. */
export interface LayoutOptions {
  title: string;
  /** `data-page` of the body: which part of /assets/pages.js runs. */
  page: string;
  /** Shown at the top right, e.g. a "Sign out" button. */
  nav?: Html;
}

/**
 * The page frame: no inline script or style (the CSP forbids them), the SimpleWebAuthn bundle and
 * the page logic from /assets/, a skip link, a main landmark and live regions for status and errors.
 *
 * @example
 * ```ts
 * reply.type("text/html; charset=utf-8").send(layout({ title: "Sign in", page: "signin" }, html`<h1>Sign in</h1>`).text);
 * ```
 */
export function layout(options: LayoutOptions, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>${options.title} · cosmosgate</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/webauthn.js" defer></script>
<script src="/assets/pages.js" defer></script>
</head>
<body data-page="${options.page}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<span class="brand" aria-label="cosmosgate"><span class="logo" aria-hidden="true"></span>cosmosgate</span>
${options.nav}
</header>
<main id="main" class="card" tabindex="-1">
${body}
<div class="messages">
<p id="status" class="status" role="status" aria-live="polite"></p>
<p id="error" class="error" role="alert" hidden></p>
</div>
</main>
</body>
</html>
`;
}
