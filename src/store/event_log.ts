/**
 * The event log: every decision of the node, with its reason, as JSON lines in
 * `${dir}/events.jsonl`, plus the latest records in memory for `status`.
 *
 * Each record is one `JSON.stringify(record) + "\n"`, appended with a synchronous write, so a
 * crash can only leave the LAST line partial. When the log is reopened, a partial last line is
 * terminated with "\n" before anything is appended, and {@linkcode readEvents} skips lines that
 * are not valid records. Before a write would take the file past `maxBytes`, it is rotated to
 * `events.jsonl.1` (older ones shift to `.2`, ... up to `keep`).
 *
 * @example
 * ```ts
 * const log = new EventLog("/var/lib/baton");
 * log.append({
 *   time: new Date().toISOString(), node: "a", level: "info", app: "web", kind: "restart",
 *   message: "restarted web: it exited with code 1", epoch: 3,
 * });
 * log.recent(10); // the last 10 records, oldest first
 * ```
 *
 * @module
 */

import type { RecordKind } from "../core/types.ts";

/** One line of the event log. */
export interface EventRecord {
  /** ISO wall time. */
  time: string;
  node: string;
  level: "info" | "warn" | "error";
  app: string | null;
  /** What happened (a record from another baton version may carry a kind not listed). */
  kind: RecordKind;
  /** Human sentence: what happened and why. */
  message: string;
  epoch: number;
}

/**
 * Where the agent's records go: {@linkcode EventLog} on disk, `MemoryEventLog`
 * (memory_store.ts) in the simulation; both pass `tests/event_log_contract_test.ts`.
 */
export interface EventSink {
  /** Append one record; never throws (a failed write is reported, the record kept in memory). */
  append(record: EventRecord): void;
  /** The last `n` records (at most {@linkcode RECENT_CAPACITY}), oldest first. */
  recent(n: number): EventRecord[];
}

/** Options of {@linkcode EventLog}. */
export interface EventLogOptions {
  /** Rotate before the file would exceed this size (default 10 MiB). */
  maxBytes?: number;
  /** Rotated files kept: events.jsonl.1 ... .keep (default 1). */
  keep?: number;
}

/** Records kept in memory for {@linkcode EventLog.recent}. */
export const RECENT_CAPACITY = 200;
/** When reopening, at most this many bytes of the file are read back into memory. */
const _TAIL_BYTES = 1024 * 1024;

/**
 * Append-only JSON-lines event log with size-based rotation.
 *
 * @example
 * ```ts
 * const log = new EventLog("/tmp/baton", { maxBytes: 1024 * 1024, keep: 1 });
 * log.append({ time: "2024-01-01T00:00:00.000Z", node: "a", level: "warn", app: null,
 *   kind: "peer_down", message: "peer b unreachable", epoch: 1 });
 * log.close();
 * ```
 */
export class EventLog implements EventSink {
  /** Path of the current log file. */
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #recent: EventRecord[] = [];
  readonly #encoder = new TextEncoder();
  #file: Deno.FsFile | null = null;
  #size = 0;
  #failing = false;

  /** Opens (creating `dir` 0700 and the file if missing) and reloads the latest records. */
  constructor(dir: string, opts: EventLogOptions = {}) {
    const base = dir.replace(/(.)\/+$/, "$1");
    this.path = `${base}/events.jsonl`;
    this.#maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
    this.#keep = Math.max(1, opts.keep ?? 1);
    Deno.mkdirSync(base, { recursive: true, mode: 0o700 });
    this.#open();
    const tail = _readTail(this.path, _TAIL_BYTES);
    this.#recent.push(...tail.records.slice(-RECENT_CAPACITY));
    if (tail.partialEnd) this.#write(this.#encoder.encode("\n"));
  }

