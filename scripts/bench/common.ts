/**
 * Shared pieces of the benchmarks: the options every figure gets, the result shape every
 * figure returns (rendered by `report.ts`, written as JSON by `scripts/bench.ts`), summary
 * statistics, and small timing helpers.
 *
 * @module
 */

/** What the command line decided; every figure reads its sizes from here. */
export interface BenchOptions {
  /** Quick run: few trials, short windows. */
  smoke: boolean;
  /** Trials per measured series (≥ 20 in a full run). */
  trials: number;
  /** Seconds of CPU load in figure 5. */
  loadSeconds: number;
  /** Seconds of the idle CPU window in figure 6. */
  idleSeconds: number;
  /** App counts of figure 6 with process checks. */
  scaleSizes: number[];
  /** Apps with HTTP checks in figure 6. */
  scaleHttpApps: number;
  /** GET /v1/status requests per size in figure 6. */
  statusRequests: number;
  /** Installed anchor and load tools (absolute paths), null when missing. */
  tools: Tools;
  /** Progress lines go here. */
  log: (line: string) => void;
  /**
   * Only write each figure's manifest and compute its predicted column: no agent starts, no
   * anchor runs, nothing is measured (`bench --annotate`).
   */
  predictOnly?: boolean;
}

/** Paths of the external programs the benchmarks use; null = not installed. */
export interface Tools {
  supervisord: string | null;
  monit: string | null;
  keepalived: string | null;
  stressNg: string | null;
  ip: string | null;
}

/** One measured series: a system (baton or an anchor) in one variant, times in ms. */
export interface Series {
  label: string;
  samples: number[];
}

/** Summary of a series. */
export interface Summary {
  n: number;
  min: number;
  median: number;
  p95: number;
  max: number;
}

/** A target of the brief and whether this run met it (null: not measured). */
export interface Target {
  what: string;
  limit: string;
  /**
   * The worst case computed from the figure's manifest (`baton validate`, see
   * `predicted.ts`); absent where the manifest predicts nothing (load, scale).
   */
  predicted?: string;
  measured: string;
  met: boolean | null;
}

/** A table as header + rows of cells (already formatted). */
export interface Table {
  title: string;
  header: string[];
  rows: string[][];
}

/** Everything one figure reports. */
export interface FigureResult {
  id: string;
  title: string;
  /** How it was measured (markdown lines). */
  method: string[];
  tables: Table[];
  series: Series[];
  targets: Target[];
  /** Anchors or variants that did not run, with the reason. */
  skipped: string[];
  notes: string[];
  /** Exact commands of the anchors (and other external programs) as run. */
  commands: string[];
}

/** A fresh result to fill in. */
export function newFigure(id: string, title: string): FigureResult {
  return {
    id,
    title,
    method: [],
    tables: [],
    series: [],
    targets: [],
    skipped: [],
    notes: [],
    commands: [],
  };
}

/**
 * Summary statistics; p95 is the nearest-rank percentile (the max for fewer than 20 samples).
 *
 * @example
 * ```ts
 * summarize([3, 1, 2]); // { n: 3, min: 1, median: 2, p95: 3, max: 3 }
 * ```
 */
export function summarize(samples: number[]): Summary {
  if (samples.length === 0) return { n: 0, min: NaN, median: NaN, p95: NaN, max: NaN };
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, min: s[0]!, median, p95: at(0.95), max: s[s.length - 1]! };
}

/** Milliseconds for a table cell: one decimal below 100 ms, whole numbers above. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  return ms < 100 ? ms.toFixed(1) : Math.round(ms).toString();
}

/** `a / b` as "×N.N", or "–" when either is missing. */
export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–";
  const r = a / b;
  return `×${r < 10 ? r.toFixed(2) : r.toFixed(0)}`;
}

