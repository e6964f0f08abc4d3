/**
 * The truth about app processes, read from /proc rather than from any agent: which copies of
 * each sample app exist right now, with their PID, port, and the node that started them
 * (`BATON_NODE` in their environment, set by the agent). All network namespaces share one PID
 * namespace, so this sees the apps of every simulated host.
 *
 * @example
 * ```ts
 * const procs = findAppProcesses((p) => p.port === 18081);
 * console.log(procs.map((p) => `${p.app} pid ${p.pid} on ${p.node}`));
 * ```
 *
 * @module
 */

/** One live app process (or its launcher shell about to `exec` it). */
export interface AppProcess {
  pid: number;
  /** `--name` argument. */
  app: string;
  /** `--port` argument, if any. */
  port: number | null;
  /** `BATON_NODE` from its environment, if set. */
  node: string | null;
  /** Its environment (as it was at exec). */
  env: Record<string, string>;
  /** Full argv. */
  argv: string[];
}

const dec = new TextDecoder();

/** Whether a process exists and is not a zombie. */
export function isLive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X" && state !== "";
  } catch {
    return false;
  }
}

function argAfter(argv: string[], flag: string): string | null {
  const i = argv.indexOf(flag);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] ?? null : null;
}

function envOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  try {
    for (const e of dec.decode(Deno.readFileSync(`/proc/${pid}/environ`)).split("\0")) {
      const i = e.indexOf("=");
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
    }
  } catch { /* gone */ }
  return env;
}

/**
 * Every live process whose argv has an element ending in one of `scripts` (default the
 * sample app) and a `--name`, filtered by `keep`.
 */
export function findAppProcesses(
  keep: (p: AppProcess) => boolean = () => true,
  scripts: string[] = ["sample_app.ts"],
): AppProcess[] {
  const found: AppProcess[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    let argv: string[];
    try {
      argv = dec.decode(Deno.readFileSync(`/proc/${pid}/cmdline`)).split("\0");
    } catch {
      continue;
    }
    if (!argv.some((a) => scripts.some((s) => a.endsWith(s)))) continue;
    const app = argAfter(argv, "--name");
    if (app === null) continue;
    const portText = argAfter(argv, "--port");
    const env = envOf(pid);
    const p: AppProcess = {
      pid,
      app,
      port: portText === null ? null : Number(portText),
      node: env["BATON_NODE"] ?? null,
      env,
      argv,
    };
    if (!keep(p) || !isLive(pid)) continue;
    found.push(p);
  }
  return found;
}

/** Group processes by app name: app → list of where each copy runs (`where(p)`). */
export function byApp<P extends AppProcess>(
  procs: P[],
  where: (p: P) => string,
): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const p of procs) {
    const list = m.get(p.app) ?? [];
    list.push(where(p));
    m.set(p.app, list);
  }
  return m;
}
