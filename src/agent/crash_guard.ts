/**
 * The agent's last line of defence against its own bugs and hostile input: an error nobody
 * caught (a rejected promise, an exception thrown from a timer or a signal handler) is logged
 * and the agent keeps running, because an agent that dies leaves its lease to run out and its
 * apps to move. Only a {@linkcode FatalAgentError} stops it: a condition under which running
 * on would be unsafe (the state directory lock is lost, so another agent may own this node).
 *
 * @module
 */

/** An error that must stop the agent (it exits, apps keep running, systemd restarts it). */
export class FatalAgentError extends Error {
  /** Build one; `message` says what was lost and why going on is unsafe. */
  constructor(message: string) {
    super(message);
    this.name = "FatalAgentError";
  }
}

/** What the guard does with an uncaught error. */
export interface CrashGuardOptions {
  /** A line for the log (and the event log, if the caller wants). */
  log: (line: string) => void;
  /** Called once per fatal error; the caller stops the agent. */
  onFatal: (err: FatalAgentError) => void;
}

/**
 * Install global `unhandledrejection` and `error` handlers. Returns the function that removes
 * them.
 *
 * @example
 * ```ts
 * const uninstall = installCrashGuard({ log: console.error, onFatal: () => Deno.exit(1) });
 * Promise.reject(new Error("boom")); // logged, the process keeps running
 * uninstall();
 * ```
 */
export function installCrashGuard(opts: CrashGuardOptions): () => void {
  const handle = (err: unknown, what: string) => {
    if (err instanceof FatalAgentError) {
      opts.log(`baton: fatal: ${err.message}`);
      opts.onFatal(err);
      return;
    }
    const text = err instanceof Error ? `${err.message}\n${err.stack ?? ""}`.trim() : String(err);
    opts.log(`baton: ${what} (the agent keeps running): ${text}`);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    handle(e.reason, "unhandled rejection");
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    handle(e.error ?? e.message, "uncaught exception");
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

/**
 * Throws a {@linkcode FatalAgentError} unless `${dir}/agent.pid` still names this process:
 * the file was removed or another agent took the directory, so this one no longer owns the
 * node's state.
 *
 * @example
 * ```ts
 * await checkLockHeld("/var/lib/baton"); // resolves while the lock file names Deno.pid
 * ```
 */
export async function checkLockHeld(dir: string, pid = Deno.pid): Promise<void> {
  const path = `${dir.replace(/(.)\/+$/, "$1")}/agent.pid`;
  let owner: unknown;
  try {
    owner = JSON.parse(await Deno.readTextFile(path))?.pid;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new FatalAgentError(`state directory lock ${path} is gone: another agent may own it`);
    }
    return; // unreadable for a moment (being rewritten): not proof of a lost lock
  }
  if (owner !== pid) {
    throw new FatalAgentError(
      `state directory lock ${path} names pid ${owner}, not this agent (${pid}): ` +
        `another agent owns this state directory`,
    );
  }
}
