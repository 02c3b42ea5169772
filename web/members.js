// members.js - member search and a member's profile: contact details and
// channel states, the lists they are on, their consent log, and their
// conversation (or, where none exists, the texts to and from them).

import { api } from "./api.js";
import { el, fill, when, fullTime, memberName, debounce } from "./util.js";

let lastQuery = "";

export function mount(main, params) {
  let current = null;
  const view = { update: show, refresh: () => show(current),
    event() {}, unmount() {} };
  show(params);
  return view;

  function show(p) {
    current = p;
    fill(main);
    if (p.id) profile(main, p.id);
    else search(main);
  }
}

// The query parameter a search text means: a number, an address or a name.
function searchParams(text) {
  const p = new URLSearchParams();
  const t = text.trim();
  if (t.includes("@")) p.set("email", t);
  else if (/^[+\d][\d\s().-]{5,}$/.test(t)) p.set("phone", t);
  else if (t) p.set("name", t);
  p.set("limit", "50");
  return p;
}

function search(main) {
  const input = el("input", { type: "search", id: "member-search",
    "data-testid": "member-search", value: lastQuery,
    placeholder: "Name, phone number or email" });
  const results = el("ul", { class: "member-list", "aria-label": "Members" });
  const status = el("p", { class: "muted", role: "status" });
  let next = null;
  const more = el("button", { type: "button", class: "more", hidden: true },
    "Load more");
  let seq = 0;

  async function run(append) {
    const s = ++seq;
    const p = searchParams(input.value);
    if (append && next) p.set("after", next);
    let r;
    try {
      r = await api("GET", "/api/v1/members?" + p.toString());
    } catch (e) {
      if (s === seq) {
        if (!append) results.replaceChildren();
        status.textContent = e.message;
        more.hidden = true;
      }
      return;
    }
    if (s !== seq) return;
    if (!append) results.replaceChildren();
    for (const m of r.members || []) {
      results.appendChild(el("li", {},
        el("a", { href: "#/members/" + m.id, class: "member-row",
          "data-testid": "member-row", "data-id": m.id },
        el("span", { class: "who" }, memberName(m)),
        el("span", { class: "muted" },
          [m.phone, m.email].filter(Boolean).join(" · ")),
        m.channels && m.channels.sms && m.channels.sms.opted_out
          ? el("span", { class: "tag warn" }, "SMS opted out") : null)));
    }
    next = r.next_cursor || null;
    more.hidden = !next;
    status.textContent = results.children.length ? "" : "No member found.";
  }

  const form = el("form", { role: "search", class: "filters" },
    el("label", { for: "member-search" }, "Find a member"), input,
    el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    lastQuery = input.value;
    run(false);
  });
  const later = debounce(() => {
    lastQuery = input.value;
    run(false);
  }, 300);
  input.addEventListener("input", later);
  more.addEventListener("click", () => run(true));
  main.appendChild(el("section", { class: "members" },
    el("h1", {}, "Members"), form, status, results, more));
  run(false);
  input.focus();
}

async function profile(main, id) {
  const box = el("section", { class: "member-profile",
    "data-testid": "member-profile", "aria-live": "polite" },
  el("p", { class: "muted" }, "Loading…"));
  main.appendChild(box);
  let m;
  try {
    m = await api("GET", "/api/v1/members/" + id);
  } catch (e) {
    fill(box, el("a", { href: "#/members", class: "back" }, "← Members"),
      el("p", { class: "error", role: "alert" },
        e.status === 404 ? "No such member." : e.message));
    return;
  }
  const ch = m.channels || {};
  const sms = ch.sms || {};
  const email = ch.email || {};
  const attrs = Object.entries(m.attributes || {});
  const conv = el("div", { class: "member-conversation" },
    el("p", { class: "muted" }, "Loading…"));
  const consent = el("div", {}, el("p", { class: "muted" }, "Loading…"));
  fill(box,
    el("a", { href: "#/members", class: "back" }, "← Members"),
    el("h1", {}, memberName(m)),
    el("dl", { class: "facts" },
      fact("Phone", m.phone),
      fact("Email", m.email),
      fact("Name", [m.first_name, m.last_name].filter(Boolean).join(" ")),
      fact("ZIP", m.zip),
      fact("Time zone", m.time_zone),
      fact("Tags", (m.tags || []).join(", ")),
      attrs.map(([k, v]) => fact(k, typeof v === "string" ? v
        : JSON.stringify(v))),
      fact("SMS", sms.opted_out
        ? "opted out " + when(sms.opted_out_at) + " (" + sms.source + ")"
        : "can be texted"),
      fact("Email status", email.opted_out
        ? "opted out " + when(email.opted_out_at)
        : email.bouncing ? "bouncing" : "can be emailed"),
      fact("Member since", fullTime(m.created_at))),
    el("h2", {}, "Lists"),
    lists(m.subscriptions || []),
    el("h2", {}, "Conversation"), conv,
    el("h2", {}, "Consent log"), consent);
  loadConsent(consent, id);
  loadConversation(conv, m);
}

