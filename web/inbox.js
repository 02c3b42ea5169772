// inbox.js - the conversation list (filters, search, unread badges) and
// the thread of one conversation (messages both ways with their delivery
// states, internal notes, the reply box with its segment counter, assign,
// close and reopen, saved replies). Live: a "message" or "conversation"
// event reloads the list, and the thread when it is the open one.

import { api, auth } from "./api.js";
import { el, fill, when, fullTime, memberName, debounce } from "./util.js";
import { segmentText, segmentRoom } from "./smstext.js";

// kept across visits to the page
const filters = { status: "open", assigned: "", unread: false, stale: false,
  q: "" };
let staffCache = null;
let savedCache = null;

async function staffList() {
  if (staffCache === null) {
    try {
      const r = await api("GET", "/api/v1/staff");
      staffCache = Array.isArray(r) ? r : (r && r.staff) || [];
    } catch (e) {
      staffCache = [];
    }
  }
  return staffCache.filter((s) => !s.disabled);
}

async function savedReplies(force) {
  if (savedCache === null || force) {
    try {
      const r = await api("GET", "/api/v1/saved-replies");
      savedCache = Array.isArray(r) ? r : (r && r.saved_replies) || [];
    } catch (e) {
      savedCache = [];
    }
  }
  return savedCache;
}

