/**
 * The console: who is signed in (GET /api/me, fetched once, in parallel with the page's own data so
 * the first paint waits for nothing), the hash route, and the page it names.
 */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { MeView } from "../../src/server/controlPlane/consoleApi";
import { ApiError, forgetSession, loadMe, onSignedOut, post } from "./api";
import { useApprovalFeed } from "./approvals";
import { Shell } from "./components/Shell";
import { LoadError, Page } from "./components/ui";
import { setNotice } from "./notice";
import { AgentsPage } from "./pages/Agents";
import { ApprovalPage, ApprovalsPage } from "./pages/Approvals";
import { AuditPage } from "./pages/Audit";
import { KeysPage } from "./pages/Keys";
import { KeyUsagePage } from "./pages/KeyUsage";
import { PeoplePage } from "./pages/People";
import { PolicyPage } from "./pages/Policy";
import { SignInPage } from "./pages/SignIn";
import { StatusPage } from "./pages/Status";
import { currentRoute, navigate, type Route, useRoute } from "./router";

export type Auth =
  | { state: "loading" }
  | { state: "out" }
  | { state: "in"; me: MeView }
  | { state: "error"; error: unknown };

/** Where to come back after signing in: the route that was asked for. */
function nextOf(route: Route): string {
  const qs = route.query.toString();
  return `${route.path}${qs ? `?${qs}` : ""}`;
}

/** A path segment decoded (as it is when malformed). */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function goToSignIn(): void {
  const route = currentRoute();
  if (route.path === "/signin") return;
  navigate("/signin", route.path === "/" ? undefined : { next: nextOf(route) });
}

export function App() {
  const route = useRoute();
  const [auth, setAuth] = useState<Auth>({ state: "loading" });

  const refreshMe = useCallback(async (): Promise<MeView | undefined> => {
    try {
      const me = await loadMe();
      setAuth({ state: "in", me });
      return me;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) setAuth({ state: "out" });
      else setAuth({ state: "error", error });
      return undefined;
    }
  }, []);

  // A layout effect runs right after the first render, not after a paint: the request starts at once.
  useLayoutEffect(() => {
    onSignedOut(() => {
      setAuth({ state: "out" });
      goToSignIn();
    });
    void refreshMe();
  }, [refreshMe]);

  // "/" goes to the person's keys (or sign-in).
  useEffect(() => {
    if (route.path === "/") location.replace(auth.state === "out" ? "#/signin" : "#/keys");
    else if (auth.state === "out" && route.path !== "/signin") goToSignIn();
  }, [route.path, auth.state]);

  // After a navigation, focus the new page's heading (not on the first load: the skip link comes first).
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById("page-title")?.focus();
  }, [route.path]);

  const signOut = useCallback(async () => {
    try {
      await post("/auth/logout", {});
    } catch {
      /* signed out either way: the cookie is cleared or already gone */
    }
    forgetSession();
    setNotice("You are signed out.");
    setAuth({ state: "out" });
    navigate("/signin");
  }, []);

  const me = auth.state === "in" ? auth.me : undefined;
  // Approvals waiting for this person, live on every page (the navigation's count, announcements).
  const approvals = useApprovalFeed(me);
  let page: ComponentChildren;
  if (auth.state === "error" && route.path !== "/signin") {
    page = (
      <Page name="error" title="The console cannot start">
        <LoadError error={auth.error} retry={() => void refreshMe()} />
      </Page>
    );
  } else if (route.path === "/signin") {
    page = (
      <SignInPage
        me={me}
        next={route.query.get("next") ?? "/keys"}
        onSignedIn={async () => {
          await refreshMe();
        }}
      />
    );
  } else if (auth.state === "out" || route.path === "/") {
    page = null;
  } else {
    switch (route.path) {
      case "/keys":
        page = <KeysPage me={me} refreshMe={refreshMe} />;
        break;
      case "/agents":
        page = <AgentsPage me={me} />;
        break;
      case "/approvals":
        page = <ApprovalsPage me={me} feed={approvals} />;
        break;
      case "/people":
        page = <PeoplePage me={me} />;
        break;
      case "/audit":
        page = <AuditPage me={me} query={route.query} />;
        break;
      case "/audit/keys":
        page = <KeyUsagePage me={me} query={route.query} />;
        break;
      case "/policy":
        page = <PolicyPage me={me} />;
        break;
      case "/status":
        page = <StatusPage />;
        break;
      default:
        page = route.path.startsWith("/approvals/") ? (
          <ApprovalPage
            key={route.path}
            id={decoded(route.path.slice("/approvals/".length))}
            me={me}
            feed={approvals}
          />
        ) : (
          <Page name="not-found" title="Page not found">
            <p>
              There is no page at <code>{route.path}</code>. <a href="#/keys">Go to my keys</a>.
            </p>
          </Page>
        );
    }
  }

  return (
    <Shell me={me} path={route.path} onSignOut={signOut} approvals={approvals}>
      {page}
    </Shell>
  );
}
