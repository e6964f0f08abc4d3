/**
 * Runs fence commands (the driver of `src/core/survivor_fence.ts`, and of the self-fencing
 * `cluster.fence`): in their own session and process group, bounded by a timeout after which the
 * whole group is SIGKILLed, with their output kept out of every place an operator's tools or the
 * network can read. What comes back is a {@linkcode FenceOutcome}: exit code, duration and a
 * redacted first line. The full output goes to a root-only (0600) file in the state directory
 * (`<stateDir>/fence/<node>.log`, in a 0700 directory), never the command line.
 *
 * `{node}`, `{url}` and `{credentials}` in a node's fence command are replaced by the node's name,
 * its URL and the absolute path of its `fenceCredentials` file: the command reads the secret
 * from the file (`ipmitool -f {credentials}`, `fence_ipmilan --password-script`), so it is never
 * on a command line `ps` shows.
 *
 * @module
 */
import type { FenceOutcome } from "../core/types.ts";
import type { NodeSpec } from "../manifest/types.ts";

/** Output kept in memory (and written to the log file) per attempt. */
const MAX_OUTPUT_BYTES = 256 * 1024;
/** Longest first line reported. */
const MAX_LINE = 120;
/** How long to wait for the output pipes once the command exited (a stray child may hold them). */
const DRAIN_MS = 1_000;

/**
 * The argv of `node`'s fence command with `{node}`, `{url}` and `{credentials}` substituted.
 *
 * @example
 * ```ts
 * fenceArgv({
 *   name: "alpha",
 *   url: "http://10.0.0.1:7401",
 *   priority: 0,
 *   fence: ["ipmitool", "-H", "bmc-{node}", "-f", "{credentials}", "power", "off"],
 *   fenceCredentials: "/etc/baton/bmc-alpha.pass",
 * }); // ["ipmitool", "-H", "bmc-alpha", "-f", "/etc/baton/bmc-alpha.pass", "power", "off"]
 * ```
 */
export function fenceArgv(node: NodeSpec): string[] {
  return (node.fence ?? []).map((arg) =>
    arg.replaceAll("{node}", node.name).replaceAll("{url}", node.url)
      .replaceAll("{credentials}", node.fenceCredentials ?? "")
  );
}

/**
 * The first non-empty line of `output`, without control characters, with every secret (the
 * credentials file's words, the command's arguments) and every `password=…`-like value replaced
 * by `***`, bounded to 120 characters.
 *
 * @example
 * ```ts
 * redactFirstLine("login as admin password=hunter2 failed\n", ["hunter2"]);
 * // "login as admin password=*** failed"
 * ```
 */
