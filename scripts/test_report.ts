/**
 * What a `deno test` run says about its failures, read from the JUnit file it wrote
 * (`--junit-path`) and its console log (the pretty reporter, for each test's printed output):
 * every test case with its file, and for a failure the seed and temp directory it printed, so
 * it can be replayed. Used by `deno task soak` and by `.ci/run`'s summary.
 *
 * As a script it prints one line per failed test (or nothing when all passed):
 *
 * ```sh
 * deno run -A scripts/test_report.ts --junit tests.xml --log tests.log [--suite tests]
 * ```
 *
 * @module
 */

/** One test case of a run. */
export interface TestCase {
  /** The file, as Deno names it (`./faults/x_test.ts`). */
  file: string;
  /** The test's name; a step is `parent > step`. */
  name: string;
  /** Ignored (`ignore: true`): not a run. */
  skipped: boolean;
  /** The failure message and stack, or null when it passed. */
  failure: string | null;
}

/** How to replay one failure, as far as its output says. */
export interface Repro {
  /** Seeds it printed (`seed 42`, `BATON_FAULTS_SEED=42`, `--seed 42`). */
  seeds: string[];
  /** Temp directories it printed (kept files, logs). */
  dirs: string[];
}

const ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&apos;": "'",
  "&amp;": "&",
};

function unescape(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-f]+);/gi, (m) => {
    if (ENTITIES[m]) return ENTITIES[m];
    const code = m[2] === "x" || m[2] === "X"
      ? parseInt(m.slice(3, -1), 16)
      : parseInt(m.slice(2, -1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : m;
  });
}

function attr(attrs: string, name: string): string {
  const m = new RegExp(`\\b${name}="([^"]*)"`).exec(attrs);
  return m ? unescape(m[1]!) : "";
}

/** The test cases of a Deno JUnit report (the format `deno test --junit-path` writes). */
export function parseJunit(xml: string): TestCase[] {
  const out: TestCase[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const attrs = m[1]!;
    const body = m[3] ?? "";
    const fail = /<(failure|error)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/.exec(body);
    out.push({
      file: attr(attrs, "classname"),
      name: attr(attrs, "name"),
      skipped: /<skipped\b/.test(body),
      failure: fail ? unescape(fail[3] ?? attr(fail[2]!, "message")) || "failed" : null,
    });
  }
  return out;
}

/** Strip ANSI colour codes. */
export function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * What a test printed, from a pretty-reporter log: the lines between `<name> ...` and
 * `----- output end -----` (a step's output is its top-level test's).
 */
export function outputOf(log: string, name: string): string {
  const top = name.split(" > ")[0]!;
  const lines = plain(log).split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== `${top} ...` || lines[i + 1] !== "------- output -------") continue;
    for (let j = i + 2; j < lines.length && lines[j] !== "----- output end -----"; j++) {
      out.push(lines[j]!);
    }
  }
  return out.join("\n");
}

/** Seeds and temp directories named in a failure's message and output. */
export function reproOf(text: string): Repro {
  const seeds = new Set<string>();
  const dirs = new Set<string>();
  for (const m of text.matchAll(/\bseed[s]?\b[ =:#]*(\d+)/gi)) seeds.add(m[1]!);
  for (const m of text.matchAll(/\b[A-Z_]*SEED=(\d+)/g)) seeds.add(m[1]!);
  for (const m of text.matchAll(/(?:^|[\s'"(=])((?:\/tmp|\/var\/tmp)\/[\w.+-]+)/g)) {
    dirs.add(m[1]!);
  }
  return { seeds: [...seeds], dirs: [...dirs] };
}

/** One failed test with what it takes to replay it. */
export interface Failure extends TestCase, Repro {
  /** First line of the failure message. */
  reason: string;
}

/** The failed test cases of a run, each with its repro (steps' parents are left out). */
export function failures(xml: string, log: string): Failure[] {
  const cases = parseJunit(xml);
  const failed = cases.filter((c) => c.failure !== null);
  const withFailedSteps = new Set(
    failed.filter((c) => c.name.includes(" > ")).map((c) => `${c.file}\0${c.name.split(" > ")[0]}`),
  );
  return failed
    .filter((c) => !withFailedSteps.has(`${c.file}\0${c.name}`))
    .map((c) => {
      const text = `${c.failure}\n${outputOf(log, c.name)}`;
      const reason = (c.failure ?? "").split("\n").find((l) => l.trim() !== "") ?? "failed";
      return { ...c, ...reproOf(text), reason: reason.trim().slice(0, 200) };
    });
}

/** One line for a failure: `FAIL ./faults/x_test.ts > name [seed 42] [dir /tmp/…]: reason`. */
export function failureLine(f: Failure, suite?: string): string {
  const parts = [`FAIL${suite ? ` [${suite}]` : ""} ${f.file} > ${f.name}`];
  if (f.seeds.length) parts.push(`seed ${f.seeds.join(",")}`);
  if (f.dirs.length) parts.push(`dir ${f.dirs.join(",")}`);
  return `${parts.join(" | ")}: ${f.reason}`;
}

if (import.meta.main) {
  const args = Deno.args;
  const get = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const junit = get("--junit");
  const log = get("--log");
  const suite = get("--suite");
  if (!junit) {
    console.error(
      "usage: test_report.ts --junit FILE.xml [--log FILE.log] [--suite NAME] [--fail-skipped]",
    );
    Deno.exit(2);
  }
  let xml = "";
  try {
    xml = await Deno.readTextFile(junit);
  } catch {
    console.log(`FAIL${suite ? ` [${suite}]` : ""}: no JUnit report at ${junit} (the run died?)`);
    Deno.exit(0);
  }
  const text = log ? await Deno.readTextFile(log).catch(() => "") : "";
  for (const f of failures(xml, text)) console.log(failureLine(f, suite));
  // In CI a test that skipped itself (a missing tool, no root) is a failure: .ci/run installs
  // everything its suites need, so a skip there hides a broken install step.
  if (args.includes("--fail-skipped")) {
    for (const c of parseJunit(xml).filter((c) => c.skipped)) {
      console.log(`SKIPPED${suite ? ` [${suite}]` : ""} ${c.file} > ${c.name}: ignored in CI`);
    }
  }
}
