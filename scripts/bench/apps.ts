/**
 * The workloads of the benchmarks: a `sleep infinity` whose argv[0] carries a unique marker
 * (a symlink to sleep, so an outside observer can tell its processes apart), the sample HTTP
 * app with a marker name, and the sample app's own start and stop times, measured without
 * any supervisor so figures can report them separately.
 *
 * @module
 */
import { freePort, sampleAppCommand } from "../local_cluster.ts";
import { httpGet, pollAsync, type Series } from "./common.ts";
import type { ProcMatcher } from "./proc_watch.ts";

/** A unique marker: a prefix and 8 random hex digits. */
export function marker(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Create `dir/<marker>` as a symlink to sleep; the command `[path, "infinity"]` runs sleep
 * with the marker as argv[0].
 */
export async function markerSleep(
  dir: string,
  prefix: string,
): Promise<{ path: string; command: string[]; matcher: ProcMatcher }> {
  const mark = marker(prefix);
  const path = `${dir}/${mark}`;
  const target = ["/usr/bin/sleep", "/bin/sleep"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (!target) throw new Error("expected sleep at /usr/bin/sleep or /bin/sleep, found neither");
  await Deno.symlink(target, path);
  return { path, command: [path, "infinity"], matcher: { argv0: path, marker: mark } };
}

/** The sample app with a marker name, listening on `hostname:port`. */
export function markerSample(
  port: number,
  prefix: string,
  hostname = "127.0.0.1",
): { command: string[]; matcher: ProcMatcher; name: string } {
  const name = marker(prefix);
  const command = sampleAppCommand(port, name);
  const h = command.indexOf("--hostname");
  if (h >= 0) command[h + 1] = hostname;
  return { command, matcher: { argv0: Deno.execPath(), marker: name }, name };
}

/** Body of the sample app's /info. */
export interface SampleInfo {
  name: string;
  pid: number;
  node: string | null;
  epoch: string | null;
}

/** GET /info of a sample app, or null. */
export async function sampleInfo(base: string, timeoutMs = 200): Promise<SampleInfo | null> {
  const r = await httpGet(`${base}/info`, timeoutMs);
  if (!r || r.status !== 200) return null;
  try {
    return JSON.parse(r.body) as SampleInfo;
  } catch {
    return null;
  }
}

/**
 * Start time (spawn → first HTTP 200) and stop time (SIGTERM → exit) of the sample app on
 * its own, `trials` times each (measured once per run, then reused by later figures).
 */
export async function sampleAppTimes(trials: number): Promise<{ start: Series; stop: Series }> {
  if (_times && _times.start.samples.length >= trials) return _times;
  _times = await _measureSampleApp(trials);
  return _times;
}

let _times: { start: Series; stop: Series } | null = null;

async function _measureSampleApp(trials: number): Promise<{ start: Series; stop: Series }> {
  const start: number[] = [];
  const stop: number[] = [];
  for (let i = 0; i < trials; i++) {
    const port = freePort();
    const { command } = markerSample(port, "bench-timing");
    const t0 = performance.now();
    const child = new Deno.Command(command[0]!, {
      args: command.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const up = await pollAsync("the sample app to answer", async () => {
        const r = await httpGet(`http://127.0.0.1:${port}/health`, 200);
        return r && r.status === 200 ? true : null;
      }, { timeoutMs: 20_000, everyMs: 2 });
      start.push(up.at - t0);
      const t1 = performance.now();
      child.kill("SIGTERM");
      await child.status;
      stop.push(performance.now() - t1);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    }
  }
  return {
    start: { label: "sample app start (spawn → HTTP 200)", samples: start },
    stop: { label: "sample app stop (SIGTERM → exit)", samples: stop },
  };
}
