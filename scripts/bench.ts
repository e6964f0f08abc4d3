/**
 * `deno task bench`: baton's benchmarks, side by side with supervisord, monit and keepalived
 * on the same workload in the same run. Writes docs/benchmarks.md (machine, versions,
 * commands, one table per figure, targets met or not) and optionally the raw results as JSON.
 *
 * ```sh
 * deno task bench                       # full run (≥ 20 trials, 5 min load, 60 s idle windows)
 * deno task bench --smoke               # quick run (2 trials, 10 s load, 5 s idle windows)
 * deno task bench --only crash,scale --trials 5 --out /tmp/b.md --json /tmp/b.json
 * ```
 *
 * Figures: crash (1), hang (2), escalation (3), failover (4), load (5), scale (6). Anchors
 * whose tools are not installed are skipped with the reason printed; nothing is installed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { detectTools, versionOf } from "./bench/anchors.ts";
import {
  type BenchOptions,
  errText,
  type FigureResult,
  newFigure,
  runInterruptCleanups,
} from "./bench/common.ts";
import { benchCrash } from "./bench/crash.ts";
import { benchHang } from "./bench/hang.ts";
import { benchEscalation } from "./bench/escalation.ts";
import { benchFailover } from "./bench/failover.ts";
import { benchLoad } from "./bench/load.ts";
import { benchScale } from "./bench/scale.ts";
import { annotateReport, renderReport, type RunInfo } from "./bench/report.ts";

/** Every figure, in report order. */
export const FIGURES: Record<string, (o: BenchOptions) => Promise<FigureResult>> = {
  crash: benchCrash,
  hang: benchHang,
  escalation: benchEscalation,
  failover: benchFailover,
  load: benchLoad,
  scale: benchScale,
};

const _TITLES: Record<string, string> = {
  crash: "1. Crash → new process running",
  hang: "2. Hung app → replaced",
  escalation: "3. Second failure → every movable app running on the peer",
  failover: "4. Active host dies → every movable app running on the standby",
  load: "5. No false failover under CPU load",
  scale: "6. Scale on one host",
};

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function machine(): Promise<RunInfo["machine"]> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const mem = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(/^MemTotal:\s+(\d+)/m.exec(mem)?.[1] ?? NaN);
  const osr = await Deno.readTextFile("/etc/os-release").catch(() => "");
  return {
    nproc: navigator.hardwareConcurrency,
    cpu,
    kernel: Deno.osRelease(),
    memory: Number.isFinite(kb) ? `${(kb / 1024 / 1024).toFixed(1)} GiB` : "unknown",
    os: /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osr)?.[1] ?? "unknown",
  };
}

