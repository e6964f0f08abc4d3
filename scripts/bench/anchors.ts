/**
 * The anchors: supervisord and monit run as the benchmarks' reference points, each in its own
 * temporary directory with its own config file, socket, pid and state files (never the system
 * ones), plus detection of the installed tools and their versions. Nothing here installs
 * anything: a missing tool is reported and its anchor skipped.
 *
 * @module
 */
import { errText, run, sleep, type Tools } from "./common.ts";
import { findProcs, isLive, type ProcMatcher } from "./proc_watch.ts";

/** The Debian packages the anchors come from, as documented in docs/benchmarks.md. */
export const INSTALL_COMMAND =
  "apt-get update && apt-get install -y supervisor monit keepalived stress-ng";

/** Absolute path of a program in PATH (plus the sbin directories), or null. */
export async function which(program: string): Promise<string | null> {
  const path = `${Deno.env.get("PATH") ?? ""}:/usr/local/sbin:/usr/sbin:/sbin`;
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    try {
      const info = await Deno.stat(`${dir}/${program}`);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) {
        return `${dir}/${program}`;
      }
    } catch { /* not here */ }
  }
  return null;
}

/** Find every tool the benchmarks can use. */
export async function detectTools(): Promise<Tools> {
  return {
    supervisord: await which("supervisord"),
    monit: await which("monit"),
    keepalived: await which("keepalived"),
    stressNg: await which("stress-ng"),
    ip: await which("ip"),
  };
}

/** Why an anchor is skipped, or null when its tool is there. */
export function missing(tool: string | null, name: string, pkg: string): string | null {
  return tool === null
    ? `${name} not installed (\`${name}\` not in PATH; Debian package \`${pkg}\`): anchor skipped`
    : null;
}

/** First line of a command's version output, or "not installed". */
export async function versionOf(cmd: string[] | null): Promise<string> {
  if (cmd === null) return "not installed";
  try {
    const r = await run(cmd, { check: false });
    const line = (r.stdout + "\n" + r.stderr).split("\n").map((l) => l.trim()).find((l) =>
      l !== ""
    );
    return line ?? "unknown";
  } catch (err) {
    return `unknown (${errText(err)})`;
  }
}

