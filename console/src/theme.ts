/**
 * Light and dark themes: `prefers-color-scheme` by default, or the person's choice remembered in
 * localStorage, applied as `data-theme` on <html> (the style sheet keys its colors on it).
 */
export type Theme = "light" | "dark";

const KEY = "cosmosgate.theme";
const query = () => matchMedia("(prefers-color-scheme: dark)");

export function storedTheme(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : null;
  } catch {
    return null;
  }
}

export function systemTheme(): Theme {
  return query().matches ? "dark" : "light";
}

export function effectiveTheme(): Theme {
  return storedTheme() ?? systemTheme();
}

export function applyTheme(theme: Theme | null): void {
  const root = document.documentElement;
  if (theme === null) root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", theme);
}

export function chooseTheme(theme: Theme): void {
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    /* storage may be disabled: the choice lasts for this page */
  }
  applyTheme(theme);
}

/** Calls `onChange` when the system's scheme changes (matters only while no choice is stored). */
export function watchSystemTheme(onChange: () => void): () => void {
  const q = query();
  q.addEventListener("change", onChange);
  return () => q.removeEventListener("change", onChange);
}
