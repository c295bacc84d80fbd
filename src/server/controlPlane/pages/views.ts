import type { CredentialRecord, UserRecord } from "../../../store/ports.js";
import type { AuthorizeRequest } from "../oauth/authorizeRequest.js";
import { type Html, html, layout } from "./html.js";

const NOSCRIPT = html`<noscript><p class="error">This page needs JavaScript to talk to your security key.</p></noscript>`;

/**
 * `GET /enroll?invite=SECRET` (or `#invite=SECRET`): name the first key and register it. The page
 * script reads the invite from the address, so the server never echoes it.
 */
export function enrollPage(rpName: string): Html {
  return layout(
    { title: "Enroll your key", page: "enroll" },
    html`<h1>Enroll your security key</h1>
<p>You were invited to <strong>${rpName}</strong>. Give your key a name, then press <em>Enroll key</em> and touch your security key (or confirm with your device's passkey).</p>
${NOSCRIPT}
<form id="enroll-form" class="stack" novalidate>
<label for="nickname">Key name <span class="optional">(optional)</span></label>
<input id="nickname" name="nickname" type="text" maxlength="64" autocomplete="off" spellcheck="false" placeholder="e.g. YubiKey 5C NFC" aria-describedby="nickname-help">
<p id="nickname-help" class="help">A name helps you tell your keys apart later.</p>
<button type="submit" class="primary">Enroll key</button>
</form>`,
  );
}

/** `GET /signin`: username optional (discoverable credentials otherwise). */
export function signinPage(next: string): Html {
  return layout(
    { title: "Sign in", page: "signin" },
    html`<h1>Sign in</h1>
<p>Sign in with the security key or passkey you enrolled.</p>
${NOSCRIPT}
<form id="signin-form" class="stack" data-next="${next}" novalidate>
<label for="username">User name <span class="optional">(optional)</span></label>
<input id="username" name="username" type="text" maxlength="64" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" aria-describedby="username-help">
<p id="username-help" class="help">Leave it empty to pick your passkey from the list your browser shows.</p>
<button type="submit" class="primary">Sign in with your key</button>
</form>`,
  );
}

/** `GET /oauth/authorize`: the command line's authorization, then the passkey sign-in. */
export function authorizePage(gatewayHost: string, request: AuthorizeRequest, denyUrl: string): Html {
  const callback = new URL(request.redirectUri);
  return layout(
    { title: "Authorize the command line", page: "authorize" },
    html`<h1>Authorize the cosmosgate command line on ${gatewayHost}?</h1>
<p>The <code>cosmosgate</code> command line on this computer asks to act as you. Once you sign in with your key, it receives tokens for the gateway at <strong>${gatewayHost}</strong>.</p>
<p class="note">Continue only if you just ran <code>cosmosgate login</code> yourself.</p>
<dl class="facts">
<dt>Application</dt><dd>${request.clientId}</dd>
<dt>Returns to</dt><dd><code>${callback.origin}</code> (this computer)</dd>
</dl>
${NOSCRIPT}
<form id="authorize-form" class="stack" novalidate
 data-client-id="${request.clientId}"
 data-redirect-uri="${request.redirectUri}"
 data-code-challenge="${request.codeChallenge}"
 data-code-challenge-method="${request.codeChallengeMethod}"
 data-state="${request.state ?? ""}"
 data-has-state="${request.state !== undefined ? "1" : "0"}"
 data-deny-url="${denyUrl}">
<label for="username">User name <span class="optional">(optional)</span></label>
<input id="username" name="username" type="text" maxlength="64" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" aria-describedby="username-help">
<p id="username-help" class="help">Leave it empty to pick your passkey from the list your browser shows.</p>
<div class="row">
<button type="submit" class="primary">Sign in and authorize</button>
<button type="button" id="deny" class="secondary">Deny</button>
</div>
</form>`,
  );
}

/** A refusal shown as a page (for a bad authorization request: never redirect to an unchecked URI). */
export function errorPage(title: string, problem: string, advice: Html | string): Html {
  return layout(
    { title, page: "error" },
    html`<h1>${title}</h1>
<p class="error" role="alert">${problem}</p>
<p>${advice}</p>`,
  );
}

function when(ms: number | undefined): Html {
  if (ms === undefined) return html`Never`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace("T", " ")} UTC</time>`;
}

/** `GET /keys`: the signed-in user's keys, with rename, remove and "add another key". */
export function keysPage(user: UserRecord, keys: CredentialRecord[], currentId: string): Html {
  const usable = keys.filter((k) => k.suspendedAt === undefined).length;
  const items = keys.map((key, i) => {
    const headingId = `key-${i}-name`;
    return html`<li class="key" aria-labelledby="${headingId}" data-key-id="${key.id}" data-nickname="${key.nickname}">
<div class="key-head">
<h3 id="${headingId}" class="key-name">${key.nickname}</h3>
${key.id === currentId && html`<span class="badge current">Used for this sign-in</span>`}
${key.suspendedAt !== undefined && html`<span class="badge danger">Suspended</span>`}
</div>
<dl class="facts">
<dt>Type</dt><dd>${key.deviceBound ? "Hardware-bound key" : "Synced passkey"}</dd>
<dt>Last used</dt><dd>${when(key.lastUsedAt)}</dd>
<dt>Uses</dt><dd>${key.useCount}</dd>
<dt>Added</dt><dd>${when(key.createdAt)}</dd>
</dl>
<form class="rename-form row" novalidate>
<label for="rename-${i}" class="visually-hidden">New name for ${key.nickname}</label>
<input id="rename-${i}" name="nickname" type="text" maxlength="64" required autocomplete="off" value="${key.nickname}">
<button type="submit" class="secondary">Rename</button>
<button type="button" class="danger remove-button">Remove</button>
</form>
</li>`;
  });
  return layout(
    {
      title: "My keys",
      page: "keys",
      nav: html`<nav aria-label="Account"><span class="who">${user.name}${user.admin ? " (administrator)" : ""}</span><button type="button" id="signout" class="link">Sign out</button></nav>`,
    },
    html`<h1>My keys</h1>
<p>Signed in as <strong>${user.name}</strong>.</p>
${
  usable <= 1 &&
  html`<div class="warning" role="note"><strong>You have only one key.</strong> If you lose it or it breaks, you cannot sign in. Add a second key and keep it somewhere safe.</div>`
}
${NOSCRIPT}
<h2 id="keys-heading">Your keys <span class="count">(${keys.length})</span></h2>
<ul id="keys" class="keys" aria-labelledby="keys-heading">
${items}
</ul>
<section class="add" aria-labelledby="add-heading">
<h2 id="add-heading">Add another key</h2>
<form id="add-form" class="stack" novalidate>
<label for="new-nickname">Name of the new key <span class="optional">(optional)</span></label>
<input id="new-nickname" name="nickname" type="text" maxlength="64" autocomplete="off" placeholder="e.g. Backup key">
<button type="submit" class="primary">Add key</button>
</form>
</section>`,
  );
}
