/**
 * The pages' style sheet, served as /assets/style.css: system fonts only (no web fonts, no CDN),
 * light and dark by `prefers-color-scheme`, visible focus, readable from 320 px up.
 */
export const STYLE_SHEET = `:root {
  color-scheme: light dark;
  --bg: #f4f6f9;
  --card: #ffffff;
  --text: #1b1f24;
  --muted: #57606a;
  --border: #d0d7de;
  --accent: #0b5cad;
  --accent-text: #ffffff;
  --danger: #b42318;
  --warn-bg: #fff4d6;
  --warn-border: #e3b341;
  --ok: #1a7f37;
  --focus: #f59e0b;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117;
    --card: #161b22;
    --text: #e6edf3;
    --muted: #9da7b3;
    --border: #30363d;
    --accent: #4493f8;
    --accent-text: #0d1117;
    --danger: #ff7b72;
    --warn-bg: #2d2410;
    --warn-border: #9e6a03;
    --ok: #3fb950;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0;
  background: var(--bg);
  color: var(--text);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
.skip {
  position: absolute;
  left: -9999px;
}
.skip:focus {
  left: 1rem;
  top: 1rem;
  background: var(--card);
  padding: 0.5rem 1rem;
  z-index: 10;
}
.top {
  display: flex;
  align-items: center;
  justify-content: space-between;
  gap: 1rem;
  max-width: 44rem;
  margin: 0 auto;
  padding: 1rem;
}
.brand { font-weight: 700; letter-spacing: 0.01em; display: inline-flex; align-items: center; gap: 0.5rem; }
.logo {
  width: 1.25rem;
  height: 1.25rem;
  border-radius: 50%;
  background: radial-gradient(circle at 35% 35%, var(--accent) 0 35%, transparent 36%), conic-gradient(var(--accent), var(--ok), var(--accent));
  display: inline-block;
}
nav { display: flex; align-items: center; gap: 0.75rem; flex-wrap: wrap; }
.who { color: var(--muted); }
.card {
  max-width: 44rem;
  margin: 0 auto 2rem;
  padding: 1.5rem;
  background: var(--card);
  border: 1px solid var(--border);
  border-radius: 12px;
}
.card:focus { outline: none; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 0.75rem; }
h3 { font-size: 1.05rem; margin: 0; overflow-wrap: anywhere; }
p { margin: 0 0 1rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; overflow-wrap: anywhere; }
.stack { display: flex; flex-direction: column; gap: 0.4rem; align-items: flex-start; }
.stack input { width: 100%; max-width: 24rem; }
.row { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
label { font-weight: 600; }
.optional, .help, .count { color: var(--muted); font-weight: 400; }
.help { font-size: 0.9rem; margin: 0 0 0.5rem; }
input[type="text"] {
  font: inherit;
  color: inherit;
  background: var(--bg);
  border: 1px solid var(--border);
  border-radius: 8px;
  padding: 0.55rem 0.7rem;
  min-height: 44px;
}
button {
  font: inherit;
  min-height: 44px;
  padding: 0.5rem 1rem;
  border-radius: 8px;
  border: 1px solid var(--border);
  background: var(--card);
  color: var(--text);
  cursor: pointer;
}
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); font-weight: 600; }
button.danger { color: var(--danger); border-color: var(--danger); background: transparent; }
button.link { border: none; background: none; color: var(--accent); text-decoration: underline; padding: 0.5rem; }
button:disabled, input:disabled { opacity: 0.6; cursor: not-allowed; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.keys { list-style: none; margin: 0; padding: 0; display: grid; gap: 1rem; }
.key { border: 1px solid var(--border); border-radius: 10px; padding: 1rem; }
.key-head { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem; margin-bottom: 0.5rem; }
.badge { font-size: 0.8rem; border-radius: 999px; padding: 0.1rem 0.6rem; border: 1px solid var(--border); }
.badge.current { border-color: var(--ok); color: var(--ok); }
.badge.danger { border-color: var(--danger); color: var(--danger); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0 0 1rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.rename-form input { flex: 1 1 12rem; min-width: 0; }
.warning {
  background: var(--warn-bg);
  border: 1px solid var(--warn-border);
  border-radius: 8px;
  padding: 0.75rem 1rem;
  margin: 0 0 1rem;
}
.note { color: var(--muted); }
.messages { margin-top: 1rem; }
.status:empty { display: none; }
.status { color: var(--ok); font-weight: 600; }
.error { color: var(--danger); font-weight: 600; }
.visually-hidden {
  position: absolute;
  width: 1px;
  height: 1px;
  overflow: hidden;
  clip: rect(0 0 0 0);
  white-space: nowrap;
}
@media (max-width: 480px) {
  .card { border-radius: 0; border-left: none; border-right: none; padding: 1rem; }
  h1 { font-size: 1.3rem; }
}
`;