  /**
   * Appends one record (synchronously) and remembers it for {@linkcode EventLog.recent}.
   * Never throws: a write failure is reported on stderr (once per failure streak) and the
   * record is still kept in memory.
   */
  append(record: EventRecord): void {
    this.#recent.push(record);
    if (this.#recent.length > RECENT_CAPACITY) this.#recent.shift();
    const line = this.#encoder.encode(JSON.stringify(record) + "\n");
    try {
      if (this.#size > 0 && this.#size + line.length > this.#maxBytes) this.#rotate();
      this.#write(line);
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) {
        console.error(`event log ${this.path}: cannot append: ${_message(error)}`);
      }
      this.#failing = true;
    }
  }

  /** The last `n` records (at most {@linkcode RECENT_CAPACITY}), oldest first. */
  recent(n: number): EventRecord[] {
    if (n <= 0) return [];
    return this.#recent.slice(-n);
  }

  /** Closes the file; later appends reopen it. */
  close(): void {
    this.#file?.close();
    this.#file = null;
  }

  #open(): void {
    this.#file = Deno.openSync(this.path, { append: true, create: true, mode: 0o600 });
    this.#size = this.#file.statSync().size;
  }

  #write(data: Uint8Array): void {
    if (this.#file === null) this.#open();
    const file = this.#file!;
    let written = 0;
    while (written < data.length) written += file.writeSync(data.subarray(written));
    this.#size += data.length;
  }

  #rotate(): void {
    this.close();
    for (let i = this.#keep - 1; i >= 1; i--) {
      try {
        Deno.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    Deno.renameSync(this.path, `${this.path}.1`);
    this.#open();
  }
}

/**
 * Reads every valid record of an event log file, oldest first. Lines that are not a valid
 * {@linkcode EventRecord} (a partial line left by a crash) are skipped. A missing file reads
 * as no records.
 *
 * @example
 * ```ts
 * readEvents("/var/lib/baton/events.jsonl").filter((r) => r.level === "error");
 * ```
 */
export function readEvents(file: string): EventRecord[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return _parseLines(text);
}

/**
 * Parses one line; returns null unless it is a complete, well-formed record.
 *
 * @example
 * ```ts
 * parseEventLine('{"time":"t","node":"a"'); // null (partial line)
 * ```
 */
export function parseEventLine(line: string): EventRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const r = value as Record<string, unknown>;
  const level = r["level"];
  const app = r["app"];
  if (
    typeof r["time"] !== "string" || typeof r["node"] !== "string" ||
    (level !== "info" && level !== "warn" && level !== "error") ||
    (app !== null && typeof app !== "string") || typeof r["kind"] !== "string" ||
    typeof r["message"] !== "string" || typeof r["epoch"] !== "number"
  ) {
    return null;
  }
  return {
    time: r["time"],
    node: r["node"],
    level,
    app,
    // Read back as written; a kind of another version is kept, not dropped.
    kind: r["kind"] as RecordKind,
    message: r["message"],
    epoch: r["epoch"],
  };
}

function _parseLines(text: string): EventRecord[] {
  const records: EventRecord[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const record = parseEventLine(line);
    if (record !== null) records.push(record);
  }
  return records;
}

/** Reads the last `maxBytes` of a log: its records, and whether it ends mid-line. */
function _readTail(
  path: string,
  maxBytes: number,
): { records: EventRecord[]; partialEnd: boolean } {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { records: [], partialEnd: false };
    throw error;
  }
  try {
    const size = file.statSync().size;
    if (size === 0) return { records: [], partialEnd: false };
    const start = Math.max(0, size - maxBytes);
    file.seekSync(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let read = 0;
    while (read < buf.length) {
      const n = file.readSync(buf.subarray(read));
      if (n === null) break;
      read += n;
    }
    let text = new TextDecoder().decode(buf.subarray(0, read));
    // Starting mid-file, the first line is probably cut: drop it.
    if (start > 0) text = text.slice(text.indexOf("\n") + 1);
    return { records: _parseLines(text), partialEnd: buf[read - 1] !== 0x0a };
  } finally {
    file.close();
  }
}

function _message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
