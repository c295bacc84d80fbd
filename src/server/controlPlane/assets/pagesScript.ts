/**
 * The pages' logic, served as /assets/pages.js (the CSP allows no inline script). Plain ES2017 for
 * any current browser, no build step; it drives SimpleWebAuthn's browser bundle
 * (`window.SimpleWebAuthnBrowser`, /assets/webauthn.js) and the JSON API, and dispatches on the
 * body's `data-page`. Every text it shows goes through `textContent`, never `innerHTML`.
 */
export const PAGES_SCRIPT = `(function () {
  "use strict";
  var statusEl = document.getElementById("status");
  var errorEl = document.getElementById("error");
  var UNSUPPORTED =
    "This browser cannot use security keys or passkeys here (WebAuthn is unavailable). Use a current browser, on the gateway's https address or on http://localhost.";

  function say(text) {
    if (errorEl) {
      errorEl.hidden = true;
      errorEl.textContent = "";
    }
    if (statusEl) statusEl.textContent = text;
  }

  function fail(text) {
    if (statusEl) statusEl.textContent = "";
    if (errorEl) {
      errorEl.textContent = text;
      errorEl.hidden = false;
    }
  }

  function sentence(text) {
    text = String(text || "");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function flash(text) {
    try {
      sessionStorage.setItem("cosmosgate.flash", text);
    } catch (e) {
      /* storage may be disabled */
    }
  }

  function showFlash() {
    try {
      var text = sessionStorage.getItem("cosmosgate.flash");
      if (text) {
        sessionStorage.removeItem("cosmosgate.flash");
        say(text);
      }
    } catch (e) {
      /* storage may be disabled */
    }
  }

  // The session's CSRF token (GET /api/me), sent as x-cosmosgate-csrf on writes under /api/ and
  // /auth/ (the sign-in ceremony excepted). "My keys" is always signed in: it reads the token before
  // its first write. The other pages are usually signed out and need none; should a session cookie
  // be there after all, the write is refused with ERR_CSRF and sent again once with the token.
  var csrfToken = "";
  var signedInPage = document.body.getAttribute("data-page") === "keys";

  function needsCsrf(path) {
    return (path.indexOf("/api/") === 0 || path.indexOf("/auth/") === 0) && path.indexOf("/auth/webauthn/login/") !== 0;
  }

  function loadCsrf() {
    return fetch("/api/me", { credentials: "same-origin", headers: { accept: "application/json" } }).then(
      function (res) {
        if (!res.ok) return "";
        return res.json().then(function (me) {
          csrfToken = (me && me.csrfToken) || "";
          return csrfToken;
        });
      },
      function () {
        return "";
      }
    );
  }

  function send(method, path, body, token) {
    var headers = { "content-type": "application/json", accept: "application/json" };
    if (token && needsCsrf(path)) headers["x-cosmosgate-csrf"] = token;
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        return { res: res, data: data };
      });
    }, function () {
      throw new Error("The gateway cannot be reached. Check your connection and try again.");
    });
  }

  function api(method, path, body) {
    var first = signedInPage && !csrfToken && needsCsrf(path) ? loadCsrf() : Promise.resolve(csrfToken);
    return first
      .then(function (token) {
        return send(method, path, body, token);
      })
      .then(function (r) {
        if (r.res.status === 403 && r.data && r.data.error === "ERR_CSRF") {
          // The token is missing or stale (a session began or changed since): read it, send once more.
          return loadCsrf().then(function (token) {
            return send(method, path, body, token);
          });
        }
        return r;
      })
      .then(function (r) {
        var res = r.res;
        var data = r.data;
        if (!res.ok) {
          var message = data && (data.message || data.error_description);
          var err = new Error(sentence(message || "The gateway answered with status " + res.status + ". Try again."));
          err.status = res.status;
          err.apiCode = data && data.error;
          throw err;
        }
        return data;
      });
  }

  function supported() {
    return Boolean(window.PublicKeyCredential && window.SimpleWebAuthnBrowser);
  }

  function keyMessage(kind, err, timedOut) {
    var name = (err && err.name) || "";
    var code = (err && err.code) || "";
    if (code === "ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED" || name === "InvalidStateError") {
      return "This key is already registered with your account. Use a different key.";
    }
    if (timedOut) {
      return "The key did not answer in time. Try again, and touch your key when it blinks.";
    }
    if (name === "NotAllowedError" || name === "AbortError" || code === "ERROR_CEREMONY_ABORTED") {
      return kind === "register"
        ? "Enrollment was cancelled, or no suitable key answered. Try again and touch your key when it blinks."
        : "Sign-in was cancelled, or this device has no key for this site. Try again with the key you enrolled.";
    }
    if (name === "SecurityError") {
      return "The browser refused to use a key on this address. Open the gateway at its own address (" + location.origin + " must match the configured origin).";
    }
    return "Your key could not complete the request: " + ((err && err.message) || name || "unknown error") + ".";
  }

  // Runs the browser side of a ceremony; turns the browser's errors into sentences for people.
  function ceremony(kind, options) {
    var lib = window.SimpleWebAuthnBrowser;
    var started = Date.now();
    var timeout = (options && options.timeout) || 300000;
    var run =
      kind === "register"
        ? lib.startRegistration({ optionsJSON: options })
        : lib.startAuthentication({ optionsJSON: options });
    return run.catch(function (err) {
      throw new Error(keyMessage(kind, err, Date.now() - started >= timeout - 2000));
    });
  }

  function busy(form, on, text) {
    var buttons = form.querySelectorAll("button, input");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
    if (on && text) say(text);
  }

  function value(id) {
    var el = document.getElementById(id);
    return el ? el.value.trim() : "";
  }

  function inviteFromAddress() {
    var fromQuery = new URLSearchParams(location.search).get("invite");
    if (fromQuery) return fromQuery;
    return new URLSearchParams(location.hash.replace(/^#/, "")).get("invite");
  }

  function signIn(username) {
    return api("POST", "/auth/webauthn/login/options", username ? { username: username } : {})
      .then(function (options) {
        say("Touch your security key, or confirm with your passkey…");
        return ceremony("authenticate", options);
      });
  }

  function enroll() {
    var form = document.getElementById("enroll-form");
    if (!form) return;
    var invite = inviteFromAddress();
    if (!invite) {
      busy(form, true);
      fail("This enrollment link is incomplete: it has no invite code. Open the link exactly as the administrator sent it.");
      return;
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!supported()) return fail(UNSUPPORTED);
      var nickname = value("nickname");
      busy(form, true, "Preparing…");
      api("POST", "/auth/webauthn/register/options", { invite: invite })
        .then(function (options) {
          say("Touch your security key, or confirm with your passkey…");
          return ceremony("register", options);
        })
        .then(function (response) {
          say("Checking your key…");
          var body = { response: response };
          if (nickname) body.nickname = nickname;
          return api("POST", "/auth/webauthn/register/verify", body);
        })
        .then(function (key) {
          flash("Your key “" + key.nickname + "” is enrolled, and you are signed in.");
          say("Your key is enrolled. Opening your keys…");
          location.assign("/keys");
        })
        .catch(function (err) {
          busy(form, false);
          fail(err.message);
        });
    });
  }

  function signin() {
    var form = document.getElementById("signin-form");
    if (!form) return;
    showFlash();
    var next = form.getAttribute("data-next") || "/keys";
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!supported()) return fail(UNSUPPORTED);
      busy(form, true, "Preparing…");
      signIn(value("username"))
        .then(function (response) {
          say("Checking your key…");
          return api("POST", "/auth/webauthn/login/verify", { response: response });
        })
        .then(function () {
          say("Signed in.");
          location.assign(next);
        })
        .catch(function (err) {
          busy(form, false);
          fail(err.message);
        });
    });
  }

  function authorize() {
    var form = document.getElementById("authorize-form");
    if (!form) return;
    var d = form.dataset;
    var request = {
      client_id: d.clientId,
      redirect_uri: d.redirectUri,
      code_challenge: d.codeChallenge,
      code_challenge_method: d.codeChallengeMethod
    };
    if (d.hasState === "1") request.state = d.state;
    document.getElementById("deny").addEventListener("click", function () {
      say("Denied. Returning to the command line…");
      location.assign(d.denyUrl);
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!supported()) return fail(UNSUPPORTED);
      busy(form, true, "Preparing…");
      signIn(value("username"))
        .then(function (response) {
          say("Checking your key…");
          return api("POST", "/oauth/authorize/approve", { authorize: request, response: response });
        })
        .then(function (result) {
          say("Authorized. Returning to the command line — you can close this window when it says so.");
          location.assign(result.redirect_to);
        })
        .catch(function (err) {
          busy(form, false);
          fail(err.message);
        });
    });
  }

  function keys() {
    showFlash();
    var onFailure = function (form) {
      return function (err) {
        if (err.status === 401) {
          location.assign("/signin?next=%2Fkeys");
          return;
        }
        if (err.status === 403 && err.apiCode === "reauthentication_required") {
          // Adding a key needs a tap within the last 5 minutes: sign in again, then back here.
          flash("To add a key, confirm it is you: sign in again with your key.");
          location.assign("/signin?next=%2Fkeys");
          return;
        }
        if (form) busy(form, false);
        fail(err.message);
      };
    };
    var signout = document.getElementById("signout");
    if (signout) {
      signout.addEventListener("click", function () {
        api("POST", "/auth/logout", {})
          .then(function () {
            location.assign("/signin");
          })
          .catch(onFailure(null));
      });
    }
    var items = document.querySelectorAll("li.key");
    Array.prototype.forEach.call(items, function (item) {
      var id = item.getAttribute("data-key-id");
      var current = item.getAttribute("data-nickname");
      var form = item.querySelector("form.rename-form");
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var input = form.querySelector("input[name=nickname]");
        var nickname = input.value.trim();
        if (!nickname) {
          fail("Give the key a name of 1–64 characters.");
          input.focus();
          return;
        }
        busy(form, true, "Renaming…");
        api("PATCH", "/api/me/keys/" + encodeURIComponent(id), { nickname: nickname })
          .then(function () {
            flash("Renamed “" + current + "” to “" + nickname + "”.");
            location.reload();
          })
          .catch(onFailure(form));
      });
      item.querySelector("button.remove-button").addEventListener("click", function () {
        if (!window.confirm("Remove the key “" + current + "”? You will no longer be able to sign in with it.")) return;
        if (!supported()) return fail(UNSUPPORTED);
        busy(form, true, "Preparing…");
        // Removing a key is confirmed by a tap on one of your keys (any of them).
        api("POST", "/api/me/keys/" + encodeURIComponent(id) + "/remove/options", {})
          .then(function (options) {
            say("Touch one of your keys to confirm removing “" + current + "”…");
            return ceremony("authenticate", options);
          })
          .then(function (response) {
            say("Removing…");
            return api("DELETE", "/api/me/keys/" + encodeURIComponent(id), { response: response });
          })
          .then(function (result) {
            if (result && result.signedOut) {
              location.assign("/signin");
              return;
            }
            flash("Removed the key “" + current + "”.");
            location.reload();
          })
          .catch(onFailure(form));
      });
    });
    var add = document.getElementById("add-form");
    if (add) {
      add.addEventListener("submit", function (ev) {
        ev.preventDefault();
        if (!supported()) return fail(UNSUPPORTED);
        var nickname = value("new-nickname");
        busy(add, true, "Preparing…");
        api("POST", "/auth/webauthn/register/options", {})
          .then(function (options) {
            say("Touch the new security key, or confirm with your passkey…");
            return ceremony("register", options);
          })
          .then(function (response) {
            say("Checking the new key…");
            var body = { response: response };
            if (nickname) body.nickname = nickname;
            return api("POST", "/auth/webauthn/register/verify", body);
          })
          .then(function (key) {
            flash("Added the key “" + key.nickname + "”.");
            location.reload();
          })
          .catch(onFailure(add));
      });
    }
  }

  var pages = { enroll: enroll, signin: signin, authorize: authorize, keys: keys };
  var run = pages[document.body.getAttribute("data-page")];
  if (run) run();
})();
`;
