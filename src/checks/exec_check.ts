/**
 * Exec interface check: run a command; the app is healthy if it exits 0 within `timeoutMs`.
 * The command runs in its own session (process group); on timeout the whole group gets
 * SIGKILL, so a shell's grandchildren die too.
 *
 * @module
 */

import type { CheckSpec } from "../manifest/types.ts";
import type { CheckResult } from "./check_types.ts";

/** The exec variant of {@linkcode CheckSpec}. */
export type ExecCheckSpec = Extract<CheckSpec, { type: "exec" }>;

/** Bytes of each output stream kept for the failure detail; the rest is read and dropped. */
const OUTPUT_KEEP = 1024;
/** How long to wait for a killed command to be reaped before giving up on it. */
const REAP_GRACE_MS = 1000;

/**
 * Runs one exec check. Never rejects; resolves within about `spec.timeoutMs` (plus a short
 * grace to reap a killed command). On failure the detail includes the start of the output.
 *
 * @example
 * ```ts
 * const r = await execCheck({
 *   type: "exec", command: ["pg_isready", "-q"],
 *   intervalMs: 5000, timeoutMs: 1000, failures: 3, initialDelayMs: 0,
 * });
 * // r = { ok: true, detail: "exit 0" }, { ok: false, detail: "exit 2: ..." },
 * // or { ok: false, detail: "no exit within 1000ms (killed)" }
 * ```
 */
export async function execCheck(spec: ExecCheckSpec): Promise<CheckResult> {
  const [program, ...args] = spec.command;
  if (program === undefined) {
    return { ok: false, detail: "cannot run: expected a command, found an empty list" };
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (e) {
    return { ok: false, detail: `cannot run: ${e instanceof Error ? e.message : String(e)}` };
  }
  const out = _capture(child.stdout);
  const err = _capture(child.stderr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), spec.timeoutMs);
  });
  try {
    const status = await Promise.race([child.status, timedOut]);
    if (status === "timeout") {
      _killGroup(child);
      await _within(child.status, REAP_GRACE_MS);
      return { ok: false, detail: `no exit within ${spec.timeoutMs}ms (killed)` };
    }
    const detail = status.signal !== null ? `killed by ${status.signal}` : `exit ${status.code}`;
    if (status.success) return { ok: true, detail };
    // Let the output finish (bounded by the deadline) so the detail can say why.
    await Promise.race([Promise.all([out.done, err.done]), timedOut]);
    const output = (err.text() || out.text()).trim().replace(/\s+/g, " ");
    const snippet = output.length > 200 ? `${output.slice(0, 200)}…` : output;
    return { ok: false, detail: snippet === "" ? detail : `${detail}: ${snippet}` };
  } finally {
    clearTimeout(timer);
    await Promise.all([out.cancel(), err.cancel()]);
  }
}

/** SIGKILL the command's process group (it is its session leader), falling back to the child. */
function _killGroup(child: Deno.ChildProcess): void {
  try {
    Deno.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

async function _within<T>(promise: Promise<T>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise.then(() => {}, () => {}),
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}

interface _Capture {
  /** Resolves when the stream ended (or failed, or was cancelled). */
  done: Promise<void>;
  /** The first {@linkcode OUTPUT_KEEP} bytes read so far, as text. */
  text(): string;
  cancel(): Promise<void>;
}

/** Drains a stream, keeping its first bytes, so the child never blocks on a full pipe. */
function _capture(stream: ReadableStream<Uint8Array>): _Capture {
  const reader = stream.getReader();
  const kept = new Uint8Array(OUTPUT_KEEP);
  let size = 0;
  let finished = false;
  const done = (async () => {
    try {
      while (true) {
        const chunk = await reader.read();
        if (chunk.done) break;
        const part = chunk.value.subarray(0, OUTPUT_KEEP - size);
        kept.set(part, size);
        size += part.length;
      }
    } catch {
      // Cancelled or broken pipe: keep what we have.
    } finally {
      finished = true;
    }
  })();
  return {
    done,
    text: () => new TextDecoder().decode(kept.subarray(0, size)),
    cancel: async () => {
      if (!finished) await reader.cancel().catch(() => {});
      await done;
    },
  };
}