function fact(name, value) {
  if (value === null || value === undefined || value === "") return null;
  return [el("dt", {}, name), el("dd", {}, value)];
}

function lists(subs) {
  if (subs.length === 0) return el("p", { class: "muted" }, "On no list.");
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, el("th", {}, "List"),
      el("th", {}, "Channel"), el("th", {}, "Status"),
      el("th", {}, "Source"), el("th", {}, "Since"))),
    el("tbody", {}, subs.map((s) => el("tr", {},
      el("td", {}, s.list), el("td", {}, s.channel),
      el("td", {}, s.status), el("td", {}, s.source),
      el("td", { title: fullTime(s.created_at) }, when(s.created_at))))));
}

async function loadConsent(box, id) {
  let r;
  try {
    r = await api("GET", "/api/v1/members/" + id + "/consent?limit=200");
  } catch (e) {
    fill(box, el("p", { class: "error" }, e.message));
    return;
  }
  const evs = r.events || [];
  fill(box, el("table", { class: "grid", "data-testid": "consent-log" },
    el("caption", { class: "sr-only" }, "Consent log, oldest first"),
    el("thead", {}, el("tr", {}, el("th", {}, "When"),
      el("th", {}, "Channel"), el("th", {}, "Action"),
      el("th", {}, "Source"), el("th", {}, "List"),
      el("th", {}, "Detail"))),
    el("tbody", {}, evs.length === 0
      ? el("tr", {}, el("td", { colspan: 6 }, "Nothing recorded."))
      : evs.map((e) => el("tr", {},
        el("td", { title: fullTime(e.at) }, when(e.at)),
        el("td", {}, e.channel), el("td", {}, e.action.replace("_", " ")),
        el("td", {}, e.source), el("td", {}, e.list || ""),
        el("td", {}, e.detail || ""))))));
}

// The member's conversation; without conversations (or none yet), the
// texts to and from the member's number.
async function loadConversation(box, m) {
  try {
    const r = await api("GET", "/api/v1/conversations?status=all&member=" +
      m.id + "&limit=1");
    const c = (r.conversations || [])[0];
    if (c && c.member && c.member.id === m.id) {
      fill(box, el("p", {},
        el("a", { href: "#/conversations/" + c.id }, "Open the conversation"),
        " · " + c.status +
        (c.unread > 0 ? " · " + c.unread + " unread" : "") +
        " · last message " + when(c.last_message_at)),
      c.last_message ? el("blockquote", { class: "snippet" },
        c.last_message.body || "") : null);
      return;
    }
  } catch (e) {
    // fall through to the messages
  }
  if (!m.phone) {
    fill(box, el("p", { class: "muted" }, "No conversation."));
    return;
  }
  try {
    const r = await api("GET", "/api/v1/messages?direction=all&limit=50&to=" +
      encodeURIComponent(m.phone));
    const msgs = r.messages || [];
    if (msgs.length === 0) {
      fill(box, el("p", { class: "muted" }, "No texts yet."));
      return;
    }
    fill(box, el("ol", { class: "thread" }, msgs.map((x) => el("li",
      { class: "thread-item " + (x.direction === "out" ? "out" : "in") },
      el("p", { class: "body" }, x.body || ""),
      el("p", { class: "meta" }, when(x.created_at),
        x.direction === "out" ? " · " + x.status : "")))));
  } catch (e) {
    fill(box, el("p", { class: "muted" }, "No conversation."));
  }
}
