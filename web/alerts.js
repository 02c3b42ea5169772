// alerts.js - action alerts (doc/alerts.md): the list with a progress bar
// per alert, kept live by "alert" events; an alert's page with its counts
// and pause / resume / cancel; the composer (a draft saved with
// POST/PATCH /api/v1/alerts, the preview of POST .../preview, then
// .../send or .../schedule).

import { api } from "./api.js";
import { el, fill, when, fullTime } from "./util.js";
import { segmentText } from "./smstext.js";

const FINISHED = ["sent", "delivered", "undelivered", "failed", "suppressed",
  "expired", "cancelled"];
const LIVE = ["scheduled", "sending", "paused"];

// {done, total} of an alert's counts ({sms: {...}, email: {...}}) and its
// audience_size ({sms: n|null, email: n|null}).
export function progressOf(counts, audience) {
  let done = 0;
  let total = 0;
  for (const ch of ["sms", "email"]) {
    const c = (counts && counts[ch]) || {};
    let d = 0;
    let all = 0;
    for (const [k, v] of Object.entries(c)) {
      if (typeof v !== "number") continue;
      if (FINISHED.includes(k)) d += v;
      if (FINISHED.includes(k) || k === "pending" || k === "deferred") {
        all += v;
      }
    }
    const aud = audience && typeof audience[ch] === "number" ? audience[ch] : 0;
    done += d;
    total += Math.max(all, aud);
  }
  return { done, total };
}

function progressBar(id, counts, audience) {
  const p = progressOf(counts, audience);
  const bar = el("progress", { class: "alert-progress",
    "data-testid": "alert-progress", "data-alert": id,
    max: Math.max(p.total, 1), value: p.done,
    "data-sent": p.done, "data-total": p.total,
    "aria-label": "Progress of alert " + id });
  return bar;
}

function setProgress(bar, counts, audience) {
  const p = progressOf(counts, audience);
  bar.max = Math.max(p.total, 1);
  bar.value = p.done;
  bar.dataset.sent = String(p.done);
  bar.dataset.total = String(p.total);
  const label = bar.nextElementSibling;
  if (label && label.classList.contains("progress-text")) {
    label.textContent = p.done + " / " + p.total;
  }
}

export function mount(main, params) {
  const st = { params, audience: new Map(), onAlert: null, show };
  show(params);
  return {
    update: show,
    refresh: () => show(st.params),
    event(type, d) {
      if (type === "alert" && st.onAlert) st.onAlert(d);
    },
    unmount() {},
  };

  function show(p) {
    st.params = p;
    st.onAlert = null;
    fill(main);
    if (p.compose) compose(main, st, null);
    else if (p.id) detail(main, st, p.id);
    else list(main, st);
  }
}

async function list(main, st) {
  const body = el("tbody", {});
  const status = el("p", { class: "muted", role: "status" }, "Loading…");
  main.appendChild(el("section", { class: "alerts" },
    el("div", { class: "title-row" }, el("h1", {}, "Alerts"),
      el("a", { href: "#/alerts/new", class: "button primary",
        "data-testid": "alert-new" }, "New alert")),
    status,
    el("table", { class: "grid alert-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Alert"),
        el("th", {}, "Status"), el("th", {}, "Progress"),
        el("th", {}, "Created"))),
      body)));
  let r;
  try {
    r = await api("GET", "/api/v1/alerts?limit=50");
  } catch (e) {
    status.textContent = e.message;
    return;
  }
  const bars = new Map();
  const states = new Map();
  for (const a of r.alerts || []) {
    const bar = progressBar(a.id, null, a.audience_size);
    const stCell = el("td", {}, a.status);
    bars.set(a.id, bar);
    states.set(a.id, stCell);
    st.audience.set(a.id, a.audience_size);
    body.appendChild(el("tr", { "data-testid": "alert-row", "data-id": a.id },
      el("td", {}, el("a", { href: "#/alerts/" + a.id }, a.name)),
      stCell,
      el("td", {}, bar, el("span", { class: "progress-text" }, "")),
      el("td", { title: fullTime(a.created_at) }, when(a.created_at))));
    if (a.status !== "draft") {
      // the list carries no counts: read them once, events keep them live
      api("GET", "/api/v1/alerts/" + a.id).then((full) => {
        st.audience.set(a.id, full.audience_size);
        setProgress(bar, full.counts, full.audience_size);
      }).catch(() => {});
    }
  }
  status.textContent = body.children.length ? ""
    : "No alerts yet: make one with New alert.";
  st.onAlert = (d) => {
    const bar = bars.get(d.id);
    if (!bar) return;
    setProgress(bar, d.counters, st.audience.get(d.id));
    if (d.status) states.get(d.id).textContent = d.status;
  };
}

