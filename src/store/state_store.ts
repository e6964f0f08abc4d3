/**
 * Durable node state (`${dir}/state.json`) and the lock that keeps two agents off one state
 * directory.
 *
 * A save is crash-safe: the JSON goes to a temp file in the same directory, which is fsynced,
 * renamed over `state.json`, and then the directory itself is fsynced (Deno can open a
 * directory read-only and `sync()` it on Linux), so after a crash the file is either the old
 * or the new state, never a mix. A load never guesses: a file that is not exactly a version-1
 * {@linkcode PersistedState} is reported as an error saying what was expected and found.
 *
 * @example
 * ```ts
 * const release = await acquireLock("/var/lib/baton");
 * const store = new StateStore("/var/lib/baton");
 * const loaded = await store.load();
 * if (!loaded.ok) throw new Error(loaded.error);
 * await store.save({
 *   version: 1, node: "a", epoch: 1, role: "active", roleSeq: 1, maintenance: false,
 *   failedReason: null,
 *   apps: {},
 * });
 * release();
 * ```
 *
 * @module
 */
import { z } from "zod";
import type { PersistedState } from "../core/types.ts";
import { isSameProcess, readProcStat } from "../supervisor/proc.ts";

const _persistedAppSchema = z.strictObject({
  pid: z.number().int().positive(),
  startTime: z.number().int().nonnegative(),
  specHash: z.string(),
  restarts: z.number().int().nonnegative(),
});

/** Schema of `state.json`: exactly {@linkcode PersistedState}, unknown keys refused. */
export const persistedStateSchema = z.strictObject({
  version: z.literal(1),
  node: z.string().min(1),
  epoch: z.number().int().nonnegative(),
  role: z.enum(["standby", "active", "failed"]),
  roleSeq: z.number().int().nonnegative(),
  maintenance: z.boolean(),
  failedReason: z.string().nullable(),
  apps: z.record(z.string(), _persistedAppSchema),
}) satisfies z.ZodType<PersistedState>;

/** Result of {@linkcode StateStore.load}: state null = no state file yet (first boot). */
export type LoadResult = { ok: true; state: PersistedState | null } | { ok: false; error: string };

/**
 * Where the agent keeps its durable state: {@linkcode StateStore} on disk, `MemoryStateStore`
 * (memory_store.ts) in the simulation. Both pass the contract suite of
 * `tests/state_store_contract_test.ts`.
 */
export interface StateStorage {
  /** The persisted state; `state: null` when none was ever saved. Never guesses. */
  load(): Promise<LoadResult>;
  /** Save atomically; saves complete in call order. Rejects on an invalid state or I/O error. */
  save(state: PersistedState): Promise<void>;
  /** Become the only agent using this storage; throws "another agent ..." if one does. */
  lock(): Promise<() => void>;
}

/**
 * Reads and writes `${dir}/state.json`.
 *
 * @example
 * ```ts
 * const store = new StateStore("/var/lib/baton");
 * const r = await store.load(); // { ok: true, state: null } on first boot
 * ```
 */
export class StateStore implements StateStorage {
  /** The state directory. */
  readonly dir: string;
  /** Path of the state file. */
  readonly path: string;
  #chain: Promise<void> = Promise.resolve();
  #tmpCounter = 0;

  /** A store for the state directory `dir` (created 0700 on first save). */
  constructor(dir: string) {
    this.dir = dir.replace(/(.)\/+$/, "$1");
    this.path = `${this.dir}/state.json`;
  }

  /**
   * Reads the state file. Missing file → `{ok: true, state: null}`; unreadable, not JSON,
   * wrong version or wrong shape → `{ok: false, error}` saying what was expected and found.
   */
  async load(): Promise<LoadResult> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return { ok: true, state: null };
      return { ok: false, error: `state file ${this.path}: cannot read it: ${_message(error)}` };
    }
    return parseState(text, this.path);
  }

  /**
   * Writes `state` atomically and durably (temp file, fsync, rename, fsync of the directory).
   * Saves run one after another in call order. Throws if `state` is not a valid
   * {@linkcode PersistedState} (a bug in the caller) or on an I/O error.
   */
  save(state: PersistedState): Promise<void> {
    const run = this.#chain.then(() => this.#save(state));
    this.#chain = run.catch(() => {});
    return run;
  }

  /** {@linkcode acquireLock} on the state directory. */
  lock(): Promise<() => void> {
    return acquireLock(this.dir);
  }

  async #save(state: PersistedState): Promise<void> {
    const checked = persistedStateSchema.safeParse(state);
    if (!checked.success) {
      throw new Error(
        `state to save: expected a version-1 PersistedState, found ${_issues(checked.error)}`,
      );
    }
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const data = new TextEncoder().encode(JSON.stringify(state, null, 2) + "\n");
    const tmp = `${this.dir}/.state.json.tmp-${Deno.pid}-${this.#tmpCounter++}`;
    try {
      const file = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
      try {
        let written = 0;
        while (written < data.length) written += await file.write(data.subarray(written));
        await file.sync();
      } finally {
        file.close();
      }
      await Deno.rename(tmp, this.path);
    } catch (error) {
      await Deno.remove(tmp).catch(() => {});
      throw new Error(`state file ${this.path}: cannot save it: ${_message(error)}`);
    }
    const dirFile = await Deno.open(this.dir, { read: true });
    try {
      await dirFile.sync();
    } finally {
      dirFile.close();
    }
  }
}