export function redactFirstLine(output: string, secrets: string[]): string {
  let line = output.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== "") ?? "";
  // deno-lint-ignore no-control-regex
  line = line.replace(/[\u0000-\u001f\u007f]/g, " ");
  const words = [...new Set(secrets.filter((s) => s.length >= 3))].sort((a, b) =>
    b.length - a.length
  );
  for (const w of words) line = line.replaceAll(w, "***");
  line = line.replace(
    /\b(pass(?:word|wd)?|secret|token|key|auth|credentials?)(\s*[=:]\s*|\s+)(\S+)/gi,
    (_m, k: string, sep: string) => `${k}${sep}***`,
  );
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 1)}…` : line;
}

/** Options of {@linkcode runFenceCommand}. */
export interface FenceRunOptions {
  timeoutMs: number;
  /** Where the full output goes (created 0600, in a 0700 directory). */
  logFile: string;
  /** Strings never to report (credentials); the arguments are added, except `keep`. */
  secrets: string[];
  /** Arguments that are no secret (the node's name and URL). */
  keep?: string[];
  /** Label of the attempt in the log file. */
  label: string;
}

/**
 * Run one fence command: exit 0 within `timeoutMs` is success; on timeout its whole process
 * group is SIGKILLed. Never throws.
 *
 * @example
 * ```ts
 * const o = await runFenceCommand(["/bin/true"], {
 *   timeoutMs: 30_000,
 *   logFile: "/var/lib/baton/alpha/fence/beta.log",
 *   secrets: [],
 *   label: "beta attempt 1",
 * });
 * if (!o.ok) console.error(`fence failed: exit ${o.exitCode}`);
 * ```
 */
export async function runFenceCommand(
  argv: string[],
  opts: FenceRunOptions,
): Promise<FenceOutcome> {
  const started = performance.now();
  const done = (ok: boolean, exitCode: number | null, text: string, note = ""): FenceOutcome => {
    const durationMs = Math.round(performance.now() - started);
    _writeLog(opts.logFile, opts.label, exitCode, durationMs, note, text);
    const args = argv.slice(1).filter((a) => !(opts.keep ?? []).includes(a));
    const line = note !== "" ? note : redactFirstLine(text, [...opts.secrets, ...args]);
    return { ok, exitCode, durationMs, firstLine: line };
  };
  const [cmd, ...args] = argv;
  if (!cmd) return done(false, null, "", "no fence command");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true, // its own session and process group: a timeout kills all of it
    }).spawn();
  } catch (err) {
    return done(false, null, "", `cannot run the fence command: ${_errName(err)}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const readers = [child.stdout, child.stderr].map(async (stream) => {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (size < MAX_OUTPUT_BYTES) {
          chunks.push(value.subarray(0, MAX_OUTPUT_BYTES - size));
          size += value.length;
        }
      }
    } catch { /* cancelled */ }
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    for (const target of [-child.pid, child.pid]) {
      try {
        Deno.kill(target, "SIGKILL");
      } catch { /* gone */ }
    }
  }, opts.timeoutMs);
  const status = await child.status;
  clearTimeout(timer);
  // A child that left the group may still hold the pipes: do not wait for it forever.
  const drained = Promise.all(readers);
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    drained,
    new Promise((resolve) => drainTimer = setTimeout(resolve, DRAIN_MS)),
  ]);
  clearTimeout(drainTimer);
  for (const s of [child.stdout, child.stderr]) s.cancel().catch(() => {});
  const text = new TextDecoder().decode(_concat(chunks));
  if (timedOut) {
    return done(false, null, text, `timed out after ${opts.timeoutMs} ms: process group killed`);
  }
  return done(status.success, status.code, text);
}

/**
 * Fence `node` with its manifest command (the default `fencePeer` of the agent).
 *
 * @example
 * ```ts
 * import type { NodeSpec } from "../manifest/types.ts";
 * declare const beta: NodeSpec;
 * const outcome = await fencePeer(beta, 30_000, "/var/lib/baton/alpha", 1);
 * ```
 */
export async function fencePeer(
  node: NodeSpec | undefined,
  timeoutMs: number,
  stateDir: string,
  attempt: number,
): Promise<FenceOutcome> {
  const logFile = `${stateDir}/fence/${node?.name ?? "unknown"}.log`;
  const label = `fence of ${node?.name ?? "?"}, attempt ${attempt}`;
  if (!node || !node.fence || node.fence.length === 0) {
    return { ok: false, exitCode: null, durationMs: 0, firstLine: "no fence command" };
  }
  const secrets: string[] = [];
  if (node.fenceCredentials) {
    try {
      secrets.push(...(await Deno.readTextFile(node.fenceCredentials)).split(/\s+/));
    } catch (err) {
      return {
        ok: false,
        exitCode: null,
        durationMs: 0,
        firstLine: `credentials file not readable (${_errName(err)})`,
      };
    }
  }
  return await runFenceCommand(fenceArgv(node), {
    timeoutMs,
    logFile,
    secrets,
    label,
    keep: [node.name, node.url],
  });
}

function _writeLog(
  file: string,
  label: string,
  exitCode: number | null,
  durationMs: number,
  note: string,
  text: string,
): void {
  try {
    const dir = file.slice(0, file.lastIndexOf("/"));
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700);
    const head = `--- ${new Date().toISOString()} ${label}: ${
      exitCode === null ? "no exit" : `exit ${exitCode}`
    } after ${durationMs} ms${note ? ` (${note})` : ""}\n`;
    Deno.writeTextFileSync(file, head + text + (text.endsWith("\n") || text === "" ? "" : "\n"), {
      append: true,
      mode: 0o600,
    });
    Deno.chmodSync(file, 0o600);
  } catch { /* the outcome is reported anyway */ }
}

function _concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** An error's class and message without paths of the command (a NotFound names the file). */
function _errName(err: unknown): string {
  return err instanceof Error ? err.name : "error";
}