async function detail(main, st, id) {
  const box = el("section", { class: "alert-detail" },
    el("p", { class: "muted" }, "Loading…"));
  main.appendChild(box);
  let a;
  try {
    a = await api("GET", "/api/v1/alerts/" + id);
  } catch (e) {
    fill(box, el("a", { href: "#/alerts", class: "back" }, "← Alerts"),
      el("p", { class: "error", role: "alert" },
        e.status === 404 ? "No such alert." : e.message));
    return;
  }
  if (a.status === "draft") {
    fill(main);
    compose(main, st, a);
    return;
  }
  const bar = progressBar(a.id, a.counts, a.audience_size);
  const text = el("span", { class: "progress-text" });
  const stLine = el("p", { class: "status" });
  const counts = el("div", {});
  const err = el("p", { class: "error", role: "alert", hidden: true });
  const actions = el("div", { class: "actions" });

  function paint(x) {
    fill(stLine, "Status: ", el("strong", {}, x.status),
      x.pause_reason ? " · " + x.pause_reason : "",
      x.scheduled_at ? " · scheduled for " + fullTime(x.scheduled_at) : "",
      x.urgent ? " · urgent" : "");
    setProgress(bar, x.counts, x.audience_size);
    fill(counts, countsTable(x.counts));
    fill(actions,
      x.status === "sending" || x.status === "scheduled"
        ? action("pause", "Pause") : null,
      x.status === "paused" ? action("resume", "Resume") : null,
      LIVE.includes(x.status) ? action("cancel", "Cancel") : null);
  }

  function action(what, label) {
    return el("button", { type: "button", "data-testid": "alert-" + what,
      onclick: async () => {
        err.hidden = true;
        try {
          await api("POST", "/api/v1/alerts/" + id + "/" + what, {});
          a = await api("GET", "/api/v1/alerts/" + id);
          paint(a);
        } catch (e) {
          err.textContent = e.message;
          err.hidden = false;
        }
      } }, label);
  }

  fill(box,
    el("a", { href: "#/alerts", class: "back" }, "← Alerts"),
    el("h1", {}, a.name),
    stLine,
    el("p", {}, bar, text),
    actions, err,
    a.sms_body ? [el("h2", {}, "SMS"), el("p", { class: "body" }, a.sms_body)]
      : null,
    a.email_subject ? [el("h2", {}, "Email"),
      el("p", {}, el("strong", {}, a.email_subject)),
      el("p", { class: "body" }, a.email_text || "")] : null,
    el("h2", {}, "Messages"), counts,
    el("p", { class: "muted" }, "Caused: " + ((a.caused || {}).optouts || 0) +
      " opt-outs, " + ((a.caused || {}).replies || 0) + " replies"));
  paint(a);
  st.onAlert = (d) => {
    if (d.id !== a.id) return;
    a.counts = d.counters || a.counts;
    if (d.status) a.status = d.status;
    paint(a);
  };
}

function countsTable(counts) {
  const chans = ["sms", "email"].filter((c) => counts && counts[c] &&
    Object.keys(counts[c]).length);
  if (chans.length === 0) return el("p", { class: "muted" }, "None yet.");
  const keys = [...new Set(chans.flatMap((c) => Object.keys(counts[c])))];
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, el("th", {}, ""),
      chans.map((c) => el("th", {}, c.toUpperCase())))),
    el("tbody", {}, keys.map((k) => el("tr", {}, el("th", {}, k),
      chans.map((c) => el("td", {}, String(counts[c][k] ?? 0)))))));
}

