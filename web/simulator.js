// simulator.js - the phone simulator (/ui/simulator): a supporter's phone
// that texts the daemon through the console sender's inbound webhook
// (POST /webhooks/SENDER/inbound, exactly the route a provider calls) and
// shows every text to and from its number by polling
// GET /api/v1/messages?to=NUMBER&direction=all&after=CURSOR each second.
// A bubble's data-direction is "out" for what the supporter typed and
// "in" for what the daemon sent to the phone.

import { api, auth, whoami, login } from "./api.js";
import { el, fill, when } from "./util.js";
import { segmentText } from "./smstext.js";

const $ = (id) => document.getElementById(id);
const NUMBER_KEY = "outreachd.sim.number";
let sim = null;     // {sender, from}
let number = "";
let cursor = 0;
let timer = null;
let polling = false;
const shown = new Set();

function randomNumber() {
  // +1 555 01xx xxxx: fictional North American numbers
  let n = "+155501";
  for (let i = 0; i < 5; i++) n += Math.floor(Math.random() * 10);
  return n;
}

function showError(text) {
  $("sim-error").textContent = text || "";
  $("sim-error").hidden = !text;
}

function setNumber(n) {
  number = n;
  cursor = 0;
  shown.clear();
  $("sim-messages").replaceChildren();
  localStorage.setItem(NUMBER_KEY, n);
  poll();
}

function bubble(m) {
  // the daemon's outbound text arrives "in" at the phone
  const dir = m.direction === "out" ? "in" : "out";
  return el("li", { class: "sim-msg " + dir, "data-testid": "sim-msg",
    "data-direction": dir, "data-id": m.id },
  el("p", { class: "body" }, m.body || ""),
  el("p", { class: "meta" }, when(m.created_at),
    dir === "in" ? " · " + m.status : ""));
}

async function poll() {
  if (polling || !number) return;
  polling = true;
  const asked = number;
  try {
    const r = await api("GET", "/api/v1/messages?direction=all&limit=200" +
      "&to=" + encodeURIComponent(asked) + "&after=" + cursor);
    if (asked !== number) return;
    for (const m of r.messages || []) {
      if (shown.has(m.id)) continue;
      shown.add(m.id);
      $("sim-messages").appendChild(bubble(m));
    }
    if (typeof r.next === "number" && r.next > cursor) cursor = r.next;
    const last = $("sim-messages").lastElementChild;
    if (last && (r.messages || []).length) last.scrollIntoView({ block: "nearest" });
    showError("");
  } catch (e) {
    if (e.status === 401) stop();
    else showError(e.message);
  } finally {
    polling = false;
  }
}

async function sendText(ev) {
  ev.preventDefault();
  const text = $("sim-text").value;
  const n = $("sim-number").value.trim();
  if (!text.trim()) return;
  if (!/^\+[1-9]\d{7,14}$/.test(n)) {
    showError("The number must be E.164: + and 8 to 15 digits, " +
      "e.g. +15550123456.");
    return;
  }
  if (n !== number) setNumber(n);
  $("sim-send").disabled = true;
  try {
    const r = await fetch("/webhooks/" + encodeURIComponent(sim.sender) +
      "/inbound", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ From: n, Body: text }),
      credentials: "same-origin",
    });
    if (!r.ok) {
      let msg = "HTTP " + r.status;
      try {
        msg = (await r.json()).error.message;
      } catch (e) {
        // keep the status
      }
      showError("The daemon refused the text: " + msg);
      return;
    }
    $("sim-text").value = "";
    count();
    showError("");
    await poll();
  } catch (e) {
    showError("The daemon cannot be reached.");
  } finally {
    $("sim-send").disabled = false;
    $("sim-text").focus();
  }
}

function count() {
  $("sim-counter").textContent = $("sim-text").value
    ? segmentText($("sim-text").value) : "";
}

function stop() {
  clearInterval(timer);
  timer = null;
  showLogin("Your session ended; log in again.");
}

function showLogin(message) {
  $("sim-phone").hidden = true;
  const token = el("input", { type: "password", id: "sim-login-token",
    "data-testid": "login-token", autocomplete: "off" });
  const email = el("input", { type: "email", id: "sim-login-email",
    "data-testid": "login-email", autocomplete: "username" });
  const pass = el("input", { type: "password", id: "sim-login-password",
    "data-testid": "login-password", autocomplete: "current-password" });
  const err = el("p", { class: "error", role: "alert",
    "data-testid": "login-error" }, message || "");
  err.hidden = !message;
  const form = el("form", { class: "login" },
    el("p", {}, "The simulator shows the daemon's answers through the " +
      "staff API: log in first."),
    el("div", { class: "field" }, el("label", { for: "sim-login-email" },
      "Email"), email),
    el("div", { class: "field" }, el("label", { for: "sim-login-password" },
      "Password"), pass),
    el("div", { class: "field" }, el("label", { for: "sim-login-token" },
      "or API token"), token),
    err,
    el("button", { type: "submit", class: "primary",
      "data-testid": "login-submit" }, "Log in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const creds = token.value.trim() ? { token: token.value.trim() }
      : { email: email.value.trim(), password: pass.value };
    try {
      await login(creds);
      start();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
  fill($("sim-login"), form);
  $("sim-login").hidden = false;
}

async function start() {
  try {
    sim = await api("GET", "/api/v1/simulator", undefined,
      { quiet401: true });
  } catch (e) {
    if (e.status === 401) showLogin();
    else showError(e.message);
    return;
  }
  $("sim-login").hidden = true;
  if (!sim.enabled) {
    $("sim-phone").hidden = true;
    $("sim-intro").textContent = "The simulator needs a [sender] with " +
      "provider = console in the configuration.";
    return;
  }
  $("sim-phone").hidden = false;
  fill($("sim-to"), "You are texting ", el("strong", {}, sim.from || "?"),
    " (sender ", sim.sender, "). Try the keyword of a list, HELP, STOP " +
    "or START.");
  const n = localStorage.getItem(NUMBER_KEY) || randomNumber();
  $("sim-number").value = n;
  setNumber(n);
  clearInterval(timer);
  timer = setInterval(poll, 1000);
  $("sim-text").focus();
}

$("sim-form").addEventListener("submit", sendText);
$("sim-text").addEventListener("input", count);
$("sim-number").addEventListener("change", () => {
  const n = $("sim-number").value.trim();
  if (/^\+[1-9]\d{7,14}$/.test(n)) setNumber(n);
});
$("sim-new").addEventListener("click", () => {
  const n = randomNumber();
  $("sim-number").value = n;
  setNumber(n);
});

(async () => {
  if (await whoami()) start();
  else showLogin();
})();

export { auth };
