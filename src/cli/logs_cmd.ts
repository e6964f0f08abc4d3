/**
 * `baton logs APP [-f] [-n N] [--state-dir DIR]`: an app's output on this node, read from
 * `<stateDir>/logs/<app>.log` and its rotated files (`.1` is the newest of those), so it works
 * with the agent stopped too. `-n` prints the last N lines (default 10), taken across rotated
 * files when the current one has fewer; `-f` then keeps printing what is appended, and follows
 * the file across a rotation (it finishes the renamed file, then opens the new one).
 *
 * The state directory is `--state-dir`, else `$BATON_STATE_DIR`, else `/var/lib/baton/<node>`
 * (the node from `--node`, `$BATON_NODE`, or the manifest and this host's name), as for
 * `baton run`, or `/var/lib/baton` where the shipped systemd unit runs the agent
 * ({@linkcode systemStateDir}).
 *
 * @module
 */
import type { Command } from "@commander-js/extra-typings";
import { loadManifestFile, resolveNodeName } from "../manifest/load.ts";
import { exists } from "./common.ts";
import { MANIFEST_HELP, manifestPath } from "./manifest_path.ts";

/** Options of {@linkcode runLogs}. */
export interface LogsOptions {
  /** Lines to print first. */
  lines: number;
  /** Keep printing what is appended. */
  follow: boolean;
  /** Poll interval while following (default 200 ms). */
  pollMs?: number;
  /** Where the lines go (default stdout). */
  write?: (text: string) => void;
  /** Stops following when aborted. */
  signal?: AbortSignal;
}

/**
 * Registers `baton logs` on the program.
 *
 * @example
 * ```ts
 * import { Command } from "@commander-js/extra-typings";
 * addLogsCommand(new Command());
 * ```
 */
export function addLogsCommand(program: Command): void {
  program.command("logs")
    .description("an app's output on this node (<state-dir>/logs/<app>.log and rotated files)")
    .argument("<app>", "the app")
    .option("-n, --lines <n>", "the last N lines", "10")
    .option("-f, --follow", "keep printing what is appended")
    .option(
      "-s, --state-dir <dir>",
      "state directory (default: $BATON_STATE_DIR, /var/lib/baton/<node>, or /var/lib/baton " +
        "as the systemd unit runs it)",
    )
    .option("-m, --manifest <file>", MANIFEST_HELP)
    .option("--node <name>", "this node's name (default: $BATON_NODE or the host name)")
    .action(async (app, opts) => {
      const lines = Number(opts.lines);
      if (!Number.isInteger(lines) || lines < 0) {
        throw new Error(`-n: expected a whole number, found "${opts.lines}"`);
      }
      const stateDir = opts.stateDir ?? Deno.env.get("BATON_STATE_DIR") ??
        await systemStateDir(await _node(opts.node, opts.manifest));
      await runLogs(`${stateDir.replace(/\/+$/, "")}/logs`, app, {
        lines,
        follow: opts.follow === true,
      });
    });
}

/**
 * The state directory of an agent started without `--state-dir` (`/var/lib/baton/<node>`), or
 * else that of the shipped systemd unit (`--state-dir /var/lib/baton`, its `StateDirectory`),
 * when that one holds an agent's files and the first does not.
 *
 * @example
 * ```ts
 * await systemStateDir("alpha"); // "/var/lib/baton/alpha", or "/var/lib/baton" under the unit
 * ```
 */
export async function systemStateDir(node: string, root = "/var/lib/baton"): Promise<string> {
  const own = `${root}/${node}`;
  if (!(await exists(`${own}/agent.pid`)) && (await exists(`${root}/agent.pid`))) return root;
  return own;
}

/**
 * Prints the last `lines` lines of the app's log in `logDir`, then follows it if asked.
 * Throws when the app has no log there.
 *
 * @example
 * ```ts
 * await runLogs("/var/lib/baton/alpha/logs", "web", { lines: 5, follow: false });
 * ```
 */
