/**
 * {@linkcode GuardProcess}: starts, adopts, feeds and watches the per-host guard
 * (guard_script.ts), the small bash process that SIGKILLs the movable apps when the lease the
 * agent gave it runs out, whether or not the agent still runs.
 *
 * Files, in `<stateDir>/guard/`: `fifo` (orders), `pid` (`<pid> <starttime>` of the guard, so
 * a restarted agent adopts it instead of starting a second one), `targets` (what to kill),
 * `fenced` (one line per fence, written by the guard).
 *
 * The guard runs in its own session (it survives the agent, like the apps) with
 * `oom_score_adj` -1000. The agent checks it every 100 ms: a guard that died or was stopped is
 * replaced at once (SIGKILL, a fresh guard, the current order again), and recorded; while the
 * agent runs it fences itself anyway, so the apps are never unguarded for longer than that check.
 *
 * @module
 */
import type { DriverRecordKind } from "../core/types.ts";
import { isDeadState, isSameProcess, readProcStat } from "../supervisor/proc.ts";
import { GUARD_SCRIPT } from "./guard_script.ts";

/** What the guard holds now, as far as this agent knows. */
export type GuardLease =
  | { kind: "armed"; uptimeMs: number }
  | { kind: "off" }
  | { kind: "unknown" };

/** Called for what operators should see in the event log. */
export type GuardReport = (
  level: "info" | "warn" | "error",
  kind: DriverRecordKind,
  message: string,
) => void;

const _BASH = ["/bin/bash", "/usr/bin/bash"].find(_isExecutable) ?? null;
const _SETSID = ["/usr/bin/setsid", "/bin/setsid"].find(_isExecutable) ?? null;
const _encoder = new TextEncoder();

/**
 * The guard process of one node.
 *
 * @example
 * ```ts
 * const guard = new GuardProcess("/var/lib/baton/guard", (l, k, m) => console.error(k, m));
 * guard.open();
 * guard.setTargets(["cg /sys/fs/cgroup/baton/demo/alpha/web"]);
 * const uptimeAt = uptimeClock();
 * guard.arm(uptimeAt(performance.now()) + 700);
 * ```
 */
export class GuardProcess {
  readonly #dir: string;
  readonly #report: GuardReport;
  #pid: number | null = null;
  #startTime = 0;
  #fifo: Deno.FsFile | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #lease: GuardLease = { kind: "unknown" };
  #targets: string | null = null;
  #fencedSize = 0;
  #error: string | null = null;
  #replacements = 0;

  /** `dir`: the guard's directory (created if missing). */
  constructor(dir: string, report: GuardReport) {
    this.#dir = dir;
    this.#report = report;
  }

  /** Whether this host can run a guard (bash is installed). */
  static available(): boolean {
    return _BASH !== null;
  }

