/**
 * `baton events [--app A] [--since T] [--follow] [--json] [-n N] [--state-dir DIR]`: a node's
 * decision log.
 *
 * Where it reads from: by default the node's HTTP API (`GET /v1/events`, open like
 * `/v1/status`), because that is what every other command talks to, it works from any host
 * that can reach the node, and it needs neither the state directory's path (the unit's
 * `/var/lib/baton`, the default `/var/lib/baton/<node>`, or `--state-dir`) nor the right to read
 * it (mode 0700). The agent keeps only its latest records in memory, so for the whole history,
 * or when the agent is not running (often the moment one asks why), `--state-dir DIR` reads
 * `events.jsonl` (and its rotated `events.jsonl.1`) there directly.
 *
 * `--follow` re-reads every `pollMs` and prints what is new; `--json` prints one JSON record per
 * line (JSON lines, also while following).
 *
 * @module
 */
import { readEvents } from "../store/event_log.ts";
import type { EventRecord } from "../store/event_log.ts";
import { EventCursor, filterEvents, formatEvent, parseSince } from "./events_view.ts";

/** Where the records come from. */
export interface EventSource {
  /** The records available now, oldest first. */
  read(): Promise<EventRecord[]>;
  /** Where they come from, for messages. */
  describe: string;
}

/** The records of a state directory: `events.jsonl.1` then `events.jsonl`. */
export function fileSource(stateDir: string): EventSource {
  const base = stateDir.replace(/(.)\/+$/, "$1");
  return {
    describe: `${base}/events.jsonl`,
    read: () => {
      try {
        Deno.statSync(base);
      } catch {
        throw new Error(`state directory ${base} not found (expected events.jsonl in it)`);
      }
      return Promise.resolve([
        ...readEvents(`${base}/events.jsonl.1`),
        ...readEvents(`${base}/events.jsonl`),
      ]);
    },
  };
}

/** The agent's recent records over its HTTP API. */
export function apiSource(get: (path: string) => Promise<unknown>, url: string): EventSource {
  return {
    describe: `${url}/v1/events`,
    read: async () => {
      const body = await get("/v1/events?n=1000") as { events?: EventRecord[] };
      return body.events ?? [];
    },
  };
}

/** Options of {@linkcode runEvents}. */
export interface EventsOptions {
  app?: string | undefined;
  since?: string | undefined;
  follow?: boolean | undefined;
  json?: boolean | undefined;
  /** The last N records (before following); default 100. */
  limit?: number | undefined;
  /** Re-read period of `--follow` (ms). */
  pollMs?: number;
  /** Where lines go (default stdout). */
  write?: (line: string) => void;
  /** Wall clock (default Date.now). */
  now?: () => number;
  /** Ends `--follow` (tests); default: never. */
  signal?: AbortSignal;
}

/**
 * Print the filtered records of `source`, then, with `follow`, every new one until `signal`
 * aborts. Throws an Error with a readable message on a bad `--since` or an unreadable source.
 *
 * @example
 * ```ts
 * await runEvents(fileSource("/var/lib/baton"), { app: "web", since: "1h" });
 * ```
 */
export async function runEvents(source: EventSource, opts: EventsOptions): Promise<void> {
  const write = opts.write ?? ((line: string) => console.log(line));
  const now = opts.now ?? Date.now;
  let sinceMs: number | undefined;
  if (opts.since !== undefined) {
    const s = parseSince(opts.since, now());
    if (!s.ok) throw new Error(s.error);
    sinceMs = s.ms;
  }
  const filter = { app: opts.app, sinceMs };
  const print = (r: EventRecord) => write(opts.json ? JSON.stringify(r) : formatEvent(r));
  const cursor = new EventCursor();
  const first = cursor.take(filterEvents(await source.read(), filter));
  for (const r of first.slice(-(opts.limit ?? 100))) print(r);
  if (!opts.follow) return;
  const pollMs = opts.pollMs ?? 500;
  while (!opts.signal?.aborted) {
    await sleep(pollMs, opts.signal);
    if (opts.signal?.aborted) break;
    let records: EventRecord[];
    try {
      records = await source.read();
    } catch {
      continue; // the agent restarting, the file rotating: try again
    }
    for (const r of cursor.take(filterEvents(records, filter))) print(r);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
