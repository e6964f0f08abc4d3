/**
 * The systemd notify protocol (`sd_notify(3)`), for `Type=notify` units: newline-separated
 * `KEY=VALUE` lines in one datagram to the unix socket named by `NOTIFY_SOCKET`. The agent
 * says `READY=1` once it has adopted or started its apps, `WATCHDOG=1` after each healthy
 * decision cycle (see `watchdog.ts`), `STATUS=…` when its summary changes and `STOPPING=1` on
 * shutdown.
 *
 * Why `Deno.listenDatagram` (and so `--unstable-net` in every task that runs the agent and in
 * the compile flags): it is the only way for a Deno program to send a unix datagram itself.
 * `systemd-notify` exists only where systemd does and would send from a child process, which
 * `NotifyAccess=main` rightly refuses; an FFI `sendto` would need `--allow-ffi` and unsafe
 * code. The socket is bound to a unique path that is unlinked at once (the kernel keeps the
 * binding); systemd identifies the sender by its credentials, not by that address.
 *
 * @module
 */

/** What `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` said. */
export interface NotifyEnv {
  /** The socket path, or null when the agent does not run under `Type=notify`. */
  socket: string | null;
  /** The watchdog interval in ms if enabled for this process (like `sd_watchdog_enabled`). */
  watchdogMs: number | null;
}

/**
 * Read the notify environment and remove it, so the apps the agent starts do not inherit it
 * (like `sd_notify(unset_environment=1)`). The watchdog is enabled only when `WATCHDOG_USEC`
 * is a positive integer and `WATCHDOG_PID`, if set, is this process.
 *
 * @example
 * ```ts
 * const env = takeNotifyEnv(); // { socket: "/run/systemd/notify", watchdogMs: 10000 }
 * ```
 */
export function takeNotifyEnv(
  env: { get(k: string): string | undefined; delete(k: string): void } = Deno.env,
  pid: number = Deno.pid,
): NotifyEnv {
  const socket = env.get("NOTIFY_SOCKET") ?? "";
  const usec = env.get("WATCHDOG_USEC") ?? "";
  const wpid = env.get("WATCHDOG_PID") ?? "";
  for (const k of ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]) env.delete(k);
  let watchdogMs: number | null = null;
  if (/^\d+$/.test(usec) && Number(usec) > 0 && (wpid === "" || Number(wpid) === pid)) {
    watchdogMs = Math.max(1, Math.floor(Number(usec) / 1000));
  }
  return { socket: socket === "" ? null : socket, watchdogMs };
}

/** Sends notify messages; every failure is logged once and never thrown. */
export class Notifier {
  #socket: string | null;
  #conn: Deno.DatagramConn | null = null;
  #log: (line: string) => void;
  #warned = false;
  #lastStatus: string | null = null;

  /** A notifier for `socket` (null: every call is a no-op). */
  constructor(socket: string | null, log: (line: string) => void) {
    this.#socket = socket;
    this.#log = log;
  }

  /** Whether messages go anywhere. */
  get enabled(): boolean {
    return this.#socket !== null;
  }

  /**
   * Send `lines` (e.g. `["READY=1", "STATUS=active"]`) as one datagram. Resolves to whether it
   * was sent.
   */
  async send(lines: string[]): Promise<boolean> {
    const path = this.#socket;
    if (path === null || lines.length === 0) return false;
    try {
      const conn = this.#open(path);
      await conn.send(new TextEncoder().encode(lines.join("\n")), {
        transport: "unixpacket",
        path,
      });
      return true;
    } catch (err) {
      this.#warn(`cannot notify ${path}: ${err instanceof Error ? err.message : err}`);
      return false;
    }
  }

  /** Send `STATUS=text` unless it is the last status sent. */
  async status(text: string): Promise<void> {
    if (text === this.#lastStatus) return;
    if (await this.send([`STATUS=${text}`])) this.#lastStatus = text;
  }

  /** Close the socket. */
  close(): void {
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#conn = null;
  }

  #open(path: string): Deno.DatagramConn {
    if (this.#conn) return this.#conn;
    if (path.startsWith("@")) {
      throw new Error("abstract notify sockets are not supported; systemd uses a path");
    }
    const listen = (Deno as { listenDatagram?: typeof Deno.listenDatagram }).listenDatagram;
    if (typeof listen !== "function") {
      throw new Error("Deno.listenDatagram is missing: run the agent with --unstable-net");
    }
    const dir = Deno.env.get("XDG_RUNTIME_DIR") || "/tmp";
    const own = `${dir}/baton-notify-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.sock`;
    const conn = listen({ transport: "unixpacket", path: own });
    try {
      Deno.removeSync(own);
    } catch { /* the binding stays */ }
    this.#conn = conn;
    return conn;
  }

  #warn(line: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#log(`baton: ${line} (further notify errors are not logged)`);
  }
}