// The composer; 'a' is a draft being edited, or null for a new one.
async function compose(main, st, a) {
  let draftId = a ? a.id : null;
  const name = el("input", { id: "alert-name", "data-testid": "alert-name",
    required: true, value: a ? a.name : "" });
  const lists = el("select", { id: "alert-list", "data-testid": "alert-list",
    multiple: true, size: 4 });
  const sms = el("input", { type: "checkbox", id: "alert-ch-sms",
    checked: !a || (a.channels || []).includes("sms") });
  const mail = el("input", { type: "checkbox", id: "alert-ch-email",
    checked: !!a && (a.channels || []).includes("email") });
  const body = el("textarea", { id: "alert-body", "data-testid": "alert-body",
    rows: 4, value: a && a.sms_body ? a.sms_body : "" });
  const counter = el("p", { class: "counter", "data-testid": "alert-counter",
    "aria-live": "polite" });
  const subject = el("input", { id: "alert-subject",
    value: a && a.email_subject ? a.email_subject : "" });
  const etext = el("textarea", { id: "alert-email-text", rows: 5,
    value: a && a.email_text ? a.email_text : "" });
  const urgent = el("input", { type: "checkbox", id: "alert-urgent",
    checked: !!a && a.urgent });
  const when_ = el("input", { type: "datetime-local", id: "alert-when" });
  const preview = el("button", { type: "button",
    "data-testid": "alert-preview" }, "Save and preview");
  const send = el("button", { type: "submit", class: "primary",
    "data-testid": "alert-send" }, "Send now");
  const result = el("div", { class: "preview",
    "data-testid": "alert-preview-result", "aria-live": "polite" });
  const err = el("p", { class: "error", role: "alert", hidden: true });
  const emailBox = el("fieldset", { class: "email-fields" },
    el("legend", {}, "Email"),
    el("label", { for: "alert-subject" }, "Subject"), subject,
    el("label", { for: "alert-email-text" }, "Text"), etext);

  const count = () => {
    counter.textContent = segmentText(body.value) +
      " (before member fields are filled in)";
  };
  count();
  body.addEventListener("input", count);
  const showEmail = () => { emailBox.hidden = !mail.checked; };
  showEmail();
  mail.addEventListener("change", showEmail);
  when_.addEventListener("input", () => {
    send.textContent = when_.value ? "Schedule" : "Send now";
  });

  const form = el("form", { class: "composer", novalidate: true },
    el("a", { href: "#/alerts", class: "back" }, "← Alerts"),
    el("h1", {}, draftId ? "Draft alert " + draftId : "New alert"),
    el("div", { class: "field" },
      el("label", { for: "alert-name" }, "Name (staff only)"), name),
    el("div", { class: "field" },
      el("label", { for: "alert-list" }, "Lists"), lists),
    el("fieldset", { class: "inline" }, el("legend", {}, "Channels"),
      el("label", { class: "check" }, sms, " SMS"),
      el("label", { class: "check" }, mail, " Email")),
    el("div", { class: "field" },
      el("label", { for: "alert-body" }, "SMS text"), body, counter,
      el("p", { class: "hint" }, "Member fields: {{first_name|friend}}, " +
        "{{last_name}}, {{zip}}, {{attr.NAME}}. End with \"Reply STOP to " +
        "opt out\".")),
    emailBox,
    el("label", { class: "check" }, urgent,
      " Urgent: do not hold texts for the member's daytime"),
    el("div", { class: "field" },
      el("label", { for: "alert-when" }, "Send at (empty: now)"), when_),
    err,
    el("div", { class: "actions" }, preview, send),
    result);
  main.appendChild(form);

  try {
    const r = await api("GET", "/api/v1/lists");
    const chosen = new Set(((a && a.audience && a.audience.lists) || [])
      .map(String));
    for (const l of r.lists || []) {
      lists.appendChild(el("option", { value: String(l.id),
        selected: chosen.has(String(l.id)) },
      l.name + " (" + ((l.counts || {}).active || 0) + ")"));
    }
  } catch (e) {
    showErr(e.message);
  }

  function showErr(text) {
    err.textContent = text;
    err.hidden = !text;
  }

  function definition() {
    const channels = [];
    if (sms.checked) channels.push("sms");
    if (mail.checked) channels.push("email");
    const d = {
      name: name.value.trim(),
      lists: [...lists.selectedOptions].map((o) => Number(o.value)),
      channels,
      urgent: urgent.checked,
    };
    if (sms.checked) d.sms_body = body.value;
    if (mail.checked) {
      d.email_subject = subject.value;
      d.email_text = etext.value;
    }
    return d;
  }

  // Saves the form as the draft (made on first use); its id.
  async function save() {
    const d = definition();
    if (!d.name) throw new Error("Give the alert a name.");
    if (d.lists.length === 0) throw new Error("Choose at least one list.");
    if (draftId === null) {
      const r = await api("POST", "/api/v1/alerts", d);
      draftId = r.id;
      history.replaceState(null, "", "#/alerts/" + draftId);
    } else {
      await api("PATCH", "/api/v1/alerts/" + draftId, d);
    }
    return draftId;
  }

  preview.addEventListener("click", async () => {
    showErr("");
    preview.disabled = true;
    try {
      const id = await save();
      const p = await api("POST", "/api/v1/alerts/" + id + "/preview", {});
      fill(result, previewView(p));
    } catch (e) {
      showErr(e.message);
    } finally {
      preview.disabled = false;
    }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showErr("");
    send.disabled = true;
    try {
      const id = await save();
      if (when_.value) {
        await api("POST", "/api/v1/alerts/" + id + "/schedule",
          { at: new Date(when_.value).toISOString() });
      } else {
        await api("POST", "/api/v1/alerts/" + id + "/send", {});
      }
      // the hash may be this already (replaceState on the first save)
      if (location.hash === "#/alerts/" + id) st.show({ id });
      else location.hash = "#/alerts/" + id;
    } catch (e) {
      showErr(e.message);
    } finally {
      send.disabled = false;
    }
  });
  name.focus();
}

