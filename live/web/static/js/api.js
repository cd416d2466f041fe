// REST with the bearer token, and the signed-in session kept in localStorage (docs/web.md).
const KEY = 'live.session';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function session() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY));
    return s && typeof s.token === 'string' ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s) { localStorage.setItem(KEY, JSON.stringify({ token: s.token, user: s.user })); }

export function clearSession() { localStorage.removeItem(KEY); }

export function signInUrl() { return '/signin?next=' + encodeURIComponent(location.pathname + location.search); }

// The session, or a trip to the sign-in page (which comes back here) and null.
export function requireSession() {
  const s = session();
  if (!s) location.assign(signInUrl());
  return s;
}

// A refused token (expired, signed out everywhere, suspended): forget it and sign in again.
export function signInAgain() {
  clearSession();
  location.assign(signInUrl());
}

// The error of a failed response: the API's {error: {code, message}}, or the HTTP status.
export async function errorOf(resp) {
  const data = await resp.json().catch(() => null);
  const e = data && data.error;
  return new ApiError(resp.status, e && e.code ? e.code : `http_${resp.status}`,
    e && e.message ? e.message : resp.statusText || `HTTP ${resp.status}`);
}

export function authHeaders(token) { return token ? { Authorization: `Bearer ${token}` } : {}; }

export async function api(path, { method = 'GET', body, token = session()?.token } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders(token) };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw await errorOf(resp);
  return resp.status === 204 ? null : resp.json();
}
