/**
 * A sampler that checks the cluster's main safety invariant from outside, every few
 * milliseconds: no movable app ever has two live copies at the same instant. It also records
 * when each app was absent (failover downtime) and every change of where an app runs, so a
 * test can print what happened and how long it took.
 *
 * @example
 * ```ts
 * const sampler = new InvariantSampler(["web", "api"], () => census());
 * sampler.start();
 * // ... inject faults ...
 * const report = await sampler.stop();
 * console.log(formatReport(report));
 * assert.equal(report.duplicateSamples, 0);
 * ```
 *
 * @module
 */

/** One stretch of consecutive samples in which an app had more than one copy. */
export interface DuplicateStreak {
  app: string;
  /** Where the copies ran, at the first sample of the streak. */
  hosts: string[];
  /** Milliseconds since the sampler started. */
  startMs: number;
  /** From the first duplicate sample to the first clean one (or the end). */
  durationMs: number;
  samples: number;
}

/** A change of where an app runs. */
export interface Transition {
  atMs: number;
  app: string;
  hosts: string[];
}

/** What the sampler saw. */
export interface SamplerReport {
  samples: number;
  durationMs: number;
  /** Longest time between two samples (a stalled sampler would hide short duplicates). */
  maxGapMs: number;
  duplicateSamples: number;
  duplicates: DuplicateStreak[];
  /** Longest duplicate streak, 0 if none. */
  maxDuplicateMs: number;
  /** Per app: samples with no copy at all. */
  absentSamples: Record<string, number>;
  /** Per app: longest stretch with no copy. */
  maxAbsentMs: Record<string, number>;
  transitions: Transition[];
}

/**
 * Samples `census()` (app → list of hosts, one entry per live copy) every `everyMs` on the
 * calling thread. Prefer {@linkcode WorkerSampler}, which keeps sampling while the test's
 * thread is busy.
 */
export class InvariantSampler {
  #apps: string[];
  #census: () => Map<string, string[]>;
  #everyMs: number;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #t0 = 0;
  #last = 0;
  #report: SamplerReport;
  #open = new Map<string, DuplicateStreak>();
  #absentSince = new Map<string, number>();
  #where = new Map<string, string>();
  #running = false;

