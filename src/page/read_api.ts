/**
 * The read-only HTTP side for people and scrapers: the status page (`GET /`), its live
 * stream (`GET /stream`, server-sent events) and `GET /metrics`. Everything is cached so
 * that load here costs the agent's event loop little: the page is rendered at most once per
 * period however many clients there are, the metrics text at most once per
 * {@linkcode METRICS_CACHE_MS}, and at most {@linkcode MAX_STREAMS} streams are served (a
 * client that does not read is dropped instead of buffered).
 *
 * @example
 * ```ts
 * import type { ClusterView } from "./cluster_view.ts";
 * import type { Metrics } from "../metrics/metrics.ts";
 * declare const view: ClusterView;
 * declare const metrics: Metrics;
 * const read = new ReadApi({ view, metrics, periodMs: 200 });
 * Deno.serve(read.app.fetch);
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import type { Metrics } from "../metrics/metrics.ts";
import type { ClusterView } from "./cluster_view.ts";
import { renderMain, renderPage } from "./render.ts";

/** Most live streams served at once; more get a 503. */
export const MAX_STREAMS = 16;
/** A scrape within this long of the previous one gets the same text. */
export const METRICS_CACHE_MS = 250;
/** Paths this API serves (the node's listener routes them here). */
export const READ_PATHS = ["/", "/stream", "/metrics"];

/** Options of {@linkcode ReadApi}. */
export interface ReadApiOptions {
  view: ClusterView;
  metrics: Metrics;
  /** How often streams get a new fragment: the heartbeat interval. */
  periodMs: number;
}

/** The read-only routes and the live streams' fan-out. */
export class ReadApi {
  /** The hono app. */
  readonly app: Hono = new Hono();
  #opts: ReadApiOptions;
  #streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #last = "";
  #enc = new TextEncoder();
  #metricsCache: { at: number; text: Promise<string> } | null = null;

  /** Routes are ready at once; the stream timer runs only while someone listens. */
  constructor(opts: ReadApiOptions) {
    this.#opts = opts;
    const app = this.app;
    app.get("/", (c) => {
      c.header("cache-control", "no-store");
      return c.html(renderPage(opts.view.snapshot(), "/stream"));
    });
    app.get("/metrics", async (c) => {
      const now = performance.now();
      if (!this.#metricsCache || now - this.#metricsCache.at >= METRICS_CACHE_MS) {
        this.#metricsCache = { at: now, text: opts.metrics.text() };
      }
      return c.body(await this.#metricsCache.text, 200, {
        "content-type": opts.metrics.contentType,
      });
    });
    app.get("/stream", (c) => {
      if (this.#streams.size >= MAX_STREAMS) {
        return c.text(`too many live pages (${MAX_STREAMS}); reload later`, 503);
      }
      return new Response(this.#open(c.req.raw.signal), {
        headers: {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          "x-accel-buffering": "no",
        },
      });
    });
  }

  /** Number of live streams now. */
  get streams(): number {
    return this.#streams.size;
  }

  /** End every stream and the timer. */
  close(): void {
    for (const c of this.#streams) this.#drop(c);
    this.#stopTimer();
  }

  #open(signal: AbortSignal): ReadableStream<Uint8Array> {
    let ctrl: ReadableStreamDefaultController<Uint8Array>;
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        ctrl = c;
        this.#streams.add(c);
        // The first fragment at once; reconnects after 2 s.
        c.enqueue(this.#enc.encode(`retry: 2000\ndata: ${JSON.stringify(this.#fragment())}\n\n`));
        signal.addEventListener("abort", () => this.#drop(c));
        this.#timer ??= setInterval(() => this.#tick(), Math.max(this.#opts.periodMs, 50));
      },
      cancel: () => this.#drop(ctrl),
    }, { highWaterMark: 8 });
  }

  #fragment(): string {
    return renderMain(this.#opts.view.snapshot());
  }

  #tick(): void {
    const html = this.#fragment();
    if (html === this.#last) return;
    this.#last = html;
    const chunk = this.#enc.encode(`data: ${JSON.stringify(html)}\n\n`);
    for (const c of this.#streams) {
      // A client that is not reading: drop it rather than buffer for it.
      if ((c.desiredSize ?? 0) <= 0) {
        this.#drop(c);
        continue;
      }
      c.enqueue(chunk);
    }
  }

  #drop(c: ReadableStreamDefaultController<Uint8Array>): void {
    if (!this.#streams.delete(c)) return;
    try {
      c.close();
    } catch { /* already closed */ }
    if (this.#streams.size === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#last = "";
  }
}
