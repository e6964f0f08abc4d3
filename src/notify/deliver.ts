/**
 * One delivery attempt to one sink, bounded by the sink's timeout: a webhook POST (signed
 * with HMAC-SHA256 when the sink has a key) or a command run with `BATON_EVENT_*` variables.
 * Resolves on success, rejects with a sentence saying what went wrong.
 *
 * @example
 * ```ts
 * import type { NotifySink } from "../manifest/types.ts";
 * import type { NotifyEvent } from "./event.ts";
 * declare const sink: NotifySink;
 * declare const event: NotifyEvent;
 * await deliver({ sink, key: null }, event); // throws on a non-2xx reply or a failed command
 * ```
 *
 * @module
 */
import type { NotifySink } from "../manifest/types.ts";
import type { NotifyEvent } from "./event.ts";

/** Header of a signed webhook: `sha256=<hex of HMAC-SHA256(key, body)>`. */
export const SIGNATURE_HEADER = "X-Baton-Signature-256";

/** A sink with its signing key loaded (null: unsigned). */
export interface LoadedSink {
  sink: NotifySink;
  key: string | null;
}

/** Short name of a sink for messages and metric labels (a URL's origin, a command's program). */
export function sinkName(sink: NotifySink): string {
  if (sink.webhook !== null) {
    const u = new URL(sink.webhook);
    return `webhook ${u.origin}${u.pathname}`;
  }
  return `exec ${sink.exec?.[0] ?? "?"}`;
}

/** The `BATON_EVENT_*` variables of an event (empty strings for nulls). */
export function eventEnv(ev: NotifyEvent): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(ev)) {
    env[`BATON_EVENT_${k.toUpperCase()}`] = v === null ? "" : String(v);
  }
  return env;
}

/** `sha256=<hex>` of HMAC-SHA256 over `body` with `key`. */
export async function signBody(key: string, body: string): Promise<string> {
  const enc = new TextEncoder();
  const k = await crypto.subtle.importKey(
    "raw",
    enc.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(body)));
  return "sha256=" + Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One attempt; rejects with an `Error` whose message says why. */
export async function deliver(target: LoadedSink, ev: NotifyEvent): Promise<void> {
  const { sink } = target;
  if (sink.webhook !== null) return await _post(sink.webhook, target.key, ev, sink.timeoutMs);
  if (sink.exec !== null) return await _exec(sink.exec, ev, sink.timeoutMs);
  throw new Error("sink has neither webhook nor exec");
}

async function _post(url: string, key: string | null, ev: NotifyEvent, timeoutMs: number) {
  const body = JSON.stringify(ev);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (key !== null) headers[SIGNATURE_HEADER] = await signBody(key, body);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const e = err as Error;
    throw new Error(
      e.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : `cannot post: ${e.message}`,
    );
  }
  await res.body?.cancel().catch(() => {});
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

async function _exec(command: string[], ev: NotifyEvent, timeoutMs: number) {
  const [cmd, ...args] = command;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd!, {
      args,
      env: eventEnv(ev),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (err) {
    throw new Error(`cannot run ${cmd}: ${(err as Error).message}`);
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const status = await child.status;
  clearTimeout(timer);
  if (timedOut) throw new Error(`${cmd} did not finish within ${timeoutMs} ms: killed`);
  if (!status.success) throw new Error(`${cmd} exited with code ${status.code}`);
}
