/**
 * The agent's own memory per app: start one agent (single node, no peers) with N supervised
 * `sleep infinity` apps, wait until every app runs, rest, and read the agent's VmRSS,
 * VmHWM and the anonymous / file-backed split (`/proc/<pid>/smaps_rollup`). With `--heap`
 * the agent runs under `--inspect` and the probe reads `Deno.memoryUsage()` through the
 * DevTools protocol before and after a full GC, and sums a heap snapshot by constructor
 * (the top entries show where the live heap goes).
 *
 * ```sh
 * deno run -A scripts/bench/memory.ts --sizes 0,100,500,1000 [--heap] [--flags "--v8-flags=…"]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LocalCluster } from "../local_cluster.ts";
import { markerSleep } from "./apps.ts";
import { pollAsync, sleep } from "./common.ts";
import { killMatching } from "./proc_watch.ts";

/** Memory of one process from /proc, in KiB. */
export interface ProcMemory {
  rss: number;
  hwm: number;
  anon: number;
  file: number;
}

/** VmRSS, VmHWM (status) and Anonymous / file-backed RSS (smaps_rollup) of `pid`, in KiB. */
export function procMemory(pid: number): ProcMemory {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (text: string, k: string) =>
    Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  let anon = NaN;
  try {
    const roll = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    anon = kb(roll, "Anonymous");
  } catch { /* no smaps_rollup */ }
  const rss = kb(status, "VmRSS");
  return { rss, hwm: kb(status, "VmHWM"), anon, file: rss - anon };
}