/**
 * Parses the text of a state file (`source` names it in errors).
 *
 * @example
 * ```ts
 * parseState("{}", "state.json");
 * // → { ok: false, error: "state file state.json: expected version 1, found no version field" }
 * ```
 */
export function parseState(text: string, source: string): LoadResult {
  const where = `state file ${source}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const found = text.trim() === "" ? "an empty file" : `invalid JSON (${_message(error)})`;
    return {
      ok: false,
      error: `${where}: expected a JSON object written by baton, found ${found}; ` +
        `refusing to guess the node state (fix or remove the file)`,
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const found = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    return { ok: false, error: `${where}: expected a JSON object, found ${found}` };
  }
  const version = (value as Record<string, unknown>)["version"];
  if (version !== 1) {
    const found = version === undefined ? "no version field" : `version ${JSON.stringify(version)}`;
    return { ok: false, error: `${where}: expected version 1, found ${found}` };
  }
  const checked = persistedStateSchema.safeParse(value);
  if (!checked.success) {
    return {
      ok: false,
      error: `${where}: expected a version-1 node state, found ${_issues(checked.error)}`,
    };
  }
  return { ok: true, state: checked.data };
}

/**
 * Makes this process the only agent using the state directory `dir` (created 0700 if
 * missing). The lock is an exclusive `flock` on `${dir}/agent.pid`, which also records our
 * PID and /proc start time for operators; the kernel drops the lock if the agent dies. Throws
 * "another agent (pid N) uses this state directory ..." when a live agent holds it. Returns
 * the release function.
 *
 * @example
 * ```ts
 * const release = await acquireLock("/var/lib/baton");
 * try {
 *   // ... read and write the state directory ...
 * } finally {
 *   release();
 * }
 * ```
 */
export async function acquireLock(dir: string): Promise<() => void> {
  const base = dir.replace(/(.)\/+$/, "$1");
  await Deno.mkdir(base, { recursive: true, mode: 0o700 });
  const path = `${base}/agent.pid`;
  const busy = (pid: number | null) =>
    new Error(
      `another agent (pid ${pid ?? "unknown"}) uses this state directory ${base} ` +
        `(lock file ${path})`,
    );
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    if (!(await file.tryLock(true))) throw busy(_readOwner(path)?.pid ?? null);
    // The path must still be the inode we locked (not unlinked and recreated meanwhile).
    const [held, current] = [await file.stat(), await Deno.stat(path)];
    if (held.ino !== current.ino || held.dev !== current.dev) throw busy(null);
    // Belt and braces: a live owner recorded in the file that does not hold the lock.
    const owner = _readOwner(path);
    if (owner !== null && owner.pid !== Deno.pid && isSameProcess(owner.pid, owner.startTime)) {
      throw busy(owner.pid);
    }
    const me = readProcStat(Deno.pid);
    const data = new TextEncoder().encode(
      JSON.stringify({ pid: Deno.pid, startTime: me?.startTime ?? 0 }) + "\n",
    );
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    let written = 0;
    while (written < data.length) written += await file.write(data.subarray(written));
    await file.sync();
  } catch (error) {
    file.close();
    throw error;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    try {
      file.truncateSync(0);
    } finally {
      file.close();
    }
  };
}

function _readOwner(path: string): { pid: number; startTime: number } | null {
  try {
    const value = JSON.parse(Deno.readTextFileSync(path));
    if (Number.isInteger(value?.pid) && Number.isInteger(value?.startTime)) {
      return { pid: value.pid, startTime: value.startTime };
    }
  } catch {
    // Empty or garbled: no recorded owner.
  }
  return null;
}

function _issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}

function _message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
