/** Sign in with a passkey (discoverable credential) or by user name, with a sentence for each failure. */
import { useEffect, useState } from "preact/hooks";
import type { MeView } from "../../../src/server/controlPlane/consoleApi";
import { Busy, Messages, Page, useFlash } from "../components/ui";
import { takeNotice } from "../notice";
import { navigate } from "../router";
import { signIn } from "../webauthn";

/** Only console routes are followed after sign-in (never another site). */
function safeNext(next: string): string {
  return /^\/[a-z]/.test(next) && !next.startsWith("/signin") ? next : "/keys";
}

export function SignInPage({
  me,
  next,
  onSignedIn,
}: {
  me: MeView | undefined;
  next: string;
  onSignedIn: () => Promise<void>;
}) {
  const { flash, say, fail } = useFlash();
  const [busy, setBusy] = useState(false);
  const [username, setUsername] = useState("");

  useEffect(() => {
    const notice = takeNotice();
    if (notice) say(notice);
  }, [say]);

  const run = async (name: string) => {
    setBusy(true);
    say("Preparing…");
    try {
      await signIn(name, () => say("Touch your security key, or confirm with your passkey…"));
      say("Signed in. Opening the console…");
      await onSignedIn();
      const target = safeNext(next);
      const [path, qs] = target.split("?", 2);
      navigate(path, new URLSearchParams(qs ?? ""));
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page name="signin" title="Sign in">
      <p class="lead">Sign in with the security key or passkey you enrolled.</p>
      {me && (
        <p class="notice" data-testid="already-signed-in">
          You are signed in as <strong>{me.name}</strong>. <a href="#/keys">Go to my keys</a>, or sign in as
          someone else below.
        </p>
      )}
      <div class="signin-grid">
        <section class="card">
          <h2 id="passkey-heading">With a passkey</h2>
          <p>Your browser shows the passkeys and security keys it has for this site; pick yours.</p>
          <button type="button" class="primary" disabled={busy} onClick={() => run("")}>
            Sign in with a passkey
          </button>
        </section>
        <section class="card">
          <h2 id="username-heading">With your user name</h2>
          <form
            class="stack"
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              const name = username.trim();
              if (name === "") {
                fail(new Error("Type your user name, or use “Sign in with a passkey”."));
                document.getElementById("username")?.focus();
                return;
              }
              void run(name);
            }}
          >
            <Busy busy={busy}>
              <label for="username">User name</label>
              <input
                id="username"
                name="username"
                type="text"
                maxLength={256}
                autoComplete="username"
                autoCapitalize="none"
                spellcheck={false}
                value={username}
                onInput={(e) => setUsername(e.currentTarget.value)}
                aria-describedby="username-help"
              />
              <p id="username-help" class="help">
                For a security key that does not store your name (most hardware keys).
              </p>
              <button type="submit" class="primary">
                Sign in
              </button>
            </Busy>
          </form>
        </section>
      </div>
      <Messages flash={flash} />
      <p class="help">
        New here? Open the enrollment link your administrator sent you to register your first key.
      </p>
    </Page>
  );
}