export function mount(main, params) {
  const st = { id: null, next: null, thread: null, composerFor: null };

  // ---- the list ----------------------------------------------------
  const status = el("select", { id: "conv-filter-status",
    "data-testid": "conv-filter-status" },
  el("option", { value: "open" }, "Open"),
  el("option", { value: "closed" }, "Closed"),
  el("option", { value: "all" }, "All"));
  status.value = filters.status;
  const assigned = el("select", { id: "conv-filter-assigned",
    "data-testid": "conv-filter-assigned" },
  el("option", { value: "" }, "Anyone"),
  el("option", { value: "me" }, "Assigned to me"),
  el("option", { value: "none" }, "Unassigned"));
  assigned.value = filters.assigned;
  const unread = el("input", { type: "checkbox", id: "conv-filter-unread",
    "data-testid": "conv-filter-unread" });
  unread.checked = filters.unread;
  const stale = el("input", { type: "checkbox", id: "conv-filter-stale",
    "data-testid": "conv-filter-stale" });
  stale.checked = filters.stale;
  const search = el("input", { type: "search", id: "conv-search",
    "data-testid": "conv-search", placeholder: "Search messages",
    value: filters.q });
  const list = el("ul", { class: "conv-list", "data-testid": "conv-list",
    "aria-label": "Conversations" });
  const more = el("button", { type: "button", class: "more", hidden: true },
    "Load more");
  const listStatus = el("p", { class: "muted", role: "status" });

  const filterForm = el("form", { class: "filters", role: "search" },
    el("label", { for: "conv-filter-status" }, "Status"), status,
    el("label", { for: "conv-filter-assigned" }, "Assigned"), assigned,
    el("label", { class: "check" }, unread, " Unread only"),
    el("label", { class: "check", title: "Waiting too long for a staff " +
      "reply" }, stale, " Waiting"),
    el("label", { for: "conv-search", class: "sr-only" }, "Search"), search,
    el("button", { type: "submit" }, "Search"));
  filterForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    filters.q = search.value.trim();
    loadList();
  });
  for (const [e, k] of [[status, "status"], [assigned, "assigned"]]) {
    e.addEventListener("change", () => {
      filters[k] = e.value;
      loadList();
    });
  }
  unread.addEventListener("change", () => {
    filters.unread = unread.checked;
    loadList();
  });
  stale.addEventListener("change", () => {
    filters.stale = stale.checked;
    loadList();
  });
  search.addEventListener("search", () => {
    filters.q = search.value.trim();
    loadList();
  });
  more.addEventListener("click", () => loadList(true));

  staffList().then((staff) => {
    for (const s of staff) {
      if (auth.staff && s.id === auth.staff.id) continue;
      assigned.appendChild(el("option", { value: String(s.id) }, s.name));
    }
    assigned.value = filters.assigned;
  });

  const listPane = el("section", { class: "list-pane",
    "aria-label": "Conversation list" },
  el("h1", {}, "Inbox"), filterForm, listStatus, list, more);

  // ---- the thread --------------------------------------------------
  const threadPane = el("section", { class: "thread-pane",
    "aria-label": "Conversation" });
  const layout = el("div", { class: "inbox" }, listPane, threadPane);
  main.appendChild(layout);

  function query(after) {
    const p = new URLSearchParams();
    p.set("status", filters.status);
    if (filters.assigned) p.set("assigned", filters.assigned);
    if (filters.unread) p.set("unread", "1");
    if (filters.stale) p.set("stale", "1");
    if (filters.q) p.set("q", filters.q);
    if (after) p.set("after", after);
    p.set("limit", "50");
    return "/api/v1/conversations?" + p.toString();
  }

  let listSeq = 0;
  async function loadList(append) {
    const seq = ++listSeq;
    let r;
    try {
      r = await api("GET", query(append ? st.next : null));
    } catch (e) {
      if (seq === listSeq) listStatus.textContent = e.message;
      return;
    }
    if (seq !== listSeq) return; // a newer load is under way
    const convs = (r && r.conversations) || [];
    st.next = r ? r.next : null;
    if (append) {
      for (const c of convs) list.appendChild(row(c));
    } else {
      list.replaceChildren(...keep(list, convs.map((c) => ({
        key: "c" + c.id, sig: JSON.stringify(c), make: () => row(c) }))));
    }
    more.hidden = !st.next;
    listStatus.textContent = list.children.length === 0
      ? (filters.q ? "No conversation matches." : "No conversations.")
      : "";
  }

  function row(c) {
    const m = c.member || {};
    const last = c.last_message || {};
    const a = el("a", { href: "#/conversations/" + c.id,
      class: "conv-row" + (c.unread > 0 ? " unread" : ""),
      "data-testid": "conv-row", "data-id": c.id,
      "aria-current": c.id === st.id ? "true" : null },
    el("span", { class: "who" }, memberName(m)),
    el("time", { class: "at", datetime: c.last_message_at || "",
      title: fullTime(c.last_message_at) }, when(c.last_message_at)),
    el("span", { class: "snippet" },
      last.direction === "out" ? "You: " : "", last.body || ""),
    el("span", { class: "tags" },
      c.unread > 0
        ? el("span", { class: "badge", "data-testid": "conv-unread",
          "aria-label": c.unread + " unread" }, String(c.unread))
        : null,
      c.status === "closed" ? el("span", { class: "tag" }, "closed") : null,
      c.stale ? el("span", { class: "tag warn" }, "waiting") : null,
      c.assigned ? el("span", { class: "tag" }, c.assigned.name) : null));
    return el("li", {}, a);
  }

  // The nodes for 'want' ({key, sig, make}), reusing the children of
  // parent whose key and sig are the same: a live reload leaves what did
  // not change untouched (no flicker, focus and selection kept).
  function keep(parent, want) {
    const have = new Map();
    for (const n of parent.children) have.set(n.dataset.key, n);
    return want.map((w) => {
      const old = have.get(w.key);
      if (old && old.dataset.sig === w.sig) return old;
      const n = w.make();
      n.dataset.key = w.key;
      n.dataset.sig = w.sig;
      return n;
    });
  }

  // ---- one conversation -------------------------------------------
  function placeholder() {
    fill(threadPane, el("p", { class: "muted empty" },
      "Choose a conversation."));
    layout.classList.remove("has-thread");
  }

  let threadSeq = 0;
  async function loadThread(markRead) {
    const id = st.id;
    const seq = ++threadSeq;
    let c;
    try {
      c = await api("GET", "/api/v1/conversations/" + id);
    } catch (e) {
      if (seq !== threadSeq) return;
      fill(threadPane, el("p", { class: "error", role: "alert" },
        e.status === 404 ? "No such conversation." : e.message));
      return;
    }
    if (seq !== threadSeq || st.id !== id) return;
    st.thread = c;
    renderThread(c);
    if (markRead && c.unread > 0) {
      try {
        await api("POST", "/api/v1/conversations/" + id + "/read", {});
        loadList();
      } catch (e) {
        // read state is a convenience
      }
    }
  }

  const parts = {};
  function renderThread(c) {
    layout.classList.add("has-thread");
    if (st.composerFor !== c.id) {
      buildComposer(c);
      st.composerFor = c.id;
    }
    fill(parts.head, threadHead(c));
    const items = c.items || [];
    parts.items.replaceChildren(...keep(parts.items, items.map((it) => ({
      key: it.kind + it.id, sig: JSON.stringify(it), make: () => item(it) }))));
    parts.closed.hidden = c.status !== "closed";
    const last = parts.items.lastElementChild;
    if (last) last.scrollIntoView({ block: "nearest" });
  }

  function threadHead(c) {
    const m = c.member || {};
    const sel = el("select", { id: "assign-select",
      "data-testid": "assign-select", "aria-label": "Assigned to" },
    el("option", { value: "" }, "Unassigned"));
    staffList().then((staff) => {
      const ids = new Set();
      for (const s of staff) {
        ids.add(s.id);
        sel.appendChild(el("option", { value: String(s.id) },
          s.name + (auth.staff && s.id === auth.staff.id ? " (me)" : "")));
      }
      if (c.assigned && !ids.has(c.assigned.id)) {
        sel.appendChild(el("option", { value: String(c.assigned.id) },
          c.assigned.name));
      }
      sel.value = c.assigned ? String(c.assigned.id) : "";
    });
    sel.addEventListener("change", () => act("assign",
      { staff_id: sel.value ? Number(sel.value) : null }));
    const toggle = c.status === "closed"
      ? el("button", { type: "button", "data-testid": "reopen-button",
        onclick: () => act("reopen", {}) }, "Reopen")
      : el("button", { type: "button", "data-testid": "close-button",
        onclick: () => act("close", {}) }, "Close");
    return [
      el("a", { href: "#/inbox", class: "back" }, "← Inbox"),
      el("h2", {}, el("a", { href: "#/members/" + m.id }, memberName(m))),
      el("p", { class: "muted" }, m.phone || "",
        c.sender ? " · via " + c.sender : "",
        c.alert_id ? [" · answers ", el("a", { href: "#/alerts/" +
          c.alert_id }, "alert " + c.alert_id)] : null,
        " · " + c.status),
      el("div", { class: "actions" },
        el("label", { for: "assign-select" }, "Assigned to"), sel, toggle),
    ];
  }

  function item(it) {
    if (it.kind === "note") {
      return el("li", { class: "thread-item note", "data-testid": "thread-item",
        "data-kind": "note" },
      el("p", { class: "body", "data-testid": "thread-body" }, it.body),
      el("p", { class: "meta" }, "Note by ",
        it.staff ? it.staff.name : "staff", " · ",
        el("time", { datetime: it.created_at, title: fullTime(it.created_at) },
          when(it.created_at))));
    }
    const out = it.direction === "out";
    return el("li", { class: "thread-item " + (out ? "out" : "in"),
      "data-testid": "thread-item", "data-kind": "message",
      "data-direction": it.direction, "data-status": it.status },
    el("p", { class: "body", "data-testid": "thread-body" }, it.body),
    el("p", { class: "meta" },
      el("time", { datetime: it.created_at, title: fullTime(it.created_at) },
        when(it.created_at)),
      out ? el("span", { class: "state st-" + it.status }, " · " + it.status)
        : null,
      out && it.staff ? " · " + it.staff.name : "",
      it.error_text ? el("span", { class: "err" }, " · " + it.error_text)
        : null));
  }

  // The reply box and the notes form, made once per conversation so a
  // live reload of the thread keeps what is being typed.
  function buildComposer(c) {
    parts.head = el("header", { class: "thread-head" });
    parts.items = el("ol", { class: "thread", "data-testid": "thread",
      "aria-live": "polite", "aria-label": "Messages" });
    parts.closed = el("p", { class: "muted" },
      "This conversation is closed; a reply reopens it.");
    parts.error = el("p", { class: "error", role: "alert", hidden: true });

    const box = el("textarea", { id: "reply-box", "data-testid": "reply-box",
      rows: 3, placeholder: "Write a reply (Ctrl+Enter sends)" });
    const counter = el("p", { class: "counter", id: "reply-counter",
      "data-testid": "reply-counter", "aria-live": "polite" });
    const saved = el("select", { id: "saved-replies",
      "data-testid": "saved-replies", "aria-label": "Saved replies" },
    el("option", { value: "" }, "Saved replies…"));
    const send = el("button", { type: "submit", class: "primary",
      "data-testid": "reply-send" }, "Send");
    const keep = el("button", { type: "button", class: "link" },
      "Save as a saved reply");
    let savedId = null;
    let savedBody = null;

    function count() {
      counter.textContent = segmentText(box.value);
      counter.title = segmentRoom(box.value) + " left in this segment";
    }
    count();
    box.addEventListener("input", count);
    box.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });

    async function fillSaved(force) {
      const rs = await savedReplies(force);
      saved.replaceChildren(el("option", { value: "" }, "Saved replies…"),
        ...rs.map((r) => el("option", { value: String(r.id) }, r.name)));
    }
    fillSaved(false);
    saved.addEventListener("change", () => {
      const r = (savedCache || []).find((x) => String(x.id) === saved.value);
      if (!r) return;
      box.value = r.body;
      savedId = r.id;
      savedBody = r.body;
      count();
      box.focus();
      saved.value = "";
    });
    keep.addEventListener("click", async () => {
      const body = box.value.trim();
      if (!body) return;
      const name = window.prompt("Name of the saved reply:",
        body.slice(0, 40));
      if (!name) return;
      try {
        await api("POST", "/api/v1/saved-replies", { name, body });
        await fillSaved(true);
      } catch (e) {
        showError(e.message);
      }
    });

    const form = el("form", { class: "reply", "aria-label": "Reply" },
      el("label", { for: "reply-box" }, "Reply by SMS"), box,
      el("div", { class: "row" }, counter, saved, keep, send));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = box.value;
      if (!text.trim()) return;
      const body = savedId !== null && text === savedBody
        ? { saved_reply: savedId } : { body: text };
      send.disabled = true;
      hideError();
      try {
        await api("POST", "/api/v1/conversations/" + st.id + "/reply", body);
        box.value = "";
        savedId = null;
        count();
        await loadThread(false);
        loadList();
      } catch (e) {
        showError(e.code === "opted_out"
          ? "This member opted out of SMS: the reply was not sent."
          : e.message);
      } finally {
        send.disabled = false;
      }
    });

    const note = el("textarea", { id: "note-box", "data-testid": "note-box",
      rows: 2, placeholder: "Only staff see notes" });
    const noteAdd = el("button", { type: "submit", "data-testid": "note-add" },
      "Add note");
    const noteForm = el("form", { class: "note-form",
      "aria-label": "Internal note" },
    el("label", { for: "note-box" }, "Internal note"), note, noteAdd);
    noteForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!note.value.trim()) return;
      noteAdd.disabled = true;
      hideError();
      try {
        await api("POST", "/api/v1/conversations/" + st.id + "/notes",
          { body: note.value });
        note.value = "";
        await loadThread(false);
      } catch (e) {
        showError(e.message);
      } finally {
        noteAdd.disabled = false;
      }
    });

    fill(threadPane, parts.head, parts.items, parts.closed, parts.error, form,
      noteForm);
  }

  function showError(text) {
    parts.error.textContent = text;
    parts.error.hidden = false;
  }

  function hideError() {
    if (parts.error) parts.error.hidden = true;
  }

  async function act(what, body) {
    hideError();
    try {
      await api("POST", "/api/v1/conversations/" + st.id + "/" + what, body);
      await loadThread(false);
      loadList();
    } catch (e) {
      showError(e.message);
      loadThread(false);
    }
  }

  function open(id) {
    st.id = id || null;
    for (const a of list.querySelectorAll(".conv-row")) {
      if (Number(a.dataset.id) === st.id) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    }
    if (!st.id) {
      st.composerFor = null;
      placeholder();
      return;
    }
    if (st.composerFor !== st.id) fill(threadPane, el("p", { class: "muted" },
      "Loading…"));
    st.composerFor = null;
    loadThread(true);
  }

  const reloadList = debounce(() => loadList(), 250);
  const reloadThread = debounce(() => loadThread(true), 250);

  loadList();
  open(params.id);

  return {
    update(p) {
      open(p.id);
    },
    event(type, d) {
      if (type !== "message" && type !== "conversation") return;
      reloadList();
      const cid = type === "message" ? d.conversation_id : d.id;
      if (st.id && cid === st.id) reloadThread();
    },
    refresh() {
      loadList();
      if (st.id) loadThread(false);
    },
    unmount() {},
  };
}
