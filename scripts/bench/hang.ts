/**
 * Figure 2 — hung app → replaced. The sample app is frozen with SIGSTOP; the time runs until
 * a NEW process of it answers HTTP 200. baton: HTTP check interval 100 ms, timeout 200 ms,
 * failures 2; monit: 1 s cycle, `if failed port … timeout 1 seconds then restart`. Both stop
 * the hung process with SIGKILL (a stopped process cannot act on SIGTERM). The sample app's
 * own start time is measured on its own and reported beside.
 *
 * @module
 */
import { appTimes, predictedText, timesOf } from "./predicted.ts";
import { freePort, LocalCluster } from "../local_cluster.ts";
import { missing, Monit } from "./anchors.ts";
import { markerSample, sampleAppTimes, sampleInfo } from "./apps.ts";
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

/** SIGSTOP → new process exists, and SIGSTOP → new process answers, per trial. */
async function measureHang(
  m: ProcMatcher,
  port: number,
  trials: number,
  label: string,
  log: (line: string) => void,
  settleMs: number,
): Promise<{ exists: number[]; answers: number[] }> {
  const exists: number[] = [];
  const answers: number[] = [];
  const base = `http://127.0.0.1:${port}`;
  const watch = new ProcWatch([m]);
  for (let i = 0; i < trials; i++) {
    const { value: pid } = await pollAsync(`one answering ${label} process`, async () => {
      const pids = findProcs(m);
      if (pids.length !== 1) return null;
      const info = await sampleInfo(base);
      return info && info.pid === pids[0] ? info.pid : null;
    }, { timeoutMs: 30_000, everyMs: 20 });
    // Past the check's initial pause, at a random phase of the check cycle.
    await sleep(settleMs + Math.random() * 300);
    watch.arm();
    const t0 = performance.now();
    Deno.kill(pid, "SIGSTOP");
    const seen = await pollFast(`a new ${label} process`, () => watch.poll()[0] ?? null, {
      timeoutMs: 20_000,
      yieldEveryMs: 20,
    });
    const up = await pollAsync(`the new ${label} process to answer`, async () => {
      const info = await sampleInfo(base, 100);
      return info && info.pid === seen.value ? true : null;
    }, { timeoutMs: 20_000, everyMs: 2 });
    exists.push(seen.at - t0);
    answers.push(up.at - t0);
    try {
      Deno.kill(pid, "SIGKILL"); // in case the supervisor left it frozen
    } catch { /* gone, as expected */ }
  }
  log(`  ${label}: median ${fmtMs(summarize(answers).median)} ms to a new answering process`);
  return { exists, answers };
}