/** The 1, 5 and 15 minute load averages, as "a / b / c". */
async function loadAverage(): Promise<string> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "");
  const f = text.trim().split(/\s+/);
  return f.length >= 3 ? `${f[0]} / ${f[1]} / ${f[2]}` : "unknown";
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      smoke: { type: "boolean", default: false },
      only: { type: "string" },
      trials: { type: "string" },
      "load-seconds": { type: "string" },
      "idle-seconds": { type: "string" },
      out: { type: "string" },
      json: { type: "string" },
      annotate: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(
      "usage: deno task bench [--smoke] [--only crash,hang,escalation,failover,load,scale]\n" +
        "                       [--trials N] [--load-seconds S] [--idle-seconds S]\n" +
        "                       [--out docs/benchmarks.md] [--json results.json]\n" +
        "       deno task bench --annotate docs/benchmarks.md   # add the predicted column to an\n" +
        "                       older report, from the figures' manifests (nothing is measured)",
    );
    return 0;
  }
  const smoke = values.smoke;
  const num = (v: string | undefined, what: string, dflt: number) => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < 1) {
      throw new Error(`expected ${what} to be a whole number ≥ 1, found "${v}"`);
    }
    return Number(v);
  };
  const only = values.only ? values.only.split(",").map((s) => s.trim()).filter(Boolean) : null;
  for (const id of only ?? []) {
    if (!FIGURES[id]) {
      throw new Error(
        `expected --only to list figures among ${Object.keys(FIGURES).join(", ")}, found "${id}"`,
      );
    }
  }
  const tools = await detectTools();
  const opts: BenchOptions = {
    smoke,
    trials: num(values.trials, "--trials", smoke ? 2 : 20),
    loadSeconds: num(values["load-seconds"], "--load-seconds", smoke ? 10 : 300),
    idleSeconds: num(values["idle-seconds"], "--idle-seconds", smoke ? 5 : 60),
    scaleSizes: smoke ? [10, 100] : [10, 100, 1000],
    scaleHttpApps: smoke ? 20 : 100,
    statusRequests: smoke ? 100 : 1000,
    tools,
    log: (line) => console.log(line),
  };
  if (values.annotate) return await annotate(values.annotate, opts);
  const outPath = values.out ?? `${ROOT}/docs/benchmarks.md`;
  const started = new Date();
  const t0 = performance.now();

  const interrupted = async () => {
    console.error("bench: interrupted; cleaning up processes and namespaces");
    await runInterruptCleanups();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);

  for (
    const [name, pkg, path] of [
      ["supervisord", "supervisor", tools.supervisord],
      ["monit", "monit", tools.monit],
      ["keepalived", "keepalived", tools.keepalived],
      ["stress-ng", "stress-ng", tools.stressNg],
      ["ip", "iproute2", tools.ip],
    ] as const
  ) {
    if (path === null) {
      console.log(
        `bench: ${name} not found in PATH (Debian package ${pkg}): its parts are skipped`,
      );
    }
  }

  const loadStart = await loadAverage();
  const figures: FigureResult[] = [];
  let failures = 0;
  for (const [id, fn] of Object.entries(FIGURES)) {
    if (only && !only.includes(id)) continue;
    console.log(`\n== ${_TITLES[id]}`);
    const ft = performance.now();
    const load = await loadAverage();
    try {
      const fig = await fn(opts);
      fig.notes.push(
        `Load average (1/5/15 min) when this figure started: ${load}; it ran for ` +
          `${Math.round((performance.now() - ft) / 1000)} s.`,
      );
      figures.push(fig);
    } catch (err) {
      failures++;
      console.error(`bench: figure ${id} failed: ${errText(err)}`);
      const fig = newFigure(id, _TITLES[id]!);
      fig.notes.push(`this figure failed in this run: ${errText(err)}`);
      figures.push(fig);
    } finally {
      await runInterruptCleanups();
    }
    console.log(`   (${((performance.now() - ft) / 1000).toFixed(0)} s)`);
  }

  const info: RunInfo = {
    startedAt: started.toISOString(),
    durationS: (performance.now() - t0) / 1000,
    mode: smoke ? "smoke" : "full",
    argv: Deno.args.filter((a, i, all) =>
      !["--out", "--json"].includes(a) && !["--out", "--json"].includes(all[i - 1] ?? "")
    ),
    machine: {
      ...await machine(),
      load: `${loadStart} at the start, ${await loadAverage()} at the end`,
    },
    versions: {
      baton: (await import("../src/version.ts")).VERSION,
      deno: `${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
      supervisord: await versionOf(tools.supervisord ? [tools.supervisord, "--version"] : null),
      monit: await versionOf(tools.monit ? [tools.monit, "-V"] : null),
      keepalived: await versionOf(tools.keepalived ? [tools.keepalived, "--version"] : null),
      "stress-ng": await versionOf(tools.stressNg ? [tools.stressNg, "--version"] : null),
    },
    sizes: {
      "Trials per series": String(opts.trials),
      "Load window (figure 5)": `${opts.loadSeconds} s`,
      "Idle CPU window (figure 6)": `${opts.idleSeconds} s`,
      "Scale sizes (figure 6)": `${opts.scaleSizes.join(", ")} apps with process checks; ` +
        `${opts.scaleHttpApps} with HTTP checks; ${opts.statusRequests} status requests each`,
    },
  };
  await Deno.mkdir(outPath.replace(/\/[^/]*$/, "") || ".", { recursive: true });
  await Deno.writeTextFile(outPath, renderReport(info, figures));
  console.log(`\nbench: wrote ${outPath}`);
  if (values.json) {
    await Deno.writeTextFile(values.json, JSON.stringify({ info, figures }, null, 2) + "\n");
    console.log(`bench: wrote ${values.json}`);
  }
  for (const f of figures) {
    for (const t of f.targets) {
      const met = t.met === null ? "not measured" : t.met ? "met" : "MISSED";
      console.log(`  ${f.id}: ${t.what}: ${t.measured} (limit ${t.limit}) → ${met}`);
    }
  }
  Deno.removeSignalListener("SIGINT", interrupted);
  Deno.removeSignalListener("SIGTERM", interrupted);
  return failures > 0 ? 1 : 0;
}

/** The figures whose targets the manifest predicts (load and scale have no such bound). */
const PREDICTED_FIGURES = ["crash", "hang", "escalation", "failover"];

/**
 * `--annotate FILE`: write each predicted figure's manifest (no agent starts, nothing is
 * measured) and add the predicted column to the report in FILE.
 */
async function annotate(file: string, o: BenchOptions): Promise<number> {
  const figures: FigureResult[] = [];
  for (const id of PREDICTED_FIGURES) {
    figures.push(await FIGURES[id]!({ ...o, predictOnly: true }));
    await runInterruptCleanups();
  }
  const before = await Deno.readTextFile(file);
  const after = annotateReport(before, figures);
  if (after === before) {
    console.log(`bench: ${file} has the predicted column already`);
    return 0;
  }
  await Deno.writeTextFile(file, after);
  for (const f of figures) {
    for (const t of f.targets) console.log(`  ${f.id}: ${t.what}: predicted ${t.predicted ?? "—"}`);
  }
  console.log(`bench: added the predicted column to ${file}`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    console.error(`bench: ${errText(err)}`);
    await runInterruptCleanups();
    Deno.exit(2);
  }
}
