// @ts-check
// Thin JSON client for the same-origin HTTP API (`/api/v1/...`).
// Errors come back as `{"error":{"code","message",...}}`; they are turned into `ApiError`
// so screens can map stable codes to human text. Nothing here logs request or response bodies.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 = network failure)
   * @param {string} code stable error code from the server, or a synthetic one
   * @param {string} message server message (for humans; may be empty)
   * @param {Record<string, any>} [details] the whole `error` object
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
 * @typedef {object} ApiOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {AbortSignal} [signal]
 * @property {Record<string, string>} [headers] added to the request
 */

/**
 * Calls the API. `body` is sent as JSON; `headers` are added (e.g. `Authorization`). Resolves
 * with the parsed JSON (or null for an empty body); rejects with `ApiError`. The result is
 * typed `any`: clinic/openapi.json describes it, and callers read it defensively.
 * @param {string} path
 * @param {ApiOptions} [options]
 * @returns {Promise<any>}
 */
export async function api(path, { method = 'GET', body, signal, headers } = {}) {
  /** @type {Record<string, string>} */
  const sent = { ...headers, Accept: 'application/json' };
  /** @type {RequestInit} */
  const init = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: sent,
    signal,
  };
  if (body !== undefined) {
    sent['Content-Type'] = 'application/json';
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