function previewView(p) {
  const aud = p.audience || {};
  const ex = aud.excluded || {};
  const smsp = p.sms;
  const out = [
    el("h2", {}, "Preview"),
    el("p", {}, "Reaches " + (aud.matched ?? 0) + " members: " +
      (aud.sms ?? 0) + " by SMS, " + (aud.email ?? 0) + " by email, " +
      (aud.both ?? 0) + " both. Left out: " +
      (ex.sms_opted_out ?? 0) + " opted out of SMS, " +
      (ex.email_opted_out ?? 0) + " of email, " +
      (ex.email_bouncing ?? 0) + " bouncing, " +
      (ex.unconfirmed ?? 0) + " unconfirmed."),
  ];
  if (smsp) {
    const enc = smsp.encoding === "ucs2" ? "UCS-2" : "GSM-7";
    out.push(el("p", {}, "SMS: " + smsp.segments +
      (smsp.segments === 1 ? " segment" : " segments") + " · " + enc +
      " · " + smsp.total_segments + " segments in all · about " +
      duration(smsp.duration_s) + " at the sender's rate" +
      (smsp.quiet_hours && smsp.quiet_hours.window
        ? " · quiet hours: " + smsp.quiet_hours.window : "")));
    const odd = Object.entries(smsp.ucs2_characters || {});
    if (odd.length) {
      out.push(el("p", { class: "warn" }, "Not GSM-7: " +
        odd.map(([c, r]) => c + (r ? " → " + r : "")).join(", ")));
    }
    for (const s of smsp.samples || []) {
      out.push(el("blockquote", { class: "sample" }, s.text));
    }
  }
  if (p.email) {
    for (const s of p.email.samples || []) {
      out.push(el("blockquote", { class: "sample" }, s.subject || "", "\n\n",
        s.text || ""));
    }
  }
  for (const f of p.missing_fields || []) {
    out.push(el("p", { class: "warn" }, typeof f === "string" ? f
      : (f.field || "") + ": " + (f.missing ?? "") + " members lack it"));
  }
  for (const w of p.warnings || []) {
    out.push(el("p", { class: "warn" }, w));
  }
  return out;
}

function duration(s) {
  if (typeof s !== "number") return "?";
  if (s < 60) return Math.round(s) + " s";
  if (s < 3600) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
