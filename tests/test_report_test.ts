/**
 * `.ci/run`'s last lines come from `scripts/test_report.ts`: a deliberately broken test, run by a
 * real `deno test` with a JUnit report as CI runs each suite, must come out as one line naming
 * its file and test and the seed and temp directory it printed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const REPORT = join(ROOT, "scripts", "test_report.ts");

const BROKEN = `
Deno.test("a passing neighbour", () => {});
Deno.test("a broken test", () => {
  const dir = Deno.makeTempDirSync({ prefix: "broken-" });
  console.log("seed 4242, files in " + dir);
  throw new Error("expected 1 copy, saw 2");
});
`;

async function run(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("test_report names a broken test's file, name, seed and temp dir, as .ci/run prints them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-report-" });
  try {
    await Deno.writeTextFile(join(dir, "broken_test.ts"), BROKEN);
    const junit = join(dir, "t.xml");
    const test = await run(["test", "-A", `--junit-path=${junit}`, "broken_test.ts"], dir);
    assert.notEqual(test.code, 0, "the broken test fails its run");
    await Deno.writeTextFile(join(dir, "t.log"), test.out);
    const rep = await run(
      [
        "run",
        "--allow-read",
        "--no-prompt",
        REPORT,
        "--junit",
        junit,
        "--log",
        join(dir, "t.log"),
        "--suite",
        "tests",
      ],
      ROOT,
    );
    assert.equal(rep.code, 0, rep.out);
    const lines = rep.out.trim().split("\n");
    assert.equal(
      lines.length,
      1,
      `one line per failed test, none for the passing one:\n${rep.out}`,
    );
    const line = lines[0]!;
    assert.match(line, /^FAIL \[tests\] \.\/broken_test\.ts > a broken test/);
    assert.match(line, /seed 4242/);
    assert.match(line, /dir \/tmp\/broken-\w+/);
    assert.match(line, /expected 1 copy, saw 2/);
    const made = /dir (\/tmp\/broken-\w+)/.exec(line)![1]!;
    await Deno.remove(made, { recursive: true }); // the broken test's own temp dir
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("test_report prints nothing for a run that passed, and says so when the run left no report", async () => {
  const dir = await Deno.makeTempDir({ prefix: "baton-report-" });
  try {
    await Deno.writeTextFile(join(dir, "ok_test.ts"), `Deno.test("fine", () => {});\n`);
    const junit = join(dir, "t.xml");
    assert.equal((await run(["test", "-A", `--junit-path=${junit}`, "ok_test.ts"], dir)).code, 0);
    const ok = await run(["run", "--allow-read", "--no-prompt", REPORT, "--junit", junit], ROOT);
    assert.equal(ok.out.trim(), "");
    const gone = await run(
      [
        "run",
        "--allow-read",
        "--no-prompt",
        REPORT,
        "--junit",
        join(dir, "none.xml"),
        "--suite",
        "faults",
      ],
      ROOT,
    );
    assert.match(gone.out, /^FAIL \[faults\]: no JUnit report at .*none\.xml \(the run died\?\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
