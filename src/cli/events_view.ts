/**
 * `baton events`: filters, the `--since` syntax, the printed line, and the cursor `--follow`
 * uses to print each record once. Pure; the command (`events_cmd.ts`) does the reading.
 *
 * @module
 */
import { parseDuration } from "../manifest/duration.ts";
import type { EventRecord } from "../store/event_log.ts";

/**
 * `--since T`: a duration back from now (`10m`, `1h30m`) or a date/time `Date.parse` reads
 * (`2026-12-03T10:02:00Z`, `2026-12-03 10:02`). Returns wall-clock ms, or an error saying what
 * was expected.
 *
 * @example
 * ```ts
 * parseSince("10m", Date.parse("2026-01-01T10:10:00Z")); // { ok: true, ms: …10:00:00Z }
 * ```
 */
export function parseSince(
  text: string,
  nowMs: number,
): { ok: true; ms: number } | { ok: false; error: string } {
  try {
    return { ok: true, ms: nowMs - parseDuration(text) };
  } catch { /* not a duration */ }
  const t = Date.parse(text);
  if (!Number.isNaN(t)) return { ok: true, ms: t };
  return {
    ok: false,
    error: `--since: expected a duration back from now (10m, 1h) or a date and time ` +
      `(2026-12-03T10:02:00Z), found "${text}"`,
  };
}

/** What `baton events` keeps. */
export interface EventFilter {
  app?: string | undefined;
  /** Wall-clock ms: records at or after it. */
  sinceMs?: number | undefined;
}

/**
 * The records that pass the filter, oldest first. `--app web` keeps web's records and the
 * node's own (app null: role changes, handovers), which explain what happened to web.
 *
 * @example
 * ```ts
 * import type { EventRecord } from "../store/event_log.ts";
 * declare const records: EventRecord[];
 * filterEvents(records, { app: "web", sinceMs: Date.now() - 600_000 });
 * ```
 */
export function filterEvents(records: EventRecord[], f: EventFilter): EventRecord[] {
  return records.filter((r) =>
    (f.app === undefined || r.app === f.app || r.app === null) &&
    (f.sinceMs === undefined || Date.parse(r.time) >= f.sinceMs)
  );
}

/** One record as a line: `TIME NODE LEVEL APP KIND: message`. */
export function formatEvent(r: EventRecord): string {
  return `${r.time} ${r.node} ${r.level.padEnd(5)} ${r.app ?? "-"} ${r.kind}: ${r.message}`;
}

function key(r: EventRecord): string {
  return `${r.time}\u0000${r.kind}\u0000${r.app}\u0000${r.message}`;
}

/**
 * Remembers what was printed so a re-read of the log (a file or the agent's recent records)
 * prints only what is new: records later than the last one seen, or at the same time but not
 * seen yet. Memory is bounded by the records sharing the latest timestamp.
 *
 * @example
 * ```ts
 * import type { EventRecord } from "../store/event_log.ts";
 * declare const firstRead: EventRecord[];
 * declare const secondRead: EventRecord[];
 * const cursor = new EventCursor();
 * cursor.take(firstRead); // all of them
 * cursor.take(secondRead); // only the new ones
 * ```
 */
export class EventCursor {
  #lastTime = "";
  #atLast = new Set<string>();

  /** The records of `records` (oldest first) not returned before. */
  take(records: EventRecord[]): EventRecord[] {
    const fresh: EventRecord[] = [];
    for (const r of records) {
      if (r.time < this.#lastTime) continue;
      const k = key(r);
      if (r.time === this.#lastTime && this.#atLast.has(k)) continue;
      if (r.time > this.#lastTime) {
        this.#lastTime = r.time;
        this.#atLast = new Set();
      }
      this.#atLast.add(k);
      fresh.push(r);
    }
    return fresh;
  }
}
