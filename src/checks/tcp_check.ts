/**
 * TCP interface check: the app is healthy if a connection to host:port opens within
 * `timeoutMs`. The connection is closed at once.
 *
 * @module
 */

import type { CheckSpec } from "../manifest/types.ts";
import type { CheckResult } from "./check_types.ts";

/** The tcp variant of {@linkcode CheckSpec}. */
export type TcpCheckSpec = Extract<CheckSpec, { type: "tcp" }>;

/**
 * Runs one TCP check. Never rejects; resolves within about `spec.timeoutMs`. A connection
 * that arrives after the timeout is closed when it does.
 *
 * @example
 * ```ts
 * const r = await tcpCheck({
 *   type: "tcp", host: "127.0.0.1", port: 5432,
 *   intervalMs: 5000, timeoutMs: 1000, failures: 3, initialDelayMs: 0,
 * });
 * // r = { ok: true, detail: "connected in 1ms" } or { ok: false, detail: "connection refused" }
 * ```
 */
export async function tcpCheck(spec: TcpCheckSpec): Promise<CheckResult> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), spec.timeoutMs);
  });
  let connecting: Promise<Deno.TcpConn>;
  try {
    connecting = Deno.connect({ hostname: spec.host, port: spec.port, signal: controller.signal });
  } catch (e) {
    clearTimeout(timer);
    return { ok: false, detail: _describe(e) };
  }
  try {
    const winner = await Promise.race([connecting, timedOut]);
    if (winner === "timeout") {
      controller.abort();
      connecting.then((conn) => _close(conn), () => {});
      return { ok: false, detail: `no connection within ${spec.timeoutMs}ms` };
    }
    _close(winner);
    return { ok: true, detail: `connected in ${Math.round(performance.now() - started)}ms` };
  } catch (e) {
    return { ok: false, detail: _describe(e) };
  } finally {
    clearTimeout(timer);
  }
}

function _close(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Already closed (e.g. by the abort signal).
  }
}

function _describe(e: unknown): string {
  if (e instanceof Deno.errors.ConnectionRefused) return "connection refused";
  const message = e instanceof Error ? e.message : String(e);
  return `cannot connect: ${message}`;
}
