/**
 * Hash routing (`#/keys`, `#/audit?key=ID`): the server serves one index.html and needs no fallback.
 */
import { useEffect, useState } from "preact/hooks";

export interface Route {
  /** "/keys", "/audit/keys", ... */
  path: string;
  query: URLSearchParams;
}

/** Reads the route from the address; `#/` and an empty hash are "/". */
export function currentRoute(hash = location.hash): Route {
  const raw = hash.replace(/^#/, "");
  const [path = "/", search = ""] = raw.split("?", 2);
  return {
    path: path.startsWith("/") ? path.replace(/\/+$/, "") || "/" : "/",
    query: new URLSearchParams(search),
  };
}

/** Goes to a route: `navigate("/audit", {key: "abc"})`. */
export function navigate(path: string, query?: Record<string, string | undefined> | URLSearchParams): void {
  location.hash = href(path, query).slice(1);
}

/** The `href` of a route. */
export function href(path: string, query?: Record<string, string | undefined> | URLSearchParams): string {
  const params = new URLSearchParams();
  if (query instanceof URLSearchParams) {
    query.forEach((v, k) => {
      params.set(k, v);
    });
  } else if (query !== undefined) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") params.set(k, v);
  }
  const qs = params.toString();
  return `#${path}${qs ? `?${qs}` : ""}`;
}

/** The current route, updated on `hashchange`. Hashes that are not routes ("#main") are ignored. */
export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => {
      if (location.hash === "" || location.hash.startsWith("#/")) setRoute(currentRoute());
    };
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
