/** A message carried to the next page (e.g. "you were signed out") across a navigation or reload. */
const KEY = "cosmosgate.console.notice";

export function setNotice(text: string): void {
  try {
    sessionStorage.setItem(KEY, text);
  } catch {
    /* storage may be disabled */
  }
}

export function takeNotice(): string | null {
  try {
    const text = sessionStorage.getItem(KEY);
    if (text !== null) sessionStorage.removeItem(KEY);
    return text;
  } catch {
    return null;
  }
}
