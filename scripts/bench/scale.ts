/**
 * Figure 6 — scale on one host: N supervised `sleep infinity` apps (process checks), and apps
 * with HTTP checks every second. For each: time from agent start to every app running (per
 * status), the agent's idle CPU % (utime+stime from /proc/<pid>/stat over the idle window),
 * RSS (VmRSS, and VmHWM), and GET /v1/status latency. Anchor: supervisord with the same
 * programs (start-all, CPU %, RSS).
 *
 * @module
 */
import { freePort, LocalCluster } from "../local_cluster.ts";
import { missing, Supervisord } from "./anchors.ts";
import { markerSample, markerSleep } from "./apps.ts";
import {
  type BenchOptions,
  type FigureResult,
  fmtMs,
  newFigure,
  onInterrupt,
  pollAsync,
  run,
  sleep,
  summarize,
} from "./common.ts";
import { findProcs, killMatching } from "./proc_watch.ts";

/** CPU ticks (utime + stime) of a process. */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]); // fields 14 and 15
}

/** VmRSS and VmHWM of a process, in MiB. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** CPU % of one core used by `pid` over `seconds`. */
async function idleCpu(pid: number, seconds: number, clkTck: number): Promise<number> {
  const c0 = cpuTicks(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = cpuTicks(pid);
  const dt = (performance.now() - t0) / 1000;
  return ((c1 - c0) / clkTck) / dt * 100;
}

/**
 * RSS of a bare Deno of the same version that loads what baton loads (hono, zod, yaml,
 * commander, through the repository's import map) and serves HTTP: the runtime's own floor.
 */
async function bareDenoRss(flags: string[] = []): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "bench-bare-" });
  try {
    const script = `${dir}/bare.ts`;
    await Deno.writeTextFile(
      script,
      [
        'import { Hono } from "hono";',
        'import { z } from "zod";',
        'import YAML from "yaml";',
        'import { Command } from "commander";',
        "void z; void YAML; void Command;",
        "const app = new Hono();",
        'app.get("/", (c) => c.text("ok"));',
        'Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);',
        "",
      ].join("\n"),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--no-prompt",
        ...flags,
        "--config",
        `${ROOT}/deno.json`,
        script,
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await sleep(3000);
      return memory(child.pid).rss;
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The V8 flag that caps the young generation (the agent allocates little). */
const SEMI_SPACE_FLAG = "--v8-flags=--max-semi-space-size=1";

interface Row {
  system: string;
  apps: number;
  startAllMs: number;
  apiUpMs: number;
  cpuPct: number;
  rss: number;
  hwm: number;
  statusMedian: number;
  statusP99: number;
}

/** Run figure 6. */
export async function benchScale(o: BenchOptions): Promise<FigureResult> {
  const fig = newFigure("scale", "6. Scale on one host");
  fig.method.push(
    "One agent (single-node cluster, product default heartbeat 200 ms / 1 s) with a manifest " +
      "of N apps, each a marker `sleep infinity` with a process check. Start-all: from " +
      "spawning the agent until GET /v1/status shows every app running (polled every 50 ms); " +
      "'API up' is the first status answer.",
    `After ${restS(o)} s of rest (the agent's start burst is collected by V8's memory reducer ` +
      "within ~30 s; see docs/memory.md): CPU % = " +
      `(utime+stime of /proc/<agent pid>/stat) over ${o.idleSeconds} s ` +
      "of idle, as % of one core; RSS = VmRSS (peak = VmHWM) at the end; then " +
      `${o.statusRequests} sequential GET /v1/status requests (latency median and p99).`,
    `HTTP row: ${o.scaleHttpApps} \`sleep\` apps, each with an HTTP check every 1 s (timeout ` +
      "1 s, failures 3). A Deno HTTP server per app would dominate the machine, so the checks " +
      "point at 4 shared sample-app instances (started by the benchmark, not by baton), " +
      "round-robin.",
    "supervisord: the same 100 marker sleeps as `[program:…]` sections; start-all = until all " +
      "100 processes exist in /proc; CPU % and RSS of the supervisord process the same way.",
  );
  const clk = Number((await run(["getconf", "CLK_TCK"], { check: false })).stdout.trim()) || 100;
  const rows: Row[] = [];
  const statusSamples: Record<string, number[]> = {};
  const bare = await bareDenoRss();
  const bareSemi = await bareDenoRss([SEMI_SPACE_FLAG]);
  o.log(
    `  bare Deno: rss ${bare.toFixed(1)} MiB (${bareSemi.toFixed(1)} MiB with ${SEMI_SPACE_FLAG})`,
  );
  for (const n of o.scaleSizes) {
    const r = await batonScale(o, n, false, clk, statusSamples);
    rows.push(r);
  }
  rows.push(await batonScale(o, o.scaleHttpApps, true, clk, statusSamples));
  rows.push(await batonScale(o, 100, false, clk, statusSamples, [SEMI_SPACE_FLAG]));

  const supSkip = missing(o.tools.supervisord, "supervisord", "supervisor");
  if (supSkip) {
    fig.skipped.push(supSkip);
  } else {
    const dir = await Deno.makeTempDir({ prefix: "bench-scale-sup-" });
    const sl = await markerSleep(dir, "sscale");
    const n = 100;
    const t0 = performance.now();
    const sup = await Supervisord.start(
      o.tools.supervisord!,
      Array.from({ length: n }, (_, i) => ({ name: `app${i}`, command: sl.command })),
    );
    fig.commands.push(sup.commandLine + `   # ${n} programs, autorestart=true, startsecs=0`);
    const unregister = onInterrupt(() => sup.stop([sl.matcher]));
    try {
      const up = await pollAsync(
        `${n} supervisord programs`,
        () => Promise.resolve(findProcs(sl.matcher).length >= n ? true : null),
        { timeoutMs: 120_000, everyMs: 20 },
      );
      await sleep(3000);
      const cpu = await idleCpu(sup.child.pid, o.idleSeconds, clk);
      const mem = memory(sup.child.pid);
      rows.push({
        system: "supervisord",
        apps: n,
        startAllMs: up.at - t0,
        apiUpMs: NaN,
        cpuPct: cpu,
        rss: mem.rss,
        hwm: mem.hwm,
        statusMedian: NaN,
        statusP99: NaN,
      });
      o.log(`  supervisord ${n}: cpu ${cpu.toFixed(3)} %, rss ${mem.rss.toFixed(1)} MiB`);
    } finally {
      await sup.stop([sl.matcher]);
      unregister();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  fig.tables.push({
    title: "Apps on one host",
    header: [
      "system",
      "apps",
      "start-all ms",
      "API up ms",
      "idle CPU %",
      "RSS MiB",
      "RSS − bare Deno MiB",
      "peak RSS MiB",
      "status median ms",
      "status p99 ms",
    ],
    rows: rows.map((r) => [
      r.system,
      String(r.apps),
      fmtMs(r.startAllMs),
      fmtMs(r.apiUpMs),
      r.cpuPct.toFixed(3),
      r.rss.toFixed(1),
      r.system.startsWith("baton")
        ? (r.rss - (r.system.includes("semi-space") ? bareSemi : bare)).toFixed(1)
        : "–",
      r.hwm.toFixed(1),
      fmtMs(r.statusMedian),
      fmtMs(r.statusP99),
    ]),
  });
  const sup = rows.find((r) => r.system === "supervisord");
  const b100 = rows.find((r) => r.system === "baton" && r.apps === 100);
  if (sup && b100) {
    fig.tables.push({
      title: "baton vs supervisord, 100 apps (process checks)",
      header: ["measure", "baton", "supervisord", "ratio"],
      rows: [
        ["idle CPU %", b100.cpuPct.toFixed(3), sup.cpuPct.toFixed(3), _r(b100.cpuPct, sup.cpuPct)],
        ["RSS MiB", b100.rss.toFixed(1), sup.rss.toFixed(1), _r(b100.rss, sup.rss)],
        [
          "start-all ms",
          fmtMs(b100.startAllMs),
          fmtMs(sup.startAllMs),
          _r(
            b100.startAllMs,
            sup.startAllMs,
          ),
        ],
      ],
    });
  }
  fig.series = Object.entries(statusSamples).map(([label, samples]) => ({ label, samples }));
  fig.notes.push(
    `A bare Deno ${Deno.version.deno} that loads the same libraries (hono, zod, yaml, ` +
      `commander) and serves HTTP has an RSS of ${bare.toFixed(1)} MiB here ` +
      `(${bareSemi.toFixed(1)} MiB with \`${SEMI_SPACE_FLAG}\`): a limit below that cannot be ` +
      "met by any Deno program; the column 'RSS − bare Deno' is what baton itself adds.",
    `The row '(V8 semi-space 1 MiB)' runs the agent with \`${SEMI_SPACE_FLAG}\`: V8's young ` +
      "generation stops at 1 MiB per semi-space instead of growing to 16 MiB after the burst " +
      "of allocations at start (parsing the manifest, spawning every app); the agent " +
      "allocates little afterwards, so nothing is lost. It is not in the product's flags yet.",
  );
  if (b100) {
    fig.targets.push({
      what: "baton RSS at 100 apps",
      limit: "≤ 50 MiB",
      measured: `${b100.rss.toFixed(1)} MiB`,
      met: b100.rss <= 50,
    });
    fig.targets.push({
      what: "baton RSS at 100 apps above a bare Deno with the same libraries",
      limit: "(informational)",
      measured: `${(b100.rss - bare).toFixed(1)} MiB (bare Deno ${bare.toFixed(1)} MiB)`,
      met: null,
    });
    fig.targets.push({
      what: "baton idle CPU at 100 apps",
      limit: "≤ 0.1 %",
      measured: `${b100.cpuPct.toFixed(3)} %`,
      met: b100.cpuPct <= 0.1,
    });
  }
  const b1000 = rows.find((r) => r.system === "baton" && r.apps === 1000);
  fig.targets.push({
    what: "baton RSS at 1000 apps",
    limit: "≤ 120 MiB",
    measured: b1000 ? `${b1000.rss.toFixed(1)} MiB` : "not run",
    met: b1000 ? b1000.rss <= 120 : null,
  });
  return fig;
}

/** Seconds of rest between "every app running" and the idle window (smoke: 3 s). */
function restS(o: BenchOptions): number {
  return o.smoke ? 3 : 30;
}

function _r(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) ? `×${(a / b).toFixed(2)}` : "–";
}

async function batonScale(
  o: BenchOptions,
  n: number,
  http: boolean,
  clk: number,
  statusSamples: Record<string, number[]>,
  denoFlags: string[] = [],
): Promise<Row> {
  const dir = await Deno.makeTempDir({ prefix: "bench-scale-" });
  const sl = await markerSleep(dir, "bscale");
  const servers: Deno.ChildProcess[] = [];
  const ports: number[] = [];
  if (http) {
    for (let i = 0; i < 4; i++) {
      const port = freePort();
      ports.push(port);
      const app = markerSample(port, "bscale-http");
      servers.push(
        new Deno.Command(app.command[0]!, {
          args: app.command.slice(1),
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
    }
  }
  const names = Array.from({ length: n }, (_, i) => `a${String(i).padStart(4, "0")}`);
  const cluster = await LocalCluster.create({
    nodes: [{ name: "solo", priority: 100 }],
    interval: "200ms",
    deadAfter: "1s",
    denoFlags,
    apps: () =>
      names.map((name, i) =>
        `  ${name}: { command: ${JSON.stringify(sl.command)}` +
        (http
          ? `, check: { type: http, url: "http://127.0.0.1:${ports[i % 4]}/health", ` +
            "interval: 1s, timeout: 1s, failures: 3 }"
          : "") +
        " }"
      ).join("\n"),
  });
  const cleanup = async () => {
    await cluster.stop();
    killMatching(sl.matcher);
    for (const s of servers) {
      try {
        s.kill("SIGKILL");
      } catch { /* gone */ }
      await s.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const unregister = onInterrupt(cleanup);
  const semi = denoFlags.includes(SEMI_SPACE_FLAG);
  const label = `baton ${n} apps${http ? " (HTTP checks)" : ""}${
    semi ? " (V8 semi-space 1 MiB)" : ""
  }`;
  try {
    const t0 = performance.now();
    await cluster.startAgent("solo");
    let apiUp: number | null = null;
    const all = await pollAsync(`${n} apps running`, async () => {
      const s = await cluster.status("solo");
      if (s && apiUp === null) apiUp = performance.now();
      return s && s.apps.filter((a) => a.state === "running" && a.pid).length === n ? true : null;
    }, { timeoutMs: 300_000, everyMs: 50 });
    await sleep(restS(o) * 1000);
    const pid = cluster.agents.get("solo")!.pid;
    const cpu = await idleCpu(pid, o.idleSeconds, clk);
    const mem = memory(pid);
    const lat: number[] = [];
    const url = `${cluster.url("solo")}/v1/status`;
    for (let i = 0; i < o.statusRequests; i++) {
      const t = performance.now();
      const res = await fetch(url);
      await res.arrayBuffer();
      lat.push(performance.now() - t);
    }
    statusSamples[`${label}: GET /v1/status ms`] = lat;
    const sorted = [...lat].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
    o.log(
      `  ${label}: start-all ${fmtMs(all.at - t0)} ms, cpu ${cpu.toFixed(3)} %, ` +
        `rss ${mem.rss.toFixed(1)} MiB, status p99 ${fmtMs(p99)} ms`,
    );
    return {
      system: http ? "baton (HTTP checks)" : semi ? "baton (V8 semi-space 1 MiB)" : "baton",
      apps: n,
      startAllMs: all.at - t0,
      apiUpMs: (apiUp ?? NaN) - t0,
      cpuPct: cpu,
      rss: mem.rss,
      hwm: mem.hwm,
      statusMedian: summarize(lat).median,
      statusP99: p99,
    };
  } finally {
    await cleanup();
    unregister();
  }
}
