// util.js - DOM helpers for the staff page. Text from the daemon (member
// names, message bodies, notes) only ever reaches the DOM as textContent
// or an attribute value: el() never parses HTML, and no file here uses
// innerHTML.

// el("button", {type: "button", "data-testid": "x", onclick: fn}, "text", child)
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      e.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      e.className = v;
    } else if (k === "value") {
      e.value = v;
    } else if (v === true) {
      e.setAttribute(k, "");
    } else {
      e.setAttribute(k, String(v));
    }
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else if (c instanceof Node) e.appendChild(c);
    else e.appendChild(document.createTextNode(String(c)));
  }
}

// Replaces the children of e.
export function fill(e, ...children) {
  e.replaceChildren();
  append(e, children);
  return e;
}

// "3 min ago" style for recent times, else a short local date and time.
export function when(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  if (isNaN(t)) return "";
  const s = (Date.now() - t.getTime()) / 1000;
  if (s >= 0 && s < 60) return "just now";
  if (s >= 0 && s < 3600) return Math.floor(s / 60) + " min ago";
  if (s >= 0 && s < 86400 && t.getDate() === new Date().getDate()) {
    return t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return t.toLocaleString([], { month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit" });
}

// The full time, for title attributes.
export function fullTime(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  return isNaN(t) ? "" : t.toLocaleString();
}

// "Ana Lopez" or the phone number, or "member N".
export function memberName(m) {
  if (!m) return "unknown";
  const n = [m.first_name, m.last_name].filter(Boolean).join(" ");
  return n || m.phone || m.email || "member " + m.id;
}

// Calls fn at most once per ms (the last call wins).
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// A status line that screen readers announce.
export function notice(text, kind) {
  return el("p", { class: "notice " + (kind || "info"), role: "status" }, text);
}
