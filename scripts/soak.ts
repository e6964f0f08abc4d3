/**
 * `deno task soak [N] [--stress half|all|none] [--suites tests,faults]`: run the unit and
 * integration suite (`tests/`) and the fault suite (`faults/`) N times (default 8), with
 * `stress-ng --cpu 2` loading the machine during half of the rounds (the even ones) by default,
 * and print a table of every test: runs, failures, and the seed / temp dir / log of each
 * failure. Exits 1 if any test failed in any round (or a suite died or timed out).
 *
 * Each round's logs and JUnit files are kept in a directory under /tmp (printed first).
 * stress-ng is installed by `.ci/run`; `--stress none` runs without it.
 *
 * @module
 */
import { type Failure, failures, parseJunit } from "./test_report.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** A suite that has not finished after this long is killed and counted as failed. */
const SUITE_TIMEOUT_MS = 25 * 60_000;

interface Options {
  rounds: number;
  stress: "half" | "all" | "none";
  suites: string[];
}

function parseArgs(args: string[]): Options {
  const o: Options = { rounds: 8, stress: "half", suites: ["tests", "faults"] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      if (v === undefined) throw new Error(`expected a value after ${a}`);
      return v;
    };
    if (/^\d+$/.test(a)) o.rounds = Number(a);
    else if (a.startsWith("--stress")) {
      const v = value();
      if (v !== "half" && v !== "all" && v !== "none") {
        throw new Error(`expected --stress half|all|none, found ${v}`);
      }
      o.stress = v;
    } else if (a.startsWith("--suites")) o.suites = value().split(",").filter(Boolean);
    else throw new Error(`unknown argument ${a} (usage: soak [N] [--stress half|all|none])`);
  }
  if (o.rounds < 1) throw new Error("expected at least 1 round");
  return o;
}

/** Whether round `r` (1-based) runs under stress-ng. */
function stressed(o: Options, r: number): boolean {
  return o.stress === "all" || (o.stress === "half" && r % 2 === 0);
}

function hasStressNg(): boolean {
  try {
    return new Deno.Command("stress-ng", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** Per test: runs and failures over all rounds. */
interface Row {
  file: string;
  name: string;
  runs: number;
  failures: { round: number; stressed: boolean; log: string; f: Failure }[];
}

/** A suite run that produced no verdict for some test (died, timed out, no report). */
interface Broken {
  round: number;
  suite: string;
  what: string;
  log: string;
}

/**
 * The `deno test` flags of the suite's own task in deno.json (`test` for tests/, `test:faults`
 * for faults/), so a soak round runs each suite exactly as `deno task test` and CI do.
 */
export function taskFlags(suite: string): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).tasks as Record<
    string,
    string
  >;
  const task = tasks[suite === "tests" ? "test" : `test:${suite}`];
  if (task === undefined) throw new Error(`deno.json has no task for the suite ${suite}`);
  const words = task.trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "test") {
    throw new Error(`the task of ${suite} is not a deno test: ${task}`);
  }
  return words.slice(2).filter((w) => w.startsWith("-"));
}

async function runSuite(
  suite: string,
  dir: string,
): Promise<{ code: number | "timeout"; xml: string; log: string; ms: number }> {
  const log = `${dir}/${suite}.log`;
  const junit = `${dir}/${suite}.xml`;
  const file = await Deno.open(log, { create: true, write: true, truncate: true });
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", ...taskFlags(suite), `--junit-path=${junit}`, `${suite}/`],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) {
      let n = 0;
      while (n < chunk.length) n += await file.write(chunk.subarray(n));
    }
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, SUITE_TIMEOUT_MS);
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  clearTimeout(timer);
  file.close();
  const xml = await Deno.readTextFile(junit).catch(() => "");
  return {
    code: timedOut ? "timeout" : status.code,
    xml,
    log,
    ms: Math.round(performance.now() - t0),
  };
}

