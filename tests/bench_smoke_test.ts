/**
 * Smoke run of `deno task bench` so the benchmark script cannot rot: figures crash and scale
 * with 2 trials and 1 s windows, anchors skipped when their tools are missing. Asserts only
 * that it completes and writes well-formed results — never a timing.
 */
import assert from "node:assert/strict";
import { summarize } from "../scripts/bench/common.ts";
import { LocalCluster } from "../scripts/local_cluster.ts";
import { appTimes, predictedText, timesOf } from "../scripts/bench/predicted.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("summarize gives nearest-rank p95 and the middle value as median", () => {
  const s = summarize([5, 1, 4, 2, 3]);
  assert.deepEqual(s, { n: 5, min: 1, median: 3, p95: 5, max: 5 });
  assert.equal(summarize([1, 2, 3, 4]).median, 2.5);
  assert.equal(summarize(Array.from({ length: 100 }, (_, i) => i + 1)).p95, 95);
  assert.ok(Number.isNaN(summarize([]).median));
});

Deno.test("bench predicted column: the worst cases of the manifest a figure writes (tuned failover, hang)", async () => {
  const c = await LocalCluster.create({
    nodes: [{ name: "alpha", priority: 100 }, { name: "beta", priority: 50 }],
    witness: true,
    interval: "50ms",
    deadAfter: "250ms",
    fenceAfter: "100ms",
    apps: () =>
      [
        "  web:",
        '    command: ["sleep", "infinity"]',
        '    check: { type: http, url: "http://127.0.0.1:9/health", interval: 100ms, ' +
        "timeout: 200ms, failures: 2, initialDelay: 1s }",
        "    stop: { signal: SIGKILL, timeout: 1s }",
      ].join("\n"),
  });
  try {
    const t = await timesOf(c.manifest);
    assert.match(
      predictedText(t.cluster.hostDeath),
      /^≤ 300 ms \(deadAfter 250ms \+ interval 50ms/,
    );
    assert.equal(t.cluster.partition?.gapMs, 250 - 100 - 50);
    // max(100ms, 1s) + 1×max(100ms, 200ms) + 200ms, + stop 1s
    assert.match(predictedText(appTimes(t, "web").hang), /^≤ 2400 ms /);
    assert.equal(predictedText(null), "—");
  } finally {
    await c.stop();
  }
});

Deno.test({
  name: "bench --smoke --only crash,scale completes and writes well-formed markdown and JSON",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "bench-smoke-" });
    try {
      const md = `${dir}/benchmarks.md`;
      const json = `${dir}/results.json`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          "--no-prompt",
          `${ROOT}scripts/bench.ts`,
          "--smoke",
          "--only",
          "crash,scale",
          "--trials",
          "2",
          "--idle-seconds",
          "1",
          "--out",
          md,
          "--json",
          json,
        ],
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `bench exited ${out.code}:\n${text}`);

      const results = JSON.parse(await Deno.readTextFile(json)) as {
        info: { mode: string; machine: { nproc: number }; versions: Record<string, string> };
        figures: {
          id: string;
          series: { label: string; samples: number[] }[];
          targets: { met: boolean | null; predicted?: string }[];
          notes: string[];
        }[];
      };
      assert.equal(results.info.mode, "smoke");
      assert.ok(results.info.machine.nproc >= 1);
      assert.ok(results.info.versions.deno);
      assert.deepEqual(results.figures.map((f) => f.id), ["crash", "scale"]);
      const crash = results.figures[0]!;
      const baton = crash.series.find((s) => s.label === "baton");
      assert.ok(baton, `crash has a baton series: ${JSON.stringify(crash)}`);
      assert.equal(baton.samples.length, 2);
      // The predicted column: what `baton validate` says for the manifest the figure ran.
      assert.match(crash.targets[0]?.predicted ?? "", /^≤ 0 ms \(exit seen at once/);
      for (const f of results.figures) {
        assert.ok(!f.notes.some((n) => n.includes("figure failed")), f.notes.join("\n"));
        for (const s of f.series) {
          for (const x of s.samples) assert.ok(Number.isFinite(x) && x >= 0, `${s.label}: ${x}`);
        }
        assert.ok(f.targets.length > 0, `${f.id} reports its targets`);
      }

      const doc = await Deno.readTextFile(md);
      for (
        const heading of [
          "# baton benchmarks",
          "## Machine",
          "## Versions",
          "## Commands",
          "## Summary of targets",
          "## 1. Crash → new process running",
          "## 6. Scale on one host",
        ]
      ) {
        assert.ok(doc.includes(heading), `markdown has "${heading}"`);
      }
      assert.ok(doc.includes("apt-get install -y supervisor monit keepalived stress-ng"));
      assert.ok(
        doc.includes(
          "| figure | target | limit | predicted (from the manifest) | measured | met |",
        ),
        "the summary has the predicted column",
      );
      // Every table row has as many cells as its header.
      const lines = doc.split("\n");
      for (let i = 0; i < lines.length; i++) {
        if (!lines[i]!.startsWith("| ") || !lines[i + 1]?.startsWith("| ---")) continue;
        const cells = (l: string) => l.replaceAll("\\|", "").split("|").length;
        const width = cells(lines[i]!);
        for (let j = i + 2; j < lines.length && lines[j]!.startsWith("| "); j++) {
          assert.equal(cells(lines[j]!), width, `row ${j + 1} of the table at line ${i + 1}`);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