  /** `apps`: the movable apps to watch. */
  constructor(apps: string[], census: () => Map<string, string[]>, everyMs = 20) {
    this.#apps = apps;
    this.#census = census;
    this.#everyMs = everyMs;
    this.#report = {
      samples: 0,
      durationMs: 0,
      maxGapMs: 0,
      duplicateSamples: 0,
      duplicates: [],
      maxDuplicateMs: 0,
      absentSamples: Object.fromEntries(apps.map((a) => [a, 0])),
      maxAbsentMs: Object.fromEntries(apps.map((a) => [a, 0])),
      transitions: [],
    };
  }

  /** Milliseconds since {@linkcode InvariantSampler.start}. */
  elapsed(): number {
    return performance.now() - this.#t0;
  }

  /** Wall-clock start (`performance.timeOrigin + performance.now()` at start). */
  get startedAt(): number {
    return performance.timeOrigin + this.#t0;
  }

  /** Take the first sample now, then one every `everyMs`. */
  start(): void {
    this.#t0 = performance.now();
    this.#last = this.#t0;
    this.#running = true;
    const loop = () => {
      if (!this.#running) return;
      this.sampleOnce();
      this.#timer = setTimeout(loop, this.#everyMs);
    };
    loop();
  }

  /** One sample (also usable without start(), for a final check). */
  sampleOnce(): void {
    const now = performance.now();
    const at = now - this.#t0;
    const r = this.#report;
    r.maxGapMs = Math.max(r.maxGapMs, now - this.#last);
    this.#last = now;
    r.samples++;
    const census = this.#census();
    let dup = false;
    for (const app of this.#apps) {
      const hosts = [...(census.get(app) ?? [])].sort();
      const key = hosts.join(",");
      if (this.#where.get(app) !== key) {
        this.#where.set(app, key);
        r.transitions.push({ atMs: Math.round(at), app, hosts });
      }
      if (hosts.length > 1) {
        dup = true;
        const open = this.#open.get(app);
        if (open) {
          open.samples++;
        } else {
          this.#open.set(app, { app, hosts, startMs: at, durationMs: 0, samples: 1 });
        }
      } else {
        this.#closeStreak(app, at);
      }
      if (hosts.length === 0) {
        r.absentSamples[app] = (r.absentSamples[app] ?? 0) + 1;
        if (!this.#absentSince.has(app)) this.#absentSince.set(app, at);
      } else {
        this.#closeAbsent(app, at);
      }
    }
    if (dup) r.duplicateSamples++;
  }

  #closeStreak(app: string, at: number): void {
    const open = this.#open.get(app);
    if (!open) return;
    open.durationMs = Math.round(at - open.startMs);
    open.startMs = Math.round(open.startMs);
    this.#report.duplicates.push(open);
    this.#report.maxDuplicateMs = Math.max(this.#report.maxDuplicateMs, open.durationMs);
    this.#open.delete(app);
  }

  #closeAbsent(app: string, at: number): void {
    const since = this.#absentSince.get(app);
    if (since === undefined) return;
    const r = this.#report;
    r.maxAbsentMs[app] = Math.max(r.maxAbsentMs[app] ?? 0, Math.round(at - since));
    this.#absentSince.delete(app);
  }

  /** Stop sampling; close open streaks at the current time and return the report. */
  stop(): SamplerReport {
    this.#running = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const at = this.elapsed();
    for (const app of [...this.#open.keys()]) this.#closeStreak(app, at);
    for (const app of [...this.#absentSince.keys()]) this.#closeAbsent(app, at);
    this.#report.durationMs = Math.round(at);
    this.#report.maxGapMs = Math.round(this.#report.maxGapMs);
    return this.#report;
  }
}

/** A few lines for the test output. */
export function formatReport(r: SamplerReport): string {
  const lines = [
    `  samples ${r.samples} over ${r.durationMs} ms (max gap ${r.maxGapMs} ms); ` +
    `duplicate samples ${r.duplicateSamples}, longest duplicate ${r.maxDuplicateMs} ms`,
    `  absent samples ${JSON.stringify(r.absentSamples)}, longest absence ` +
    `${JSON.stringify(r.maxAbsentMs)} ms`,
  ];
  for (const d of r.duplicates) {
    lines.push(
      `  DUPLICATE ${d.app} on ${d.hosts.join("+")} at +${d.startMs} ms for ${d.durationMs} ms`,
    );
  }
  for (const t of r.transitions) {
    lines.push(`  +${t.atMs} ms ${t.app} → ${t.hosts.length ? t.hosts.join("+") : "(none)"}`);
  }
  return lines.join("\n");
}

/** How the worker tells where a copy runs. */
export type HostRule =
  /** By network namespace inode (a {@linkcode Topology}'s hosts). */
  | { kind: "netns"; inodes: Record<string, string> }
  /** By `BATON_NODE` in the environment, for copies whose environment has `mark`=`value`. */
  | { kind: "env"; mark: string; value: string };

/** Message to the worker. */
export type WorkerRequest =
  | { type: "start"; apps: string[]; everyMs: number; rule: HostRule; scripts: string[] }
  | { type: "stop" };

/** Message from the worker. */
export type WorkerReply =
  | { type: "started"; startedAt: number }
  | { type: "report"; report: SamplerReport };

/**
 * {@linkcode InvariantSampler} on a worker thread: the /proc census runs every `everyMs`
 * whatever the test's own thread is doing (spawning, awaiting status), so short duplicates
 * cannot hide in a stalled event loop.
 *
 * @example
 * ```ts
 * const s = await WorkerSampler.start(["web"], { kind: "env", mark: "RUN", value: id });
 * const report = await s.stop();
 * ```
 */
export class WorkerSampler {
  #worker: Worker;
  #startedAt: number;
  #stopped: Promise<SamplerReport> | null = null;

  private constructor(worker: Worker, startedAt: number) {
    this.#worker = worker;
    this.#startedAt = startedAt;
  }

  /**
   * Start sampling `apps`; resolves once the first sample is taken. With `nice` (root only)
   * the threads the worker added run at that niceness, so a busy machine does not stall the
   * sampler.
   */
  static async start(
    apps: string[],
    rule: HostRule,
    opts: { everyMs?: number; scripts?: string[]; nice?: number } = {},
  ): Promise<WorkerSampler> {
    const before = new Set(tasks());
    const worker = new Worker(new URL("./sampler_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const sampler = await new Promise<WorkerSampler>((resolve, reject) => {
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`sampler worker failed: ${e.message}`));
      };
      worker.onmessage = (e: MessageEvent<WorkerReply>) => {
        if (e.data.type === "started") resolve(new WorkerSampler(worker, e.data.startedAt));
      };
      const req: WorkerRequest = {
        type: "start",
        apps,
        everyMs: opts.everyMs ?? 20,
        rule,
        scripts: opts.scripts ?? ["sample_app.ts"],
      };
      worker.postMessage(req);
    });
    if (opts.nice !== undefined && opts.nice !== 0 && Deno.uid() === 0) {
      const added = tasks().filter((t) => !before.has(t));
      if (added.length > 0) {
        await new Deno.Command("renice", {
          args: ["-n", String(opts.nice), "-p", ...added.map(String)],
          stdout: "null",
          stderr: "null",
        }).output().catch(() => {});
      }
    }
    return sampler;
  }

  /** Milliseconds since sampling started (same clock as the report's times). */
  elapsed(): number {
    return performance.timeOrigin + performance.now() - this.#startedAt;
  }

  /** Stop sampling and return the report; the worker is terminated. Idempotent. */
  stop(): Promise<SamplerReport> {
    this.#stopped ??= new Promise<SamplerReport>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#worker.terminate();
        reject(new Error("expected the sampler worker to report within 10 s, it did not"));
      }, 10_000);
      this.#worker.onmessage = (e: MessageEvent<WorkerReply>) => {
        if (e.data.type === "report") {
          clearTimeout(timer);
          this.#worker.terminate();
          resolve(e.data.report);
        }
      };
      const req: WorkerRequest = { type: "stop" };
      this.#worker.postMessage(req);
    });
    return this.#stopped;
  }
}

/** Thread ids of this process. */
function tasks(): number[] {
  try {
    return [...Deno.readDirSync("/proc/self/task")].map((e) => Number(e.name));
  } catch {
    return [];
  }
}