/** Start `stress-ng --cpu 2` in its own process; stop() ends it and waits. */
function startStress(): { stop(): Promise<void> } {
  const child = new Deno.Command("stress-ng", {
    args: ["--cpu", "2", "--quiet"],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await child.status;
      clearTimeout(t);
    },
  };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function fmtMs(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(Deno.args);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
  if (o.stress !== "none" && !hasStressNg()) {
    console.error(
      "expected stress-ng for the stressed rounds, found none: apt-get install -y stress-ng " +
        "(.ci/run installs it), or pass --stress none",
    );
    return 2;
  }
  const out = await Deno.makeTempDir({ prefix: "baton-soak-" });
  const nStressed =
    Array.from({ length: o.rounds }, (_, i) => i + 1).filter((r) => stressed(o, r)).length;
  console.log(
    `soak: ${o.rounds} rounds of ${o.suites.join(" + ")}, ${nStressed} under stress-ng --cpu 2; ` +
      `logs in ${out}`,
  );
  const rows = new Map<string, Row>();
  const broken: Broken[] = [];
  const roundOk: boolean[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    const dir = `${out}/round-${r}`;
    await Deno.mkdir(dir, { recursive: true });
    const st = stressed(o, r);
    const stress = st ? startStress() : null;
    let ok = true;
    const times: string[] = [];
    try {
      for (const suite of o.suites) {
        const res = await runSuite(suite, dir);
        times.push(`${suite} ${fmtMs(res.ms)}`);
        const cases = parseJunit(res.xml);
        const failed = failures(res.xml, await Deno.readTextFile(res.log).catch(() => ""));
        const failedKeys = new Set(failed.map((f) => `${f.file}\0${f.name}`));
        for (const c of cases) {
          if (c.skipped) continue;
          const key = `${c.file}\0${c.name}`;
          const row = rows.get(key) ?? { file: c.file, name: c.name, runs: 0, failures: [] };
          row.runs++;
          rows.set(key, row);
        }
        for (const f of failed) {
          rows.get(`${f.file}\0${f.name}`)!.failures.push({
            round: r,
            stressed: st,
            log: res.log,
            f,
          });
        }
        if (failed.length) ok = false;
        // A non-zero exit with no failed test case: the run died, timed out or never started.
        if (res.code !== 0 && failedKeys.size === 0) {
          ok = false;
          broken.push({
            round: r,
            suite,
            what: res.code === "timeout"
              ? `timed out after ${fmtMs(SUITE_TIMEOUT_MS)}`
              : `exited ${res.code} with no failed test in its report`,
            log: res.log,
          });
        }
        if (res.code === "timeout") {
          ok = false;
          if (failedKeys.size) {
            broken.push({ round: r, suite, what: "timed out", log: res.log });
          }
        }
      }
    } finally {
      await stress?.stop();
    }
    roundOk.push(ok);
    console.log(
      `round ${r}/${o.rounds}${st ? " (stress-ng --cpu 2)" : ""}: ${ok ? "ok" : "FAILED"} ` +
        `(${times.join(", ")})`,
    );
  }

  const all = [...rows.values()].sort((a, b) =>
    b.failures.length - a.failures.length || a.file.localeCompare(b.file) ||
    a.name.localeCompare(b.name)
  );
  const nameW = Math.min(100, Math.max(...all.map((r) => r.file.length + r.name.length + 3), 10));
  console.log("");
  console.log(`${pad("test", nameW)}  runs  failures`);
  for (const row of all) {
    const label = `${row.file} > ${row.name}`;
    const shown = label.length > nameW ? label.slice(0, nameW - 1) + "…" : label;
    console.log(
      `${pad(shown, nameW)}  ${String(row.runs).padStart(4)}  ${
        String(row.failures.length).padStart(8)
      }`,
    );
    for (const { round, stressed: s, log, f } of row.failures) {
      const bits = [`round ${round}${s ? " (stressed)" : ""}`];
      if (f.seeds.length) bits.push(`seed ${f.seeds.join(",")}`);
      if (f.dirs.length) bits.push(`dir ${f.dirs.join(",")}`);
      bits.push(`log ${log}`);
      console.log(`    ${bits.join(" | ")}: ${f.reason}`);
    }
  }
  for (const b of broken) {
    console.log(`  round ${b.round} ${b.suite}: ${b.what} (log ${b.log})`);
  }
  const passed = roundOk.filter(Boolean).length;
  const failedTests = all.filter((r) => r.failures.length).length;
  console.log("");
  console.log(
    `${passed} of ${o.rounds} rounds passed (${nStressed} under stress-ng --cpu 2); ` +
      `${all.length} tests, ${failedTests} failed at least once; logs in ${out}`,
  );
  return passed === o.rounds ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
