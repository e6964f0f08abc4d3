/**
 * App logs through the per-host log writer (src/logs/): size-based rotation at line
 * boundaries with no lost or repeated line under a chatty app, across an agent restart in the
 * middle; the writer's memory; `baton logs APP -n N`.
 */
import assert from "node:assert/strict";
import { LocalCluster } from "../scripts/local_cluster.ts";
import { runLogs, systemStateDir } from "../src/cli/logs_cmd.ts";
import { LogWriter } from "../src/logs/log_writer.ts";
import { RealProcessRunner } from "../src/supervisor/real_runner.ts";

const IT = { sanitizeOps: false, sanitizeResources: false } as const;
const LINES = 100_000;

/** Prints LINES numbered lines (about 40 bytes each) in bursts of 500, then sleeps. */
function chatty(lines = LINES, pause = 0.02): string[] {
  return [
    "python3",
    "-c",
    "import sys, time\n" +
    `n = ${lines}\n` +
    "for start in range(1, n + 1, 500):\n" +
    "    sys.stdout.write(''.join('%07d the quick brown fox jumps\\n' % i " +
    "for i in range(start, min(start + 500, n + 1))))\n" +
    "    sys.stdout.flush()\n" +
    `    time.sleep(${pause})\n` +
    "time.sleep(300)\n",
  ];
}

/** Every line of `<app>.log.K` … `<app>.log.1`, `<app>.log`, oldest first; and the file count. */
function readAll(logDir: string, app: string): { lines: string[]; files: number } {
  const rotated: number[] = [];
  for (const e of Deno.readDirSync(logDir)) {
    const m = new RegExp(`^${app}\\.log\\.(\\d+)$`).exec(e.name);
    if (m) rotated.push(Number(m[1]));
  }
  rotated.sort((a, b) => b - a);
  let text = "";
  for (const n of rotated) text += Deno.readTextFileSync(`${logDir}/${app}.log.${n}`);
  try {
    text += Deno.readTextFileSync(`${logDir}/${app}.log`);
  } catch { /* none yet */ }
  return { lines: text.split("\n").filter((l) => l !== ""), files: rotated.length + 1 };
}

function lastNumber(logDir: string, app: string): number {
  try {
    const text = Deno.readTextFileSync(`${logDir}/${app}.log`).trimEnd();
    return Number(text.slice(text.lastIndexOf("\n") + 1).split(" ")[0]);
  } catch {
    return 0;
  }
}