  /**
   * Adopt the guard a previous agent left (it keeps the lease it was given), or start one
   * (disarmed). Throws when no guard can be started.
   */
  open(): void {
    Deno.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    this.#fencedSize = _size(`${this.#dir}/fenced`);
    if (!this.#adopt()) this.#spawn();
    this.#timer = setInterval(() => this.#check(), 100);
    Deno.unrefTimer(this.#timer);
  }

  /** The lease runs until `uptimeMs` (of /proc/uptime). */
  arm(uptimeMs: number): void {
    const ms = Math.floor(uptimeMs);
    if (this.#lease.kind === "armed" && this.#lease.uptimeMs === ms) return;
    this.#lease = { kind: "armed", uptimeMs: ms };
    this.#send(`L ${ms}\n`);
  }

  /** No lease: the guard kills nothing. */
  disarm(): void {
    if (this.#lease.kind === "off") return;
    this.#lease = { kind: "off" };
    this.#send("U\n");
  }

  /** What to kill on expiry: `cg <dir>` and `pg <pgid> <starttime>` lines. */
  setTargets(lines: string[]): void {
    const text = lines.length > 0 ? `${lines.join("\n")}\n` : "";
    if (text === this.#targets) return;
    const tmp = `${this.#dir}/targets.tmp`;
    try {
      Deno.writeTextFileSync(tmp, text, { mode: 0o600 });
      Deno.renameSync(tmp, `${this.#dir}/targets`);
      this.#targets = text;
    } catch (error) {
      this.#fail(`cannot write the guard's targets: ${_message(error)}`);
    }
  }

  /** For status: the guard's PID, what it holds, and the latest problem. */
  status(): { pid: number | null; lease: GuardLease; replaced: number; error: string | null } {
    return { pid: this.#pid, lease: this.#lease, replaced: this.#replacements, error: this.#error };
  }

  /** Stop watching; the guard keeps running with its lease (agent shutdown). */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    try {
      this.#fifo?.close();
    } catch { /* closed */ }
    this.#fifo = null;
  }

  #adopt(): boolean {
    let text: string;
    try {
      text = Deno.readTextFileSync(`${this.#dir}/pid`);
    } catch {
      return false;
    }
    const [pid, startTime] = text.trim().split(" ").map(Number);
    if (pid === undefined || startTime === undefined || !isSameProcess(pid, startTime)) {
      return false;
    }
    try {
      if (!Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("baton-guard")) return false;
      this.#fifo = Deno.openSync(`${this.#dir}/fifo`, { read: true, write: true });
    } catch {
      return false;
    }
    this.#pid = pid;
    this.#startTime = startTime;
    this.#report("info", "guard", `adopted the guard (pid ${pid}); it keeps its lease`);
    return true;
  }

  #spawn(): void {
    if (_BASH === null) throw new Error("cannot start the guard: expected bash, found none");
    const fifo = `${this.#dir}/fifo`;
    try {
      this.#fifo?.close();
    } catch { /* closed */ }
    this.#fifo = null;
    try {
      Deno.removeSync(fifo);
    } catch { /* none */ }
    const made = new Deno.Command("mkfifo", { args: ["-m", "0600", fifo], stderr: "piped" })
      .outputSync();
    if (!made.success) {
      throw new Error(`cannot start the guard: mkfifo ${fifo}: ${_decode(made.stderr).trim()}`);
    }
    // Open before the guard starts: what is written waits in the pipe until it reads.
    this.#fifo = Deno.openSync(fifo, { read: true, write: true });
    const args = ["-c", GUARD_SCRIPT, "baton-guard", this.#dir];
    const child = new Deno.Command(_SETSID ?? _BASH, {
      args: _SETSID !== null ? [_BASH, ...args] : args,
      detached: _SETSID === null,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    child.status.catch(() => {}); // reaped when it ends; the check sees it gone
    this.#pid = child.pid;
    this.#startTime = readProcStat(child.pid)?.startTime ?? 0;
    try {
      Deno.writeTextFileSync(`/proc/${child.pid}/oom_score_adj`, "-1000");
    } catch { /* not root */ }
    Deno.writeTextFileSync(`${this.#dir}/pid`, `${child.pid} ${this.#startTime}\n`);
    this.#lease = { kind: "off" };
  }

  #send(line: string): void {
    if (this.#fifo === null) return;
    try {
      this.#fifo.writeSync(_encoder.encode(line));
    } catch (error) {
      this.#fail(`cannot tell the guard: ${_message(error)}`);
    }
  }

  /** Every 100 ms: the guard still runs (not stopped), and whether it fenced. */
  #check(): void {
    const size = _size(`${this.#dir}/fenced`);
    if (size > this.#fencedSize) {
      this.#fencedSize = size;
      this.#report(
        "error",
        "guard_fenced",
        "the lease ran out: the guard SIGKILLed the movable apps",
      );
    }
    const pid = this.#pid;
    const stat = pid === null ? null : readProcStat(pid);
    const alive = stat !== null && stat.startTime === this.#startTime && !isDeadState(stat.state);
    if (alive && stat.state !== "T" && stat.state !== "t") return;
    if (alive && pid !== null) {
      try {
        Deno.kill(pid, "SIGKILL"); // stopped: it cannot act on time
      } catch { /* gone */ }
    }
    const lease = this.#lease;
    try {
      this.#spawn();
      this.#replacements++;
      this.#error = null;
      if (this.#targets !== null) {
        const targets = this.#targets;
        this.#targets = null;
        this.setTargets(targets.trimEnd().split("\n").filter((l) => l !== ""));
      }
      if (lease.kind === "armed") this.arm(lease.uptimeMs);
      this.#report(
        "error",
        "guard_replaced",
        `the guard (pid ${pid}) ${alive ? "was stopped" : "died"}: started a new one (pid ` +
          `${this.#pid}) with the same lease`,
      );
    } catch (error) {
      this.#fail(`the guard died and cannot be restarted: ${_message(error)}`);
    }
  }

  #fail(message: string): void {
    if (this.#error !== message) this.#report("error", "guard_error", message);
    this.#error = message;
  }
}

/**
 * Milliseconds of /proc/uptime (CLOCK_BOOTTIME) at monotonic time `perfNow`
 * (`performance.now()`), from an offset measured once: /proc/uptime ticks every 10 ms, so the
 * offset is taken at a tick edge (≤ 1 ms off), waiting at most 25 ms for it.
 *
 * @example
 * ```ts
 * const toUptime = uptimeClock();
 * toUptime(performance.now()); // e.g. 1_129_320.4
 * ```
 */
export function uptimeClock(): (perfNow: number) => number {
  const first = _uptimeMs();
  let offset = first - performance.now();
  const until = performance.now() + 25;
  while (performance.now() < until) {
    const ms = _uptimeMs();
    if (ms !== first) {
      offset = ms - performance.now();
      break;
    }
  }
  return (perfNow) => perfNow + offset;
}

function _uptimeMs(): number {
  const text = Deno.readTextFileSync("/proc/uptime");
  return Math.round(Number(text.split(" ")[0]) * 1000);
}

function _size(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

function _isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function _decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

function _message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