/** A minimal DevTools-protocol client over the inspector's WebSocket. */
class Inspector {
  #ws: WebSocket;
  #id = 0;
  #waiting = new Map<number, (r: Record<string, unknown>) => void>();
  #chunks: string[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data));
      if (msg.id !== undefined) this.#waiting.get(msg.id)?.(msg);
      else if (msg.method === "HeapProfiler.addHeapSnapshotChunk") {
        this.#chunks.push(msg.params.chunk);
      }
    };
  }

  static async connect(port: number): Promise<Inspector> {
    const list = await pollAsync("inspector", async () => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/json/list`);
        return (await r.json()) as { webSocketDebuggerUrl: string }[];
      } catch {
        return null;
      }
    }, { timeoutMs: 30_000, everyMs: 100 });
    const ws = new WebSocket(list.value[0]!.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    return new Inspector(ws);
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = ++this.#id;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async evaluate(expression: string): Promise<unknown> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true });
    // deno-lint-ignore no-explicit-any
    return (r as any).result?.result?.value;
  }

  async snapshot(): Promise<string> {
    this.#chunks = [];
    await this.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    return this.#chunks.join("");
  }

  close(): void {
    this.#ws.close();
  }
}

/** Self size of a heap snapshot summed by node type and name: the top `top` entries. */
export function summarizeSnapshot(
  text: string,
  top = 25,
): { name: string; count: number; bytes: number }[] {
  const snap = JSON.parse(text);
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const nodes: number[] = snap.nodes;
  const strings: string[] = snap.strings;
  const w = fields.length;
  const fType = fields.indexOf("type");
  const fName = fields.indexOf("name");
  const fSize = fields.indexOf("self_size");
  const sums = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < nodes.length; i += w) {
    const type = types[nodes[i + fType]!]!;
    const name = type === "object" || type === "closure" || type === "native"
      ? `${type}:${strings[nodes[i + fName]!]}`
      : type;
    const s = sums.get(name) ?? { count: 0, bytes: 0 };
    s.count++;
    s.bytes += nodes[i + fSize]!;
    sums.set(name, s);
  }
  return [...sums.entries()].map(([name, s]) => ({ name, ...s }))
    .sort((a, b) => b.bytes - a.bytes).slice(0, top);
}

/** One measurement of the agent with `n` apps. */
export interface MemoryRow {
  apps: number;
  mem: ProcMemory;
  /** VmRSS (KiB) at each sample time (s after every app ran). */
  series: { atS: number; rss: number }[];
  heap?: { before: Record<string, number>; after: Record<string, number> };
  /** VmRSS (KiB) after a full GC (with `heap`). */
  rssAfterGc?: number;
  top?: { name: string; count: number; bytes: number }[];
}

/** Start an agent with `n` sleep apps, measure it, stop it and its apps. */
export async function measureAgent(
  n: number,
  opts: { flags?: string[]; heap?: boolean; samplesS?: number[]; save?: string } = {},
): Promise<MemoryRow> {
  const dir = await Deno.makeTempDir({ prefix: "bench-mem-" });
  const sl = await markerSleep(dir, "bmem");
  const names = Array.from({ length: n }, (_, i) => `a${String(i).padStart(4, "0")}`);
  const inspectPort = 9300 + Math.floor(Math.random() * 500);
  const cluster = await LocalCluster.create({
    nodes: [{ name: "solo", priority: 100 }],
    interval: "200ms",
    deadAfter: "1s",
    denoFlags: [
      ...(opts.flags ?? []),
      ...(opts.heap ? [`--inspect=127.0.0.1:${inspectPort}`] : []),
    ],
    apps: () =>
      n === 0
        ? "  {}"
        : names.map((name) => `  ${name}: { command: ${JSON.stringify(sl.command)} }`)
          .join("\n"),
  });
  try {
    await cluster.startAgent("solo");
    await pollAsync(`${n} apps running`, async () => {
      const s = await cluster.status("solo");
      return s && s.apps.filter((a) => a.state === "running" && a.pid).length === n ? true : null;
    }, { timeoutMs: 300_000, everyMs: 100 });
    const pid = cluster.agents.get("solo")!.pid;
    const t0 = performance.now();
    const series: { atS: number; rss: number }[] = [];
    for (const atS of opts.samplesS ?? [5]) {
      await sleep(Math.max(0, t0 + atS * 1000 - performance.now()));
      series.push({ atS, rss: procMemory(pid).rss });
    }
    const row: MemoryRow = { apps: n, mem: procMemory(pid), series };
    if (opts.heap) {
      const insp = await Inspector.connect(inspectPort);
      try {
        const usage = "JSON.stringify(Deno.memoryUsage())";
        const before = JSON.parse(String(await insp.evaluate(usage)));
        await insp.send("HeapProfiler.collectGarbage");
        const after = JSON.parse(String(await insp.evaluate(usage)));
        row.heap = { before, after };
        row.rssAfterGc = procMemory(pid).rss;
        const text = await insp.snapshot();
        if (opts.save) await Deno.writeTextFile(`${opts.save}/agent-${n}.heapsnapshot`, text);
        row.top = summarizeSnapshot(text);
      } finally {
        insp.close();
      }
    }
    return row;
  } finally {
    await cluster.stop();
    killMatching(sl.matcher);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "0,100,500,1000" },
      heap: { type: "boolean", default: false },
      flags: { type: "string", default: "" },
      samples: { type: "string", default: "5" },
      save: { type: "string" },
    },
  });
  const flags = values.flags.split(" ").filter(Boolean);
  const mib = (kb: number) => (kb / 1024).toFixed(1);
  const rows: MemoryRow[] = [];
  for (const n of values.sizes.split(",").map(Number)) {
    const r = await measureAgent(n, {
      flags,
      heap: values.heap,
      samplesS: values.samples.split(",").map(Number),
      ...(values.save ? { save: values.save } : {}),
    });
    rows.push(r);
    const h = r.heap
      ? `  heapUsed ${mib(r.heap.before.heapUsed! / 1024)}→${
        mib(r.heap.after.heapUsed! / 1024)
      } heapTotal ${mib(r.heap.after.heapTotal! / 1024)} external ${
        mib(r.heap.after.external! / 1024)
      }`
      : "";
    console.log(
      `apps ${n}: rss ${mib(r.mem.rss)} MiB (anon ${mib(r.mem.anon)}, file ${
        mib(r.mem.file)
      }), hwm ${mib(r.mem.hwm)}; rss at ${
        r.series.map((p) => `${p.atS}s ${mib(p.rss)}`).join(", ")
      }${r.rssAfterGc !== undefined ? `; after GC ${mib(r.rssAfterGc)}` : ""}${h}`,
    );
    for (const t of r.top ?? []) {
      console.log(
        `    ${(t.bytes / 1024).toFixed(0).padStart(7)} KiB ${
          String(t.count).padStart(7)
        }  ${t.name}`,
      );
    }
  }
  const base = rows.find((r) => r.apps === 0);
  if (base) {
    for (const r of rows) {
      if (r.apps === 0) continue;
      console.log(
        `per app (vs 0 apps) at ${r.apps}: ${((r.mem.rss - base.mem.rss) / r.apps).toFixed(1)} KiB`,
      );
    }
  }
}
