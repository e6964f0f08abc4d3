/**
 * Proof that the agent started a process: a per-spawn token. Before every spawn the agent
 * writes a fresh random token for the app into the state directory (`<stateDir>/spawns/
 * <app>.json`, mode 0600 in a 0700 directory) together with the uid the app will run as, and
 * hands the token to the app as `BATON_SPAWN_TOKEN`; once the app runs, its PID and start time
 * are written next to the token. At start the agent adopts (or kills as a duplicate) a process
 * it finds by its `BATON_*` variables only if its environment carries a token of that app's
 * ledger, it is owned by the uid recorded with that token, and, once the PID of that spawn is
 * recorded, it is that very PID and start time.
 *
 * Why this is enough: `BATON_APP/NODE/CLUSTER` are public (the status endpoint shows them),
 * the token is not. It is readable only by the agent's user (state directory) and in the app's
 * own `/proc/<pid>/environ`, which only root and the app's own user can read. A process of the
 * app's user that copies it can pass only in the milliseconds between the spawn and the
 * record of its PID, and such a process could `ptrace` the app anyway. Nothing here is
 * durable across a host crash, and nothing needs to be: the apps die with the host. A write
 * survives an agent crash (the page cache), so no fsync is needed before the spawn.
 *
 * @example
 * ```ts
 * const ledger = new SpawnLedger("/var/lib/baton/alpha/spawns");
 * const token = await ledger.issue("web", 0);
 * // ... spawn with BATON_SPAWN_TOKEN=token, then:
 * await ledger.record("web", token, 4242, 123456);
 * ledger.snapshot().proves("web", { pid: 4242, startTime: 123456, uid: 0, token });
 * ```
 *
 * @module
 */

/** Name of the variable that carries the token in the app's environment. */
export const SPAWN_TOKEN_ENV = "BATON_SPAWN_TOKEN";

/** Tokens kept per app: the last few spawns (a record lost by a crash is of the last one). */
const _KEEP = 8;

/** One spawn of an app, as written before (token, uid) and after (pid, startTime) it. */
export interface SpawnEntry {
  token: string;
  uid: number;
  pid: number | null;
  startTime: number | null;
}

/** What a process found in /proc shows of itself. */
export interface ProcessEvidence {
  pid: number;
  startTime: number;
  /** Real uid of the process (`/proc/<pid>/status`), null if unreadable. */
  uid: number | null;
  /** Its `BATON_SPAWN_TOKEN`, if any. */
  token: string | undefined;
}

/** The spawn ledgers of every app, read once (at start, for adoption). */
export class LedgerSnapshot {
  /** @param entries app → its recent spawns, newest last */
  constructor(readonly entries: ReadonlyMap<string, readonly SpawnEntry[]>) {}

  /**
   * Whether `p` is proven to be a process the agent started for `app`: its token is one of
   * the app's, it runs as the uid recorded with it, and it is the PID and start time recorded
   * for that spawn (when one is recorded).
   *
   * @example
   * ```ts
   * new LedgerSnapshot(new Map()).proves("web", { pid: 1, startTime: 1, uid: 0, token: "x" });
   * // → false
   * ```
   */
  proves(app: string, p: ProcessEvidence): boolean {
    if (p.token === undefined || p.token.length < 16 || p.uid === null) return false;
    const entry = this.entries.get(app)?.find((e) => _sameToken(e.token, p.token!));
    if (entry === undefined || entry.uid !== p.uid) return false;
    if (entry.pid === null) return true;
    return entry.pid === p.pid && entry.startTime === p.startTime;
  }
}

/** The per-app spawn ledgers of one state directory. */
export class SpawnLedger {
  /** @param dir the ledger directory, `<stateDir>/spawns` (made with mode 0700) */
  constructor(readonly dir: string) {}

  /**
   * Writes a fresh token for `app`, to be run as `uid`, before its spawn; returns the token.
   * Throws if it cannot be written (the spawn must then not happen: it could not be adopted).
   */
  async issue(app: string, uid: number): Promise<string> {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const token = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    const entries = [...this.#read(app), { token, uid, pid: null, startTime: null }];
    await this.#write(app, entries.slice(-_KEEP));
    return token;
  }

  /** Records the PID and start time of the spawn that got `token`. Never throws. */
  async record(app: string, token: string, pid: number, startTime: number): Promise<void> {
    const entries = this.#read(app);
    const entry = entries.find((e) => e.token === token);
    if (entry === undefined) return;
    entry.pid = pid;
    entry.startTime = startTime;
    try {
      await this.#write(app, entries);
    } catch {
      // Unrecorded, the token alone (with the uid) still proves the process.
    }
  }

  /** Every app's ledger, as on disk now. */
  snapshot(): LedgerSnapshot {
    const map = new Map<string, SpawnEntry[]>();
    let names: Iterable<Deno.DirEntry>;
    try {
      names = Deno.readDirSync(this.dir);
    } catch {
      return new LedgerSnapshot(map);
    }
    for (const e of names) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const app = e.name.slice(0, -".json".length);
      map.set(app, this.#read(app));
    }
    return new LedgerSnapshot(map);
  }

  #read(app: string): SpawnEntry[] {
    try {
      const doc = JSON.parse(Deno.readTextFileSync(`${this.dir}/${app}.json`));
      return Array.isArray(doc?.spawns) ? doc.spawns.filter(_isEntry) : [];
    } catch {
      return [];
    }
  }

  async #write(app: string, spawns: SpawnEntry[]): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = `${this.dir}/${app}.json`;
    const tmp = `${path}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify({ version: 1, spawns }) + "\n", { mode: 0o600 });
    await Deno.rename(tmp, path);
  }
}

/**
 * Real uid of a process (first field of `Uid:` in `/proc/<pid>/status`), or null.
 *
 * @example
 * ```ts
 * processUid(Deno.pid) === Deno.uid(); // true
 * ```
 */
export function processUid(pid: number): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const m = /^Uid:\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

function _isEntry(v: unknown): v is SpawnEntry {
  const e = v as Record<string, unknown> | null;
  return e !== null && typeof e === "object" && typeof e["token"] === "string" &&
    typeof e["uid"] === "number" && (e["pid"] === null || typeof e["pid"] === "number") &&
    (e["startTime"] === null || typeof e["startTime"] === "number");
}

/** Constant-time comparison of two tokens of equal length. */
function _sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