/** The standard table of time series: n, median, p95, max, and the ratio to `baseline`. */
export function seriesTable(
  title: string,
  series: Series[],
  baseline: string | null = null,
  ratioHeader = "median ratio",
): Table {
  const base = baseline === null
    ? null
    : series.find((s) => s.label === baseline)
    ? summarize(series.find((s) => s.label === baseline)!.samples)
    : null;
  return {
    title,
    header: ["system", "n", "median ms", "p95 ms", "max ms", ...(base ? [ratioHeader] : [])],
    rows: series.map((s) => {
      const m = summarize(s.samples);
      return [
        s.label,
        String(m.n),
        fmtMs(m.median),
        fmtMs(m.p95),
        fmtMs(m.max),
        ...(base ? [ratio(m.median, base.median)] : []),
      ];
    }),
  };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const _sab = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for about `ms` (≈1 ms resolution, unlike setTimeout's ≈2.5 ms). */
export function sleepSync(ms: number): void {
  Atomics.wait(_sab, 0, 0, ms);
}

/**
 * Polls `check` (synchronous, cheap) every ~1 ms until it returns a value, yielding to the
 * event loop every `yieldEveryMs` (so child pipes keep draining) and running `slow` (async,
 * e.g. an HTTP probe) at most every `slowEveryMs`. Returns the value and the time it was seen
 * (`performance.now()`), or throws after `timeoutMs`.
 */
export async function pollFast<T>(
  what: string,
  check: () => T | null,
  opts: { timeoutMs: number; yieldEveryMs?: number },
): Promise<{ value: T; at: number }> {
  const start = performance.now();
  const yieldEvery = opts.yieldEveryMs ?? 50;
  let lastYield = start;
  for (;;) {
    const value = check();
    const now = performance.now();
    if (value !== null) return { value, at: now };
    if (now - start > opts.timeoutMs) {
      throw new Error(`expected ${what} within ${opts.timeoutMs} ms, found none`);
    }
    if (now - lastYield >= yieldEvery) {
      await sleep(0);
      lastYield = performance.now();
    } else {
      sleepSync(1);
    }
  }
}

/** Polls an async probe until it returns a value (or throws after `timeoutMs`). */
export async function pollAsync<T>(
  what: string,
  probe: () => Promise<T | null>,
  opts: { timeoutMs: number; everyMs?: number },
): Promise<{ value: T; at: number }> {
  const start = performance.now();
  let last: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value !== null) return { value, at: performance.now() };
    } catch (err) {
      last = err;
    }
    if (performance.now() - start > opts.timeoutMs) {
      throw new Error(
        `expected ${what} within ${opts.timeoutMs} ms, found none (last: ${String(last)})`,
      );
    }
    await sleep(opts.everyMs ?? 5);
  }
}

/** GET a URL with a short timeout; the status and text, or null when nothing answered. */
export async function httpGet(
  url: string,
  timeoutMs = 200,
): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch {
    return null;
  }
}

/** Run a command to completion; throws with its stderr when it fails and `check` is set. */
export async function run(
  cmd: string[],
  opts: { check?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [program, ...args] = cmd;
  const out = await new Deno.Command(program!, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (opts.check !== false && r.code !== 0) {
    throw new Error(`expected "${cmd.join(" ")}" to exit 0, found exit ${r.code}: ${r.stderr}`);
  }
  return r;
}

/** The text of an error, for messages. */
export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Median of a series (NaN when empty). */
export function median(samples: number[]): number {
  return summarize(samples).median;
}

const _cleanups = new Set<() => Promise<void>>();

/**
 * Register an async cleanup to run if the benchmark is interrupted (SIGINT/SIGTERM);
 * returns a function that unregisters it (call it once the resource was cleaned normally).
 */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  _cleanups.add(cleanup);
  return () => _cleanups.delete(cleanup);
}

/** Run every registered cleanup (most recent first), ignoring their errors. */
export async function runInterruptCleanups(): Promise<void> {
  for (const c of [..._cleanups].reverse()) {
    try {
      await c();
    } catch { /* best effort */ }
  }
  _cleanups.clear();
}