/** Quote one argument for supervisord's shlex-style `command=` line. */
function _q(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`;
}

/** A program supervisord runs. */
export interface SupervisedProgram {
  name: string;
  command: string[];
}

/** supervisord with its own config (autorestart, startsecs=0) and unix socket in `dir`. */
export class Supervisord {
  readonly dir: string;
  readonly conf: string;
  readonly child: Deno.ChildProcess;
  readonly commandLine: string;

  private constructor(dir: string, conf: string, child: Deno.ChildProcess, commandLine: string) {
    this.dir = dir;
    this.conf = conf;
    this.child = child;
    this.commandLine = commandLine;
  }

  /** Write the config and start `supervisord -n -c conf`. */
  static async start(bin: string, programs: SupervisedProgram[]): Promise<Supervisord> {
    const dir = await Deno.makeTempDir({ prefix: "bench-supervisord-" });
    const conf = `${dir}/supervisord.conf`;
    const lines = [
      "[unix_http_server]",
      `file=${dir}/supervisor.sock`,
      "",
      "[supervisord]",
      `logfile=${dir}/supervisord.log`,
      `pidfile=${dir}/supervisord.pid`,
      `childlogdir=${dir}`,
      "nodaemon=true",
      "user=root",
      "",
      "[rpcinterface:supervisor]",
      "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
      "",
      "[supervisorctl]",
      `serverurl=unix://${dir}/supervisor.sock`,
      "",
    ];
    for (const p of programs) {
      lines.push(
        `[program:${p.name}]`,
        `command=${p.command.map(_q).join(" ")}`,
        "autorestart=true",
        "startsecs=0",
        "startretries=1000000",
        "stdout_logfile=NONE",
        "stderr_logfile=NONE",
        "",
      );
    }
    await Deno.writeTextFile(conf, lines.join("\n"));
    const child = new Deno.Command(bin, {
      args: ["-n", "-c", conf],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    return new Supervisord(dir, conf, child, `${bin} -n -c ${conf}`);
  }

  /** SIGTERM supervisord (it stops its programs), SIGKILL after 10 s; remove the dir. */
  async stop(leftovers: ProcMatcher[] = []): Promise<void> {
    await _stopChild(this.child, 10_000);
    for (const m of leftovers) for (const pid of findProcs(m)) _kill(pid);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** One `check process` of monit: started through a wrapper that writes its pidfile. */
export interface MonitProcess {
  name: string;
  command: string[];
  /** Extra lines inside the check (e.g. `if failed port … then restart`). */
  extra?: string[];
}

/** monit in the foreground (`-I`) with its own control file (0600), `set daemon 1`. */
export class Monit {
  readonly dir: string;
  readonly rc: string;
  readonly child: Deno.ChildProcess;
  readonly commandLine: string;
  readonly pidfiles: string[];

  private constructor(
    dir: string,
    rc: string,
    child: Deno.ChildProcess,
    commandLine: string,
    pidfiles: string[],
  ) {
    this.dir = dir;
    this.rc = rc;
    this.child = child;
    this.commandLine = commandLine;
    this.pidfiles = pidfiles;
  }

  /**
   * Write the control file and one start/stop wrapper per process: the start wrapper runs
   * `sh -c 'echo $$ > pidfile; exec CMD'` in the background (monit needs a pidfile), the stop
   * wrapper sends SIGKILL to the pid in the pidfile.
   */
  static async start(bin: string, processes: MonitProcess[]): Promise<Monit> {
    const dir = await Deno.makeTempDir({ prefix: "bench-monit-" });
    const rc = `${dir}/monitrc`;
    const lines = [
      "set daemon 1",
      `set log ${dir}/monit.log`,
      `set pidfile ${dir}/monit.pid`,
      `set idfile ${dir}/monit.id`,
      `set statefile ${dir}/monit.state`,
      "",
    ];
    const pidfiles: string[] = [];
    for (const p of processes) {
      const pidfile = `${dir}/${p.name}.pid`;
      pidfiles.push(pidfile);
      const start = `${dir}/start-${p.name}.sh`;
      const stop = `${dir}/stop-${p.name}.sh`;
      const cmd = p.command.map(_shq).join(" ");
      await Deno.writeTextFile(
        start,
        `#!/bin/sh\n/bin/sh -c 'echo $$ > ${pidfile}; exec "$@"' monit-start ${cmd} ` +
          `</dev/null >>${dir}/${p.name}.log 2>&1 &\n`,
        { mode: 0o755 },
      );
      await Deno.writeTextFile(
        stop,
        `#!/bin/sh\n[ -f ${pidfile} ] && kill -KILL "$(cat ${pidfile})" 2>/dev/null\nexit 0\n`,
        { mode: 0o755 },
      );
      lines.push(
        `check process ${p.name} with pidfile ${pidfile}`,
        // The start timeout also bounds how long monit pauses connection tests after a start.
        `  start program = "${start}" with timeout 2 seconds`,
        `  stop program = "${stop}"`,
        ...(p.extra ?? []).map((l) => `  ${l}`),
        "",
      );
    }
    await Deno.writeTextFile(rc, lines.join("\n"));
    await Deno.chmod(rc, 0o600);
    const child = new Deno.Command(bin, {
      args: ["-I", "-c", rc],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    return new Monit(dir, rc, child, `${bin} -I -c ${rc}`, pidfiles);
  }

  /** Stop monit (SIGTERM, SIGKILL after 5 s), then SIGKILL every process it started. */
  async stop(leftovers: ProcMatcher[] = []): Promise<void> {
    await _stopChild(this.child, 5_000);
    for (const f of this.pidfiles) {
      try {
        _kill(Number((await Deno.readTextFile(f)).trim()));
      } catch { /* no pidfile */ }
    }
    for (const m of leftovers) for (const pid of findProcs(m)) _kill(pid);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Single-quote for /bin/sh. */
function _shq(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`;
}

function _kill(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

/** SIGTERM a child, SIGKILL it after `graceMs`, and wait for it. */
async function _stopChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, graceMs);
  await child.status;
  clearTimeout(timer);
  await sleep(0);
  if (isLive(child.pid)) _kill(child.pid);
}
