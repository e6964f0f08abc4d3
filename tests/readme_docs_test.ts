/**
 * The README and docs/benchmarks.md tell the truth about the code: the README's Commands table
 * lists every command of the CLI definitions (and no other), and the benchmark report shows
 * the worst case `baton validate` predicts beside each measured failover time.
 */
import assert from "node:assert/strict";
import { buildProgram } from "../src/cli.ts";

const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));

/** The rows of the first markdown table after `heading`, as arrays of trimmed cells. */
function tableAfter(text: string, heading: string): string[][] {
  const at = text.indexOf(heading);
  assert.ok(at >= 0, `a "${heading}" section`);
  const rows: string[][] = [];
  for (const line of text.slice(at).split("\n").slice(1)) {
    if (!line.startsWith("|")) {
      if (rows.length > 0) break;
      continue;
    }
    // Split on | that is not escaped (`auto\|active`).
    rows.push(line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
  }
  return rows.filter((r) => !/^-+:?$|^:?-+:?$/.test(r[0] ?? ""));
}

Deno.test("README Commands table lists every command of the CLI, and only those", async () => {
  const rows = tableAfter(await read("README.md"), "## Commands");
  const listed = new Set<string>();
  for (const [cell] of rows.slice(1)) {
    for (const m of (cell ?? "").matchAll(/`baton ([a-z][a-z-]*)/g)) listed.add(m[1]!);
  }
  const defined = buildProgram().commands.map((c) => c.name());
  for (const name of defined) {
    assert.ok(listed.has(name), `README Commands lacks \`baton ${name}\``);
  }
  for (const name of listed) {
    assert.ok(defined.includes(name), `README Commands lists \`baton ${name}\`, no such command`);
  }
});

Deno.test("docs/benchmarks.md shows the predicted worst case beside the measured failover times", async () => {
  const rows = tableAfter(await read("docs/benchmarks.md"), "## Summary of targets");
  const head = rows[0]!;
  const predicted = head.indexOf("predicted (from the manifest)");
  const measured = head.indexOf("measured");
  assert.ok(predicted >= 0 && measured > predicted, `columns: ${head.join(" | ")}`);
  // Figures 1-4 (crash, hang, second failure, host death / link cut) each have a prediction
  // in milliseconds next to a measured value.
  for (const fig of ["1.", "2.", "3.", "4."]) {
    const mine = rows.filter((r) => r[0]!.startsWith(fig));
    assert.ok(mine.length > 0, `figure ${fig} in the summary`);
    for (const r of mine) {
      assert.match(r[predicted]!, /\d+ ms/, `figure ${r[0]}: predicted ${r[predicted]}`);
      assert.match(r[measured]!, /\d ms/, `figure ${r[0]}: measured ${r[measured]}`);
    }
  }
});
