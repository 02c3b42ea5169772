// app.js - the staff page: log-in, the hash router (#/login, #/inbox,
// #/conversations/ID, #/members, #/members/ID, #/alerts, #/alerts/new,
// #/alerts/ID), the navigation bar and the live event stream that the
// open view listens to. Each view module exports mount(main, params)
// returning {event(type, data), refresh(), unmount()}.

import { api, auth, whoami, login, logout, liveEvents,
  setUnauthorizedHandler } from "./api.js";
import { el, fill, notice } from "./util.js";
import * as inbox from "./inbox.js";
import * as members from "./members.js";
import * as alerts from "./alerts.js";

const main = document.getElementById("main");
let view = null;          // the mounted view
let stopEvents = null;    // closes the EventSource
let pollTimer = null;     // bearer mode: refresh instead of events
let wanted = "#/inbox";   // where to go after logging in

function route() {
  const h = location.hash || "";
  let m;
  if (h === "#/login") return { name: "login" };
  if ((m = h.match(/^#\/conversations\/(\d+)$/))) {
    return { name: "inbox", mod: inbox, params: { id: Number(m[1]) } };
  }
  if (h === "#/inbox" || h === "#/" || h === "") {
    return { name: "inbox", mod: inbox, params: {} };
  }
  if ((m = h.match(/^#\/members\/(\d+)$/))) {
    return { name: "members", mod: members, params: { id: Number(m[1]) } };
  }
  if (h === "#/members") return { name: "members", mod: members, params: {} };
  if (h === "#/alerts/new") {
    return { name: "alerts", mod: alerts, params: { compose: true } };
  }
  if ((m = h.match(/^#\/alerts\/(\d+)$/))) {
    return { name: "alerts", mod: alerts, params: { id: Number(m[1]) } };
  }
  if (h === "#/alerts") return { name: "alerts", mod: alerts, params: {} };
  return null;
}

function unmount() {
  if (view && view.unmount) view.unmount();
  view = null;
}

async function render() {
  const r = route();
  if (r === null) {
    // "#main" (the skip link) and unknown routes are no page change
    if (!location.hash.startsWith("#/")) return;
    location.replace("#/inbox");
    return;
  }
  if (r.name === "login") {
    unmount();
    showLogin();
    return;
  }
  if (!auth.staff) {
    wanted = location.hash || "#/inbox";
    location.replace("#/login");
    return;
  }
  for (const n of ["inbox", "members", "alerts"]) {
    const a = document.getElementById("nav-" + n);
    if (n === r.name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // the inbox keeps its list when only the open thread changes
  if (view && view.name === r.name && view.update) {
    view.update(r.params);
    return;
  }
  unmount();
  fill(main);
  view = r.mod.mount(main, r.params);
  view.name = r.name;
}

function showShell(on) {
  document.getElementById("top").hidden = !on;
  if (on) {
    document.getElementById("me-name").textContent =
      auth.staff.name || auth.staff.email || "staff";
  }
}

function showLogin(message) {
  showShell(false);
  stopLive();
  const err = el("p", { class: "error", "data-testid": "login-error",
    role: "alert", id: "login-error" }, message || "");
  err.hidden = !message;
  const email = el("input", { type: "email", id: "login-email",
    "data-testid": "login-email", autocomplete: "username" });
  const pass = el("input", { type: "password", id: "login-password",
    "data-testid": "login-password", autocomplete: "current-password" });
  const token = el("input", { type: "password", id: "login-token",
    "data-testid": "login-token", autocomplete: "off",
    spellcheck: "false" });
  const submit = el("button", { type: "submit", "data-testid": "login-submit",
    class: "primary" }, "Log in");
  const form = el("form", { class: "login", novalidate: true },
    el("h1", {}, "outreachd"),
    el("p", { class: "hint" }, "Log in with your email and password, " +
      "or with an API token."),
    el("div", { class: "field" },
      el("label", { for: "login-email" }, "Email"), email),
    el("div", { class: "field" },
      el("label", { for: "login-password" }, "Password"), pass),
    el("p", { class: "or" }, "or"),
    el("div", { class: "field" },
      el("label", { for: "login-token" }, "API token"), token),
    err, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    let creds;
    if (token.value.trim()) creds = { token: token.value.trim() };
    else if (email.value.trim() && pass.value) {
      creds = { email: email.value.trim(), password: pass.value };
    } else {
      err.textContent = "Give your email and password, or a token.";
      err.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      await login(creds);
      pass.value = "";
      token.value = "";
      started();
    } catch (e) {
      err.textContent = e.status === 429
        ? "Too many attempts; wait a minute and try again."
        : e.message || "Log-in failed.";
      err.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  fill(main, form);
  (email.value ? pass : email).focus();
}

// Logged in: the shell, live events, then the page asked for.
function started() {
  showShell(true);
  startLive();
  const to = wanted && wanted !== "#/login" ? wanted : "#/inbox";
  wanted = "#/inbox";
  if (location.hash === to) render();
  else location.hash = to;
}

function startLive() {
  stopLive();
  const live = document.getElementById("live");
  stopEvents = liveEvents({
    open: () => { live.hidden = false; },
    error: () => { live.hidden = true; },
    message: (d) => view && view.event && view.event("message", d),
    conversation: (d) => view && view.event && view.event("conversation", d),
    alert: (d) => view && view.event && view.event("alert", d),
    reset: () => view && view.refresh && view.refresh(),
  });
  if (stopEvents === null) {
    // no event stream (token without a session): refresh now and then
    pollTimer = setInterval(() => view && view.refresh && view.refresh(),
      5000);
  }
}

function stopLive() {
  if (stopEvents) stopEvents();
  stopEvents = null;
  clearInterval(pollTimer);
  pollTimer = null;
  document.getElementById("live").hidden = true;
}

document.getElementById("logout").addEventListener("click", async () => {
  await logout();
  unmount();
  wanted = "#/inbox";
  if (location.hash === "#/login") showLogin();
  else location.hash = "#/login";
});

document.getElementById("skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});

setUnauthorizedHandler(() => {
  // the session expired or was revoked
  auth.staff = null;
  unmount();
  wanted = location.hash && location.hash !== "#/login"
    ? location.hash : "#/inbox";
  showLogin("Your session ended; log in again.");
  history.replaceState(null, "", "#/login");
});

window.addEventListener("hashchange", render);

(async () => {
  if (await whoami()) {
    wanted = location.hash && location.hash !== "#/login"
      ? location.hash : "#/inbox";
    started();
  } else {
    if (location.hash && location.hash !== "#/login") wanted = location.hash;
    if (location.hash === "#/login") showLogin();
    else location.replace("#/login");
  }
})();

// for the console and tests
export { api, auth, notice };
