// api.js - the staff page's one way to talk to /api/v1.
//
// A staff member logs in with email and password or with an API token
// (POST /api/v1/login): the daemon sets the od_session cookie (HttpOnly,
// so no script reads it) and answers a CSRF token, which every request
// that changes something sends as X-CSRF-Token. GET /api/v1/me answers
// the same after a reload.
//
// Fallback: a daemon without staff accounts (no /api/v1/login: 404)
// takes the bearer token itself; it is kept in sessionStorage for this
// tab and sent as Authorization: Bearer. Live events need the cookie
// (EventSource sends no headers), so the page then polls instead.

const TOKEN_KEY = "outreachd.token";

export const auth = {
  staff: null,   // {id, name, email, role} once logged in
  csrf: null,    // the session's CSRF token
  bearer: sessionStorage.getItem(TOKEN_KEY), // fallback mode only
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || "HTTP " + status);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// One request; resolves to the parsed JSON (null for 204), rejects with
// an ApiError carrying the daemon's error code and message.
export async function api(method, path, body, opts) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && auth.csrf) {
    headers["X-CSRF-Token"] = auth.csrf;
  }
  if (auth.bearer) headers.Authorization = "Bearer " + auth.bearer;
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network", "the daemon cannot be reached");
  }
  let data = null;
  const text = await r.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!r.ok) {
    const err = data && data.error ? data.error : {};
    const e = new ApiError(r.status, err.code, err.message);
    if (r.status === 401 && !(opts && opts.quiet401)) onUnauthorized(e);
    throw e;
  }
  return data;
}

// Who is logged in: true after filling auth, false if nobody is.
export async function whoami() {
  try {
    const me = await api("GET", "/api/v1/me", undefined, { quiet401: true });
    auth.staff = me.staff;
    auth.csrf = me.csrf || null;
    return true;
  } catch (e) {
    if (e.status === 404 && auth.bearer) return bearerCheck();
    return false;
  }
}

// Fallback mode: the token works if /api/v1/status answers.
async function bearerCheck() {
  try {
    await api("GET", "/api/v1/status", undefined, { quiet401: true });
    auth.staff = { id: 0, name: "API token", role: "admin" };
    return true;
  } catch (e) {
    forgetBearer();
    return false;
  }
}

function forgetBearer() {
  auth.bearer = null;
  sessionStorage.removeItem(TOKEN_KEY);
}

// creds: {email, password} or {token}. Resolves, or rejects with the
// daemon's message.
export async function login(creds) {
  forgetBearer();
  try {
    const r = await api("POST", "/api/v1/login", creds, { quiet401: true });
    auth.staff = r.staff;
    auth.csrf = r.csrf || null;
    return;
  } catch (e) {
    if (e.status !== 404 || !creds.token) throw e;
  }
  auth.bearer = creds.token;
  sessionStorage.setItem(TOKEN_KEY, creds.token);
  if (!(await bearerCheck())) {
    throw new ApiError(401, "unauthorized", "invalid API token");
  }
}

export async function logout() {
  if (!auth.bearer) {
    try {
      await api("POST", "/api/v1/logout", undefined, { quiet401: true });
    } catch (e) {
      // the session is gone either way
    }
  }
  forgetBearer();
  auth.staff = null;
  auth.csrf = null;
}

// Live events (EventSource reconnects by itself with Last-Event-ID).
// handlers: {message(data), conversation(data), alert(data), reset()}.
// Returns a function that stops it; null in bearer mode.
export function liveEvents(handlers) {
  if (auth.bearer || typeof EventSource === "undefined") return null;
  const es = new EventSource("/api/v1/events");
  for (const type of ["message", "conversation", "alert", "reset"]) {
    es.addEventListener(type, (ev) => {
      let data = {};
      try {
        data = JSON.parse(ev.data || "{}");
      } catch (e) {
        return;
      }
      if (handlers[type]) handlers[type](data);
    });
  }
  es.onopen = () => handlers.open && handlers.open();
  es.onerror = () => handlers.error && handlers.error();
  return () => es.close();
}