/** Asserts the lines are 1..n, each exactly once, in order (names the first gap or repeat). */
function assertComplete(lines: string[], n: number): void {
  for (let i = 0; i < Math.max(lines.length, n); i++) {
    const want = `${String(i + 1).padStart(7, "0")} the quick brown fox jumps`;
    if (lines[i] !== want) {
      assert.fail(
        `line ${i + 1} of ${lines.length}: expected "${want}", found ${JSON.stringify(lines[i])}`,
      );
    }
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function killWriter(dir: string): void {
  try {
    const pid = Number(Deno.readTextFileSync(`${dir}/pid`).split(" ")[0]);
    if (pid > 1) Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

Deno.test({
  name:
    "log writer: rotation loses no line and repeats none; an agent restart mid-stream changes nothing",
  ignore: !LogWriter.available(),
  ...IT,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-logs-" });
    const wdir = `${dir}/logwriter`;
    const logDir = `${dir}/logs`;
    let writer = new LogWriter(wdir, logDir);
    let runner = new RealProcessRunner({ logWriter: writer });
    const { pid } = await runner.spawn({
      app: "chatty",
      command: chatty(),
      cwd: null,
      env: { BATON_APP: "chatty" },
      logDir,
      logs: { maxBytes: 256 * 1024, keep: 100 },
    });
    try {
      await waitFor("the first lines", () => lastNumber(logDir, "chatty") > 1000);
      // The agent goes away (its runner and writer handle), then a new one adopts everything.
      runner.detachAll();
      writer.close();
      const during = lastNumber(logDir, "chatty");
      writer = new LogWriter(wdir, logDir);
      runner = new RealProcessRunner({ logWriter: writer });
      const writerPid = Number(Deno.readTextFileSync(`${wdir}/pid`).split(" ")[0]);
      runner.adopt("chatty", pid, 0, { logs: { maxBytes: 256 * 1024, keep: 100 } });
      assert.equal(writer.status().pid, writerPid, "the writer is adopted, not a second one");
      await waitFor("the last line", () => lastNumber(logDir, "chatty") === LINES);
      const { lines, files } = readAll(logDir, "chatty");
      assertComplete(lines, LINES);
      console.log(
        `restart at line ${during}; ${files} files; writer: ${JSON.stringify(writer.status())}`,
      );
      assert.ok(during < LINES, "the restart happened while the app was writing");
      assert.ok(files >= 5, `expected several rotations, found ${files} files`);
      assert.equal(writer.status().replaced, 0);
      for (const e of Deno.readDirSync(logDir)) {
        if (e.name.startsWith("chatty.log")) {
          // At most one chunk (64 KiB) past maxSize, always whole lines.
          const text = Deno.readTextFileSync(`${logDir}/${e.name}`);
          assert.ok(text.length <= 256 * 1024 + 65536, `${e.name}: ${text.length} bytes`);
          assert.ok(text.endsWith("\n") || e.name === "chatty.log", `${e.name} ends mid-line`);
        }
      }
    } finally {
      try {
        Deno.kill(-pid, "SIGKILL");
      } catch { /* gone */ }
      runner.detachAll();
      writer.close();
      killWriter(wdir);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "log writer: a killed writer is replaced and the app's buffered output is still read",
  ignore: !LogWriter.available(),
  ...IT,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "baton-logs-" });
    const wdir = `${dir}/logwriter`;
    const logDir = `${dir}/logs`;
    const writer = new LogWriter(wdir, logDir);
    const runner = new RealProcessRunner({ logWriter: writer });
    const before = writer.status().pid;
    assert.equal(before, null);
    // Writes 3 lines, waits until the writer is gone, writes 3 more: they wait in the pipe.
    const { pid } = await runner.spawn({
      app: "quiet",
      command: [
        "sh",
        "-c",
        "echo one; echo two; echo three; sleep 1.5; echo four; echo five; sleep 300",
      ],
      cwd: null,
      env: {},
      logDir,
      logs: { maxBytes: 1024, keep: 2 },
    });
    try {
      await waitFor(
        "three lines",
        () => Deno.readTextFileSync(`${logDir}/quiet.log`) === "one\ntwo\nthree\n",
      );
      const first = writer.status().pid!;
      killWriter(wdir);
      await new Promise((r) => setTimeout(r, 2000)); // the app wrote four, five meanwhile
      writer.pipe("quiet", { maxBytes: 1024, keep: 2 }); // the next spawn (or the 1 s check)
      await waitFor(
        "five lines",
        () => Deno.readTextFileSync(`${logDir}/quiet.log`).includes("five"),
      );
      assert.equal(Deno.readTextFileSync(`${logDir}/quiet.log`), "one\ntwo\nthree\nfour\nfive\n");
      assert.notEqual(writer.status().pid, first);
      assert.ok(writer.status().replaced >= 1);
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      assert.ok(!/\) [ZX] /.test(stat), "the app did not die of SIGPIPE");
    } finally {
      try {
        Deno.kill(-pid, "SIGKILL");
      } catch { /* gone */ }
      runner.detachAll();
      writer.close();
      killWriter(wdir);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a real agent: a chatty app's rotated logs are complete across an agent restart; " +
    "`baton logs APP -n 5` prints the last 5 lines",
  ignore: !LogWriter.available(),
  ...IT,
  fn: async () => {
    const n = 60_000;
    const c = await LocalCluster.create({
      nodes: [{ name: "solo", priority: 0 }],
      apps: () =>
        [
          "  chatty:",
          `    command: ${JSON.stringify(chatty(n, 0.03))}`,
          "    logs: { maxSize: 200K, keep: 100 }",
        ].join("\n"),
    });
    const logDir = `${c.stateDir("solo")}/logs`;
    try {
      await c.startAgent("solo");
      const s = await c.waitRunning("solo", ["chatty"], 30_000);
      const pid = s.apps.find((a) => a.name === "chatty")!.pid;
      await waitFor("the first lines", () => lastNumber(logDir, "chatty") > 500);
      await c.killAgent("solo", "SIGKILL");
      const during = lastNumber(logDir, "chatty");
      await c.startAgent("solo");
      const again = await c.waitRunning("solo", ["chatty"], 30_000);
      assert.equal(again.apps.find((a) => a.name === "chatty")!.pid, pid, "adopted");
      await waitFor("the last line", () => lastNumber(logDir, "chatty") === n);
      const { lines, files } = readAll(logDir, "chatty");
      assertComplete(lines, n);
      console.log(`agent killed at line ${during} of ${n}; ${files} files`);
      assert.ok(files >= 5, `expected several rotations, found ${files} files`);

      const out = await c.cli(
        "solo",
        "logs",
        "chatty",
        "-n",
        "5",
        "--state-dir",
        c.stateDir("solo"),
      );
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(
        out.stdout.trimEnd().split("\n"),
        [n - 4, n - 3, n - 2, n - 1, n].map((i) =>
          `${String(i).padStart(7, "0")} the quick brown fox jumps`
        ),
      );
      const missing = await c.cli("solo", "logs", "nope", "--state-dir", c.stateDir("solo"));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no log for app "nope"/);
    } finally {
      await c.stop();
    }
  },
});

Deno.test("runLogs -n takes lines across rotated files; -f follows the file across a rotation", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a.log.2`, "1\n");
  await Deno.writeTextFile(`${dir}/a.log.1`, "2\n3\n");
  await Deno.writeTextFile(`${dir}/a.log`, "4\n");
  let out = "";
  const write = (t: string) => (out += t);
  await runLogs(dir, "a", { lines: 3, follow: false, write });
  assert.equal(out, "2\n3\n4\n");
  out = "";
  await runLogs(dir, "a", { lines: 10, follow: false, write });
  assert.equal(out, "1\n2\n3\n4\n");
  out = "";
  const abort = new AbortController();
  const following = runLogs(dir, "a", {
    lines: 1,
    follow: true,
    pollMs: 10,
    write,
    signal: abort.signal,
  });
  await waitFor("the tail", () => out === "4\n");
  await Deno.writeTextFile(`${dir}/a.log`, "5\n", { append: true });
  await waitFor("an appended line", () => out === "4\n5\n");
  // A rotation as the writer does it: the last line of the old file, rename, a new file.
  await Deno.writeTextFile(`${dir}/a.log`, "6\n", { append: true });
  await Deno.rename(`${dir}/a.log`, `${dir}/a.log.1`);
  await Deno.writeTextFile(`${dir}/a.log`, "7\n");
  await waitFor("the new file", () => out === "4\n5\n6\n7\n");
  abort.abort();
  await following;
  await assert.rejects(runLogs(dir, "b", { lines: 1, follow: false, write }), /no log for app "b"/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("systemStateDir: /var/lib/baton/<node>, or the unit's /var/lib/baton when only it holds an agent", async () => {
  const root = await Deno.makeTempDir({ prefix: "baton-statedir-" });
  try {
    assert.equal(
      await systemStateDir("alpha", root),
      `${root}/alpha`,
      "nothing there: the default",
    );
    await Deno.writeTextFile(`${root}/agent.pid`, `{"pid":1,"startTime":1}\n`);
    assert.equal(await systemStateDir("alpha", root), root, "the systemd unit's directory");
    await Deno.mkdir(`${root}/alpha`);
    await Deno.writeTextFile(`${root}/alpha/agent.pid`, `{"pid":1,"startTime":1}\n`);
    assert.equal(await systemStateDir("alpha", root), `${root}/alpha`, "the node's own wins");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
