/**
 * What `spawn` checks before it starts anything: the app name and command, the working
 * directory, the program in PATH and the log file. The launcher's shell would report a missing
 * command only in the app's log, so it is found here first and rejected with a clear error.
 *
 * @module
 */
import { agentUser, appEnvironment } from "./app_env.ts";
import { privilegePrefix } from "./drop_privileges.ts";
import type { SpawnSpec } from "./process_runner.ts";

/** dash's PATH when none is set. */
const _DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What a checked spawn starts with. */
export interface Preflight {
  /** The working directory (the spec's, else the agent's). */
  cwd: string;
  /** The app's whole environment (app_env.ts), never the agent's. */
  env: Record<string, string>;
  /** The `setpriv` prefix of `runAs` (empty: run as the agent's user). */
  dropTo: string[];
  /** The app's log file (exists now). */
  logPath: string;
}

/** Checks a spawn spec and prepares its environment; rejects with what is wrong. */
export async function preflight(spec: SpawnSpec): Promise<Preflight> {
  const what = `cannot start app "${spec.app}"`;
  if (spec.app === "" || spec.app.includes("/") || spec.app === "." || spec.app === "..") {
    throw new Error(`${what}: expected an app name usable as a file name, found "${spec.app}"`);
  }
  const program = spec.command[0];
  if (program === undefined || program === "") {
    throw new Error(`${what}: expected a non-empty command, found ${JSON.stringify(spec.command)}`);
  }
  const cwd = spec.cwd ?? Deno.cwd();
  const env = appEnvironment({
    agentEnv: Deno.env.toObject(),
    inherit: spec.inheritEnv ?? [],
    user: spec.runAs ?? agentUser(),
    env: spec.env,
  });
  let dropTo: string[];
  try {
    dropTo = privilegePrefix(spec.runAs, Deno.uid());
  } catch (error) {
    throw new Error(`${what}: ${errorMessage(error)}`);
  }
  const pathVar = env["PATH"] ?? _DEFAULT_PATH;
  const logPath = `${spec.logDir.replace(/\/+$/, "")}/${spec.app}.log`;
  // The three checks at once: each is a file-system round trip, and a restart waits for them.
  const [badCwd, badProgram, badLog] = await Promise.all([
    _checkDirectory(cwd, `${what}: working directory`).then(() => null, (e: Error) => e),
    _findExecutable(program, cwd, pathVar),
    _openLog(spec.logDir, logPath, what),
  ]);
  if (badCwd !== null) throw badCwd;
  if (badProgram !== null) throw new Error(`${what}: ${badProgram}`);
  if (badLog !== null) throw badLog;
  return { cwd, env, dropTo, logPath };
}

/** An error's message (or the thrown value as text). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function _checkDirectory(path: string, what: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new Error(
      `${what} ${path}: expected an existing directory, found ${errorMessage(error)}`,
    );
  }
  if (!info.isDirectory) {
    throw new Error(`${what} ${path}: expected a directory, found a file`);
  }
}

/** Creates the log file (and its directory if missing); the error, or null. */
async function _openLog(logDir: string, logPath: string, what: string): Promise<Error | null> {
  const open = async () => {
    const file = await Deno.open(logPath, { append: true, create: true, mode: 0o640 });
    file.close();
  };
  try {
    await open();
    return null;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return new Error(`${what}: cannot open log file ${logPath}: ${errorMessage(error)}`);
    }
  }
  try {
    await Deno.mkdir(logDir, { recursive: true });
  } catch (error) {
    return new Error(`${what}: cannot create log directory ${logDir}: ${errorMessage(error)}`);
  }
  try {
    await open();
    return null;
  } catch (error) {
    return new Error(`${what}: cannot open log file ${logPath}: ${errorMessage(error)}`);
  }
}

/** Returns null if `program` resolves to an executable file, else what is wrong with it. */
async function _findExecutable(
  program: string,
  cwd: string,
  pathVar: string,
): Promise<string | null> {
  const isExecutable = async (path: string) => {
    try {
      const info = await Deno.stat(path);
      return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
    } catch {
      return false;
    }
  };
  if (program.includes("/")) {
    const path = program.startsWith("/") ? program : `${cwd}/${program}`;
    if (await isExecutable(path)) return null;
    return `command "${program}" not found or not executable (looked at ${path})`;
  }
  // Every PATH entry at once; the first executable in PATH order wins, as for the shell.
  const found = await Promise.all(
    pathVar.split(":").map((dir) => {
      const base = dir === "" ? cwd : dir.startsWith("/") ? dir : `${cwd}/${dir}`;
      return isExecutable(`${base}/${program}`);
    }),
  );
  if (found.includes(true)) return null;
  return `command "${program}" not found in PATH (${pathVar})`;
}