/** Run figure 2. */
export async function benchHang(o: BenchOptions): Promise<FigureResult> {
  const fig = newFigure("hang", "2. Hung app → replaced");
  fig.method.push(
    "The app is examples/sample_app.ts (a Deno HTTP server) with a unique `--name` marker. " +
      "Each trial waits 1.3–1.6 s (monit: 2.3–2.6 s, past its start timeout of 2 s, during which " +
      "monit pauses connection tests) after the app answers, sends SIGSTOP (the process stays, " +
      "its socket accepts connections, nothing answers), then times (a) until a new process of " +
      "the app exists (/proc, ~1 ms polling) and (b) until the new process answers " +
      "GET /info with its own pid (HTTP polling every ~2 ms).",
    "baton: one-node cluster, `check: { type: http, interval: 100ms, timeout: 200ms, " +
      "failures: 2, initialDelay: 1s }`, `stop: { signal: SIGKILL }`, restart limit 1000000.",
    'monit: `set daemon 1`, `if failed host 127.0.0.1 port P protocol http request "/health" ' +
      "timeout 1 seconds then restart` (one failed cycle, as in the brief — baton needs 2), " +
      "stop program `kill -KILL $(cat pidfile)`.",
  );
  const dir = await Deno.makeTempDir({ prefix: "bench-hang-" });
  const exists: Series[] = [];
  const answers: Series[] = [];
  let predicted = "—";
  try {
    const times = o.predictOnly
      ? { start: { label: "app start", samples: [] }, stop: { label: "app stop", samples: [] } }
      : await sampleAppTimes(Math.max(2, Math.min(o.trials, 10)));
    const startMed = summarize(times.start.samples).median;
    fig.tables.push(seriesTable("The sample app on its own", [times.start, times.stop]));

    const port = freePort();
    const app = markerSample(port, "bhang");
    const cluster = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 100 }],
      apps: () =>
        [
          "  hung:",
          `    command: ${JSON.stringify(app.command)}`,
          `    check: { type: http, url: "http://127.0.0.1:${port}/health", interval: 100ms, ` +
          "timeout: 200ms, failures: 2, initialDelay: 1s }",
          "    restart: { limit: 1000000, window: 1h }",
          "    stop: { signal: SIGKILL, timeout: 1s }",
        ].join("\n"),
      interval: "200ms",
      deadAfter: "1s",
    });
    predicted = predictedText(appTimes(await timesOf(cluster.manifest), "hung").hang);
    try {
      if (!o.predictOnly) {
        await cluster.startAgent("solo");
        await cluster.waitRunning("solo", ["hung"], 30_000);
        const r = await measureHang(app.matcher, port, o.trials, "baton", o.log, 1300);
        exists.push({ label: "baton", samples: r.exists });
        answers.push({ label: "baton", samples: r.answers });
      }
    } finally {
      await cluster.stop();
      killMatching(app.matcher);
    }

    const monSkip = o.predictOnly ? "predictions only" : missing(o.tools.monit, "monit", "monit");
    if (monSkip) {
      fig.skipped.push(monSkip);
    } else {
      const mport = freePort();
      const mapp = markerSample(mport, "mhang");
      const mon = await Monit.start(o.tools.monit!, [{
        name: "hung",
        command: mapp.command,
        extra: [
          `if failed host 127.0.0.1 port ${mport} protocol http request "/health" ` +
          "timeout 1 seconds then restart",
        ],
      }]);
      fig.commands.push(
        mon.commandLine + "   # set daemon 1; if failed port … timeout 1 seconds then restart",
      );
      try {
        const r = await measureHang(mapp.matcher, mport, o.trials, "monit", o.log, 2300);
        exists.push({ label: "monit", samples: r.exists });
        answers.push({ label: "monit", samples: r.answers });
      } finally {
        await mon.stop([mapp.matcher]);
      }
    }

    fig.series = [
      ...answers.map((s) => ({ ...s, label: `${s.label}: SIGSTOP → new process answers` })),
      ...exists.map((s) => ({ ...s, label: `${s.label}: SIGSTOP → new process exists` })),
      times.start,
      times.stop,
    ];
    fig.tables.unshift(
      seriesTable("SIGSTOP → new process answers HTTP 200", answers, "baton", "ratio vs baton"),
      seriesTable("SIGSTOP → new process exists (detection + stop + spawn)", exists, "baton"),
    );
    const b = summarize(answers.find((s) => s.label === "baton")?.samples ?? []);
    const be = summarize(exists.find((s) => s.label === "baton")?.samples ?? []);
    const detectLimit = 100 * 2 + 200 + 50;
    fig.targets.push({
      what: "baton SIGSTOP → new process exists (worst case)",
      limit: `≤ interval×failures + timeout + 50 ms = ${detectLimit} ms`,
      predicted,
      measured: `${fmtMs(be.max)} ms (median ${fmtMs(be.median)})`,
      met: be.n > 0 ? be.max <= detectLimit : null,
    });
    // Checks start `interval` apart from start to start, but never two at once: with a timeout
    // longer than the interval, each failing check starts when the previous one times out.
    const boundMs = 100 + 200 + (2 - 1) * Math.max(100, 200) + 50;
    fig.targets.push({
      what: "baton SIGSTOP → new process exists (worst case), against the bound of checks " +
        "that never overlap",
      limit:
        `≤ interval + timeout + (failures − 1) × max(interval, timeout) + 50 ms = ${boundMs} ms`,
      predicted,
      measured: `${fmtMs(be.max)} ms (median ${fmtMs(be.median)})`,
      met: be.n > 0 ? be.max <= boundMs : null,
    });
    fig.notes.push(
      "The brief's limit interval × failures + timeout assumes a new check starts every " +
        "interval even while the previous one is still waiting for its timeout. baton never " +
        "runs two checks of one app at once (a hung app would collect a pile of open " +
        "connections), so with timeout 200 ms > interval 100 ms the second failing check " +
        "starts when the first times out: the worst case is interval + timeout + (failures − 1) " +
        "× timeout = 500 ms, plus the stop and the spawn.",
    );
    fig.targets.push({
      what: "baton SIGSTOP → new process answers (worst case)",
      limit: `≤ ${detectLimit} ms + app start (median ${fmtMs(startMed)} ms) = ` +
        `${fmtMs(detectLimit + startMed)} ms`,
      predicted: `${predicted} + app start`,
      measured: `${fmtMs(b.max)} ms (median ${fmtMs(b.median)})`,
      met: b.n > 0 ? b.max <= detectLimit + startMed : null,
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return fig;
}
