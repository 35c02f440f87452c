// The API client of the explorer. The key lives in this tab's sessionStorage only (gone when the
// tab closes), is sent as the X-API-Key header, and never goes into a URL, a cookie or the
// page's markup. Requests omit credentials (no cookies) and send no referrer.

const STORAGE_KEY = "memtrace.apiKey";

/** The server's root: the explorer is served at <root>/ui/, the API at <root>/api/v1/. */
export const ROOT = new URL("../", document.baseURI);

export const credentials = {
  get key() {
    try {
      return sessionStorage.getItem(STORAGE_KEY);
    } catch {
      return null; // storage disabled: nothing is kept, sign in again
    }
  },
  set(key) {
    sessionStorage.setItem(STORAGE_KEY, key);
  },
  clear() {
    try {
      sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      /* nothing stored */
    }
  },
};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** An API URL: path relative to the server root, query entries that are empty left out. */
export function apiUrl(path, query) {
  const url = new URL(path.replace(/^\//, ""), ROOT);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    url.searchParams.set(name, Array.isArray(value) ? value.join(",") : String(value));
  }
  return url;
}

/** Called with the error when the server refuses the key (401): the app signs out. */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Tell the app that the server refused the key (outside api(): the live stream). */
export function unauthorized(error) {
  onUnauthorized(error);
}

export function authHeaders(key = credentials.key) {
  return key ? { "X-API-Key": key } : {};
}

/**
 * Call the API: resolves to the parsed JSON body (null for 204), rejects with ApiError
 * (status and the server's {"error"} message) or the fetch error (network, abort).
 */
export async function api(path, { method = "GET", query, body, signal, key } = {}) {
  const headers = { Accept: "application/json", ...authHeaders(key ?? credentials.key) };
  const init = {
    method,
    headers,
    signal,
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
    redirect: "error",
  };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(apiUrl(path, query), init);
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
    const error = new ApiError(response.status, message, data);
    if (response.status === 401 && key === undefined) onUnauthorized(error);
    throw error;
  }
  return data;
}
