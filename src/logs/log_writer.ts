/**
 * {@linkcode LogWriter}: starts, adopts and configures the per-host log writer
 * (writer_script.ts), the small Perl process that reads every app's output pipe and writes it
 * to rotated files, and that outlives the agent (an agent restart neither loses a line nor
 * SIGPIPEs an app).
 *
 * Files, in its directory (`<stateDir>/logwriter/`): `ctl` (its control FIFO), `conf` (the apps
 * and their rotation), `pid` (`<pid> <starttime>`, so a restarted agent adopts it), and one
 * `<app>.pipe` FIFO per app. The logs themselves are `<stateDir>/logs/<app>.log[.N]`.
 *
 * A writer that died is replaced at the next spawn or check (every second): the new one opens
 * the same FIFOs, whose unread output is still there (each app holds its FIFO open). Only a
 * chunk the dead writer had read but not yet written is lost.
 *
 * @example
 * ```ts
 * const writer = new LogWriter("/var/lib/baton/alpha/logwriter", "/var/lib/baton/alpha/logs");
 * const pipe = writer.pipe("web", { maxBytes: 10 * 2 ** 20, keep: 5 });
 * // the launcher runs the app with `exec 1<>"$pipe" 2>&1` (spawn_extras.ts pipePrefix)
 * writer.close();
 * ```
 *
 * @module
 */
import type { AppLogs } from "../manifest/types.ts";
import { isDeadState, isSameProcess, readProcStat } from "../supervisor/proc.ts";
import { LOG_WRITER_SCRIPT } from "./writer_script.ts";

const _PERL = ["/usr/bin/perl", "/bin/perl"].find(_isExecutable) ?? null;
const _SETSID = ["/usr/bin/setsid", "/bin/setsid"].find(_isExecutable) ?? null;
const _encoder = new TextEncoder();

/** The per-host log writer of one node, as seen from its agent. */
export class LogWriter {
  readonly #dir: string;
  readonly #logDir: string;
  #pid: number | null = null;
  #startTime = 0;
  #ctl: Deno.FsFile | null = null;
  #conf = new Map<string, string>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #replaced = 0;

  /** `dir`: the writer's own directory; `logDir`: where the logs go. Both made if missing. */
  constructor(dir: string, logDir: string) {
    this.#dir = dir;
    this.#logDir = logDir;
  }

  /** Whether this host can run a writer (Perl is installed). */
  static available(): boolean {
    return _PERL !== null;
  }

  /**
   * The FIFO the app `app` writes its output to, rotated as `logs` says: the writer is started
   * (or adopted) and told first. Throws when no writer can run (the caller then appends to one
   * file as before).
   */
  pipe(app: string, logs: AppLogs): string {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(app)) {
      throw new Error(`log writer: expected an app name usable as a file name, found "${app}"`);
    }
    this.#ensure();
    const pipe = `${this.#dir}/${app}.pipe`;
    if (!_isFifo(pipe)) _mkfifo(pipe);
    const line = `${app} ${logs.maxBytes} ${logs.keep}`;
    if (this.#conf.get(app) !== line) {
      this.#conf.set(app, line);
      this.#writeConf();
      this.#send("R\n");
    }
    return pipe;
  }

  /** For status and benchmarks: the writer's PID and resident memory (KiB), or nulls. */
  status(): { pid: number | null; rssKiB: number | null; replaced: number } {
    return {
      pid: this.#alive() ? this.#pid : null,
      rssKiB: _rss(this.#pid),
      replaced: this.#replaced,
    };
  }

  /** Stop watching; the writer keeps running (agent shutdown). */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    try {
      this.#ctl?.close();
    } catch { /* closed */ }
    this.#ctl = null;
  }

  /** Adopt the running writer or start one; then check it every second. */
  #ensure(): void {
    if (this.#alive() && this.#ctl !== null) return;
    Deno.mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    Deno.mkdirSync(this.#logDir, { recursive: true });
    if (this.#conf.size === 0) this.#readConf();
    if (!this.#adopt()) {
      if (this.#pid !== null) this.#replaced++;
      this.#spawn();
    }
    if (this.#timer === null) {
      this.#timer = setInterval(() => {
        try {
          if (!this.#alive()) this.#ensure();
        } catch { /* tried again at the next spawn */ }
      }, 1000);
      Deno.unrefTimer(this.#timer);
    }
  }

  #alive(): boolean {
    if (this.#pid === null) return false;
    const stat = readProcStat(this.#pid);
    return stat !== null && stat.startTime === this.#startTime && !isDeadState(stat.state);
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
      if (!Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("baton-logs")) return false;
      this.#ctl?.close();
      this.#ctl = Deno.openSync(`${this.#dir}/ctl`, { read: true, write: true });
    } catch {
      return false;
    }
    this.#pid = pid;
    this.#startTime = startTime;
    return true;
  }

  #spawn(): void {
    if (_PERL === null) throw new Error("cannot start the log writer: expected perl, found none");
    const ctl = `${this.#dir}/ctl`;
    try {
      this.#ctl?.close();
    } catch { /* closed */ }
    this.#ctl = null;
    if (!_isFifo(ctl)) {
      try {
        Deno.removeSync(ctl);
      } catch { /* none */ }
      _mkfifo(ctl);
    }
    this.#ctl = Deno.openSync(ctl, { read: true, write: true });
    // Two descriptors per app: raise the soft limit of open files to the hard one first.
    const args = [
      "-c",
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      "baton-logs-start",
      _PERL,
      "-e",
      LOG_WRITER_SCRIPT,
      "baton-logs",
      this.#dir,
      this.#logDir,
    ];
    const child = new Deno.Command(_SETSID ?? "/bin/sh", {
      args: _SETSID !== null ? ["/bin/sh", ...args] : args,
      detached: _SETSID === null,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    child.status.catch(() => {});
    this.#pid = child.pid;
    this.#startTime = readProcStat(child.pid)?.startTime ?? 0;
    Deno.writeTextFileSync(`${this.#dir}/pid`, `${child.pid} ${this.#startTime}\n`);
  }

  #readConf(): void {
    try {
      for (const line of Deno.readTextFileSync(`${this.#dir}/conf`).split("\n")) {
        const app = line.split(" ")[0];
        if (app) this.#conf.set(app, line);
      }
    } catch { /* none yet */ }
  }

  #writeConf(): void {
    const tmp = `${this.#dir}/conf.tmp`;
    Deno.writeTextFileSync(tmp, [...this.#conf.values()].map((l) => `${l}\n`).join(""));
    Deno.renameSync(tmp, `${this.#dir}/conf`);
  }

  #send(line: string): void {
    try {
      this.#ctl?.writeSync(_encoder.encode(line));
    } catch { /* the check replaces a dead writer; it reads conf at start */ }
  }
}

/** Resident memory of a process in KiB (`VmRSS`), or null. */
function _rss(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return match?.[1] !== undefined ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

function _mkfifo(path: string): void {
  const made = new Deno.Command("mkfifo", { args: ["-m", "0600", path], stderr: "piped" })
    .outputSync();
  if (!made.success && !_isFifo(path)) {
    throw new Error(`log writer: mkfifo ${path}: ${new TextDecoder().decode(made.stderr).trim()}`);
  }
}

function _isFifo(path: string): boolean {
  try {
    return Deno.statSync(path).isFifo === true;
  } catch {
    return false;
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
