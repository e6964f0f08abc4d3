/**
 * Figure 1 — crash → new process running. SIGKILL the app; an outside observer lists /proc
 * every ~1 ms until a new process of that program exists (argv[0] is a marker symlink to
 * sleep). baton (one-node cluster, process check) vs supervisord (autorestart, startsecs=0)
 * vs monit (`set daemon 1`, pidfile written by a wrapper).
 *
 * @module
 */
import { appTimes, predictedText, timesOf } from "./predicted.ts";
import { LocalCluster } from "../local_cluster.ts";
import { missing, Monit, Supervisord } from "./anchors.ts";
import { markerSleep } from "./apps.ts";
import {
  type BenchOptions,
  type FigureResult,
  fmtMs,
  newFigure,
  pollAsync,
  pollFast,
  type Series,
  seriesTable,
  sleep,
  summarize,
} from "./common.ts";
import { findProcs, killMatching, type ProcMatcher, ProcWatch } from "./proc_watch.ts";

/** Time from SIGKILL of the one process matching `m` to a new one existing, `trials` times. */
export async function measureRespawn(
  m: ProcMatcher,
  trials: number,
  timeoutMs: number,
  log: (line: string) => void,
  label: string,
): Promise<number[]> {
  const samples: number[] = [];
  const watch = new ProcWatch([m]);
  for (let i = 0; i < trials; i++) {
    const { value: pid } = await pollAsync(`exactly one ${label} process`, () => {
      const pids = findProcs(m);
      return Promise.resolve(pids.length === 1 ? pids[0]! : null);
    }, { timeoutMs: 20_000, everyMs: 20 });
    await sleep(300 + Math.random() * 200);
    watch.arm();
    const t0 = performance.now();
    Deno.kill(pid, "SIGKILL");
    const seen = await pollFast(`a new ${label} process`, () => watch.poll()[0] ?? null, {
      timeoutMs,
      yieldEveryMs: 100,
    });
    samples.push(seen.at - t0);
  }
  log(`  ${label}: median ${fmtMs(summarize(samples).median)} ms over ${samples.length}`);
  return samples;
}

/** Run figure 1. */
export async function benchCrash(o: BenchOptions): Promise<FigureResult> {
  const fig = newFigure("crash", "1. Crash → new process running");
  fig.method.push(
    "The app is `sleep infinity` started through a symlink whose name is a unique marker, so " +
      "argv[0] identifies it. Each trial: wait 300–500 ms, SIGKILL the app, then the benchmark " +
      "lists /proc every ~1 ms (Atomics.wait) until a new process with that argv[0] exists.",
    "baton: one-node LocalCluster, product default heartbeat (200 ms / 1 s), process check, " +
      "`restart: { limit: 1000000, window: 1h }` so every crash is restarted in place " +
      "(the default limit 1 would escalate on the second crash).",
    "supervisord: `autorestart=true`, `startsecs=0`; monit: `set daemon 1`, `check process … " +
      "with pidfile`, start wrapper `sh -c 'echo $$ > pidfile; exec sleep…'`.",
  );
  const dir = await Deno.makeTempDir({ prefix: "bench-crash-" });
  const series: Series[] = [];
  let predicted = "—";
  try {
    // baton
    const sl = await markerSleep(dir, "bcrash");
    const cluster = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 100 }],
      apps: () =>
        [
          "  crashy:",
          `    command: ${JSON.stringify(sl.command)}`,
          "    restart: { limit: 1000000, window: 1h }",
        ].join("\n"),
      interval: "200ms",
      deadAfter: "1s",
    });
    predicted = predictedText(appTimes(await timesOf(cluster.manifest), "crashy").crash);
    try {
      if (!o.predictOnly) {
        await cluster.startAgent("solo");
        await cluster.waitRunning("solo", ["crashy"], 30_000);
        series.push({
          label: "baton",
          samples: await measureRespawn(sl.matcher, o.trials, 10_000, o.log, "baton"),
        });
      }
    } finally {
      await cluster.stop();
      killMatching(sl.matcher); // a respawn racing the stop
    }

    // supervisord
    const supSkip = o.predictOnly
      ? "predictions only"
      : missing(o.tools.supervisord, "supervisord", "supervisor");
    if (supSkip) {
      fig.skipped.push(supSkip);
    } else {
      const s2 = await markerSleep(dir, "scrash");
      const sup = await Supervisord.start(o.tools.supervisord!, [
        { name: "crashy", command: s2.command },
      ]);
      fig.commands.push(sup.commandLine + "   # program: autorestart=true, startsecs=0");
      try {
        series.push({
          label: "supervisord",
          samples: await measureRespawn(s2.matcher, o.trials, 10_000, o.log, "supervisord"),
        });
      } finally {
        await sup.stop([s2.matcher]);
      }
    }

    // monit
    const monSkip = o.predictOnly ? "predictions only" : missing(o.tools.monit, "monit", "monit");
    if (monSkip) {
      fig.skipped.push(monSkip);
    } else {
      const s3 = await markerSleep(dir, "mcrash");
      const mon = await Monit.start(o.tools.monit!, [{ name: "crashy", command: s3.command }]);
      fig.commands.push(mon.commandLine + "   # set daemon 1; check process crashy with pidfile");
      try {
        series.push({
          label: "monit",
          samples: await measureRespawn(s3.matcher, o.trials, 15_000, o.log, "monit"),
        });
      } finally {
        await mon.stop([s3.matcher]);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  fig.series = series;
  fig.tables.push(seriesTable("SIGKILL → new process exists", series, "baton", "ratio vs baton"));
  const b = summarize(series.find((s) => s.label === "baton")?.samples ?? []);
  fig.notes.push(
    "Where baton's time goes (measured in-process on the benchmark machine): the exit reaches " +
      "the agent ~1–2 ms after the SIGKILL, the core decides in well under 1 ms, the runner " +
      "checks the command and opens the log (~0.5 ms) and posix_spawns the launcher (~1 ms); " +
      "then three execs follow (sh for the log redirection, util-linux setsid for the new " +
      "session, the app), ~2–3 ms each on this VM. The new process shows up after the last " +
      "exec. The state write that records the new pid happens in the background (only a new " +
      "role or epoch must reach the disk before a spawn).",
  );
  fig.targets.push({
    what: "baton worst case crash → new process",
    limit: "≤ 10 ms",
    predicted,
    measured: `${fmtMs(b.max)} ms (max of ${b.n})`,
    met: b.n > 0 ? b.max <= 10 : null,
  });
  return fig;
}
