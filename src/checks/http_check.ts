/**
 * HTTP interface check: GET the URL, require an accepted status and (optionally) a body
 * substring, all within `timeoutMs` — including reading the body, so a server that sends
 * headers and then stalls fails too.
 *
 * @module
 */

import type { CheckSpec } from "../manifest/types.ts";
import type { CheckResult } from "./check_types.ts";

/** The http variant of {@linkcode CheckSpec}. */
export type HttpCheckSpec = Extract<CheckSpec, { type: "http" }>;

/** At most this many body bytes are read; the rest is cancelled. */
export const HTTP_BODY_LIMIT = 64 * 1024;

/**
 * Runs one HTTP check. Never rejects; resolves within about `spec.timeoutMs`.
 * Redirects are not followed: a 3xx fails unless listed in `expectStatus`.
 *
 * @example
 * ```ts
 * const r = await httpCheck({
 *   type: "http", url: "http://127.0.0.1:8080/health", expectStatus: null, expectBody: "ok",
 *   intervalMs: 5000, timeoutMs: 1000, failures: 3, initialDelayMs: 0,
 * });
 * // r = { ok: true, detail: "HTTP 200 in 3ms" } or e.g. { ok: false, detail: "connection refused" }
 * ```
 */
export async function httpCheck(spec: HttpCheckSpec): Promise<CheckResult> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new DOMException(`no reply within ${spec.timeoutMs}ms`, "TimeoutError"));
      resolve({ ok: false, detail: `no reply within ${spec.timeoutMs}ms` });
    }, spec.timeoutMs);
  });
  try {
    // The race bounds the call even if fetch were to ignore the abort.
    return await Promise.race([_request(spec, controller.signal), timedOut]);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

async function _request(spec: HttpCheckSpec, signal: AbortSignal): Promise<CheckResult> {
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(spec.url, { signal, redirect: "manual" });
  } catch (e) {
    return { ok: false, detail: _describeFetchError(e) };
  }
  const statusOk = spec.expectStatus === null
    ? res.status >= 200 && res.status < 300
    : spec.expectStatus.includes(res.status);
  if (!statusOk) {
    await res.body?.cancel().catch(() => {});
    const expected = spec.expectStatus === null ? "2xx" : spec.expectStatus.join(" or ");
    return { ok: false, detail: `HTTP ${res.status} (expected ${expected})` };
  }
  let body: string;
  try {
    body = await _readLimited(res, HTTP_BODY_LIMIT);
  } catch (e) {
    return { ok: false, detail: `HTTP ${res.status} but reading the body failed: ${_message(e)}` };
  }
  if (spec.expectBody !== null && !body.includes(spec.expectBody)) {
    const snippet = body.length > 80 ? `${body.slice(0, 80)}…` : body;
    return {
      ok: false,
      detail: `body does not contain ${JSON.stringify(spec.expectBody)} (HTTP ${res.status}, body ${
        JSON.stringify(snippet)
      })`,
    };
  }
  return { ok: true, detail: `HTTP ${res.status} in ${Math.round(performance.now() - started)}ms` };
}

/** Reads at most `limit` bytes of the body as text, then cancels the rest. */
async function _readLimited(res: Response, limit: number): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  let done = false;
  try {
    while (size < limit) {
      const chunk = await reader.read();
      if (chunk.done) {
        done = true;
        break;
      }
      const bytes = chunk.value.subarray(0, limit - size);
      size += bytes.length;
      text += decoder.decode(bytes, { stream: true });
    }
    return text + decoder.decode();
  } finally {
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function _describeFetchError(e: unknown): string {
  const full = _message(e);
  if (/connection refused/i.test(full)) return "connection refused";
  if (/dns error|failed to lookup/i.test(full)) return `cannot resolve host: ${full}`;
  return full.length > 300 ? `${full.slice(0, 300)}…` : full;
}

/** The error's message followed by the messages of its causes. */
function _message(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 4; depth++) {
    parts.push(cur instanceof Error ? cur.message : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(": ");
}