export async function runLogs(logDir: string, app: string, options: LogsOptions): Promise<void> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(app)) {
    throw new Error(`expected an app name, found "${app}"`);
  }
  const path = `${logDir}/${app}.log`;
  const write = options.write ?? ((text: string) => Deno.stdout.writeSync(_encoder.encode(text)));
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    throw new Error(`no log for app "${app}" in ${logDir} (expected ${app}.log)`);
  }
  try {
    const size = (await file.stat()).size;
    const text = tailLines([...rotatedFiles(logDir, app), path], options.lines, size);
    if (text !== "") write(text);
    if (!options.follow) return;
    await file.seek(size, Deno.SeekMode.Start);
    await _follow(file, path, write, options);
  } finally {
    try {
      file.close();
    } catch { /* closed */ }
  }
}

/** The rotated files of an app, oldest first (`.K` … `.1`). */
export function rotatedFiles(logDir: string, app: string): string[] {
  const found: number[] = [];
  try {
    for (const e of Deno.readDirSync(logDir)) {
      if (!e.name.startsWith(`${app}.log.`)) continue;
      const n = e.name.slice(app.length + 5);
      if (/^\d+$/.test(n)) found.push(Number(n));
    }
  } catch { /* no directory */ }
  return found.sort((a, b) => b - a).map((n) => `${logDir}/${app}.log.${n}`);
}

/**
 * The last `n` lines of the concatenation of `files` (oldest first), reading from the end in
 * blocks (a log without rotation may be large). The last file is read only up to `lastSize`.
 *
 * @example
 * ```ts
 * tailLines(["/var/lib/baton/alpha/logs/web.log"], 5, 1_000_000);
 * ```
 */
export function tailLines(files: string[], n: number, lastSize: number): string {
  if (n === 0) return "";
  const parts: Uint8Array[] = [];
  let newlines = 0;
  for (let f = files.length - 1; f >= 0 && newlines <= n; f--) {
    let fd: Deno.FsFile;
    try {
      fd = Deno.openSync(files[f]!, { read: true });
    } catch {
      continue;
    }
    try {
      let end = f === files.length - 1 ? lastSize : fd.statSync().size;
      while (end > 0 && newlines <= n) {
        const start = Math.max(0, end - 65536);
        const block = new Uint8Array(end - start);
        fd.seekSync(start, Deno.SeekMode.Start);
        let got = 0;
        while (got < block.length) {
          const r = fd.readSync(block.subarray(got));
          if (r === null || r === 0) break;
          got += r;
        }
        parts.unshift(block.subarray(0, got));
        for (const byte of block.subarray(0, got)) if (byte === 10) newlines++;
        end = start;
      }
    } finally {
      fd.close();
    }
  }
  const text = new TextDecoder().decode(_concat(parts));
  const lines = text.split("\n");
  const trailing = lines.at(-1) === "" ? lines.pop() : undefined;
  return lines.slice(-n).join("\n") + (trailing !== undefined ? "\n" : "");
}

async function _follow(
  first: Deno.FsFile,
  path: string,
  write: (text: string) => void,
  options: LogsOptions,
): Promise<void> {
  let file = first;
  const buf = new Uint8Array(65536);
  const decoder = new TextDecoder();
  while (!options.signal?.aborted) {
    const r = await file.read(buf);
    if (r !== null && r > 0) {
      write(decoder.decode(buf.subarray(0, r), { stream: true }));
      continue;
    }
    // At the end: rotated away (another file at the path now)? Then that one, from its start.
    let current: Deno.FileInfo | null = null;
    try {
      current = await Deno.stat(path);
    } catch { /* between the renames */ }
    const mine = await file.stat();
    if (current !== null && current.ino !== mine.ino) {
      // The writer finished the old file before renaming it: read what is left of it first.
      for (let r2 = await file.read(buf); r2 !== null && r2 > 0; r2 = await file.read(buf)) {
        write(decoder.decode(buf.subarray(0, r2), { stream: true }));
      }
      if (file !== first) file.close();
      file = await Deno.open(path, { read: true });
      continue;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
  if (file !== first) file.close();
}

/** The node for the default state directory: flag, $BATON_NODE, or the manifest + host name. */
async function _node(flag: string | undefined, manifest: string | undefined): Promise<string> {
  if (flag !== undefined) return flag;
  const env = Deno.env.get("BATON_NODE");
  if (env !== undefined && env !== "") return env;
  const loaded = await loadManifestFile(manifestPath(manifest)).catch(() => null);
  if (loaded?.ok) {
    const r = resolveNodeName(loaded.manifest, undefined, undefined, Deno.hostname());
    if (r.ok) return r.node;
  }
  return Deno.hostname();
}

function _concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const _encoder = new TextEncoder();
