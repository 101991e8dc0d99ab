// Thin JSON client for the same-origin HTTP API (`/api/v1/...`).
// Errors come back as `{"error":{"code","message",...}}`; they are turned into `ApiError`
// so screens can map stable codes to human text. Nothing here logs request or response bodies.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 = network failure)
   * @param {string} code stable error code from the server, or a synthetic one
   * @param {string} message server message (for humans; may be empty)
   * @param {object} details the whole `error` object
   */
  constructor(status, code, message, details = {}) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * Calls the API. `body` is sent as JSON; `headers` are added (e.g. `Authorization`). Resolves
 * with the parsed JSON (or null for an empty body); rejects with `ApiError`.
 */
export async function api(path, { method = 'GET', body, signal, headers } = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { ...headers, Accept: 'application/json' },
    signal,
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', 'The server could not be reached.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = (data && typeof data === 'object' && data.error) || {};
    throw new ApiError(res.status, err.code || `http_${res.status}`, err.message || '', err);
  }
  return data;
}
